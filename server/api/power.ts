/**
 * Power (admin token): `POST /api/v1/admin/power {action, select}` runs on, off, cycle or status
 * on the selected nodes through their drivers (server/power/nodes.ts powerNodes, what `ferry
 * power` runs), a few at a time, and answers every node's outcome: one dead BMC is a failed row,
 * not a failed request. Actions that change a machine are in the audit log as `api:admin`.
 */
import { PowerRequestSchema, type PowerRequest } from '../../common/schema/api.js';
import { selectNodes } from '../db/groups.js';
import { powerNodes, type NodePowerResult } from '../power/nodes.js';
import { ADMIN, ACTOR, onlyMethods, type Resource } from './route.js';

export const POWER_ROUTE = `${ADMIN}power`;

export interface PowerResponse {
  results: NodePowerResult[];
}

export const power: Resource = (app, ctx) => {
  app.post<{ Body: PowerRequest }>(POWER_ROUTE, { config: { auth: 'admin' }, schema: { body: PowerRequestSchema } }, async (request): Promise<PowerResponse> => {
    const { action, select } = request.body;
    return { results: await powerNodes(ctx.data, selectNodes(ctx.data, select), action, ACTOR) };
  });
  onlyMethods(app, POWER_ROUTE, ['POST'], 'admin');
};

/**
 * The discovery boot's route (a discovery token, server/db/discovery.ts): POST the machine's
 * inventory, stored with the MAC the token is bound to; the token dies with the post.
 */
import { DISCOVERY_ROUTES } from '../../common/protocol.js';
import { InventorySchema, type InventoryBody } from '../../common/schema/api.js';
import { recordDiscoveredInventory } from '../db/discovery.js';
import { discoveryOf } from './auth.js';
import { onlyMethods, type Resource } from './route.js';

export const discovery: Resource = (app, ctx) => {
  app.post<{ Body: InventoryBody }>(DISCOVERY_ROUTES.inventory, { config: { auth: 'discovery' }, schema: { body: InventorySchema } }, async (request) => {
    const { token } = discoveryOf(request.raw);
    const r = recordDiscoveredInventory(ctx.data, token, request.body);
    ctx.hub.publish('discovered', { mac: r.mac, address: request.raw.socket.remoteAddress, inventory: true });
    return { ok: true, ...r };
  });
  onlyMethods(app, DISCOVERY_ROUTES.inventory, ['POST'], 'discovery');
};

/**
 * `POST /api/v1/admin/cancel {select: [NAME | @GROUP | KEY=VALUE, ...]}`: end the armed, running
 * or lost deployments of the selected nodes (server/db/deployment-lifecycle.ts cancelDeployments). Its own
 * module so the route moves with the HTTP framework without touching the lifecycle logic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValidationError, type Problem } from '../../common/errors.js';
import { cancelDeployments, type CancelOutcome } from '../db/deployment-lifecycle.js';
import { selectNodes } from '../db/groups.js';
import { NAME_RE } from '../store/images.js';
import type { EventHub } from './events.js';
import type { DataDir } from '../context.js';
import { readJson, sendJson } from './http.js';
import { ACTOR, mountRaw, onlyMethods, type Resource } from './route.js';

export const CANCEL_ROUTE = '/api/v1/admin/cancel';

/** The body of a cancel request, every bad field named by its JSON path. */
export function validateCancel(body: unknown): { select: string[] } {
  const p: Problem[] = [];
  const bad = (path: string, message: string) => p.push({ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path, message });
  if (!body || typeof body !== 'object' || Array.isArray(body)) bad('$', 'must be an object {"select": [NAME | @GROUP | KEY=VALUE, ...]}');
  else {
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) if (k !== 'select') bad(`$.${k}`, 'is not a known field');
    const sel = b.select;
    if (!Array.isArray(sel) || sel.some((x) => typeof x !== 'string')) bad('$.select', 'must be an array of strings');
    else if (!sel.length) bad('$.select', 'must name at least one node, @group or property=value');
    else
      (sel as string[]).forEach((x, i) => {
        const name = x.startsWith('@') ? x.slice(1) : x.includes('=') ? undefined : x;
        if (name !== undefined && !NAME_RE.test(name)) bad(`$.select[${i}]`, `"${x.slice(0, 100)}" is not a node or @group name`);
      });
  }
  if (p.length) throw new ValidationError('FERRY_E_BAD_REQUEST', 'the cancel request', p);
  return body as { select: string[] };
}

/** The handler: validated body in, {cancelled, idle} out; monitors see each ended deployment. */
export async function cancelRoute(d: DataDir, hub: EventHub, req: IncomingMessage, res: ServerResponse, actor: string): Promise<void> {
  const { select } = validateCancel(await readJson(req));
  const out: CancelOutcome = cancelDeployments(d, selectNodes(d, select), actor);
  for (const info of out.cancelled) hub.publish('deployment', info);
  sendJson(res, 200, out);
}

/** The route as a fastify resource (server/api/app.ts RESOURCES), admin token only. */
export const cancel: Resource = (app, ctx) => {
  mountRaw(app, ctx, { method: 'POST', url: CANCEL_ROUTE, auth: 'admin' }, (c, req, res) => cancelRoute(c.data, c.hub, req, res, ACTOR));
  onlyMethods(app, CANCEL_ROUTE, ['POST'], 'admin');
};

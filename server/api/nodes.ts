/**
 * Nodes (admin token): create, list, read, change (PATCH: add/remove MACs, set/unset inputs
 * and properties, groups, image, layout, boot action, power settings with a write-only
 * password), delete; change many at once (PATCH on the
 * list: properties and inputs of a selection, in one transaction); and the MACs that asked for a
 * boot script without being known (GET /discovered), with what a discovery boot reported, and
 * their enlistment as nodes (POST /discovered/enlist).
 */
import { EnlistRequestSchema, NodeCreateSchema, NodePatchSchema, NodesEditSchema, type EnlistRequest, type NodeCreateBody, type NodePatchBody, type NodesEditBody } from '../../common/schema/api.js';
import { addNode, getNode, listDiscovered, listNodes, normaliseMac, removeNode, setNode, type NodeChanges, type NodeInfo } from '../db/inventory.js';
import { enlist } from '../db/discovery.js';
import { selectNodes } from '../db/groups.js';
import { ADMIN, ACTOR, onlyMethods, type Resource } from './route.js';
import { urlName } from './http.js';

/** A node body as the database layer's changes. */
export function nodeChanges(b: NodeCreateBody | NodePatchBody): NodeChanges {
  const { name: _name, layout, bootAction, power, ...rest } = b;
  // "power": null removes the node's power settings, as `ferry node set --no-power` does.
  return { ...rest, layoutXml: layout, layoutSource: layout !== undefined ? 'api' : undefined, bootAction, ...(power !== undefined ? { power: power === null ? { driver: null } : power } : {}) };
}

export const nodes: Resource = (app, ctx) => {
  const d = ctx.data;
  const admin = { auth: 'admin' } as const;
  const list = `${ADMIN}nodes`;
  app.post<{ Body: NodeCreateBody }>(list, { config: admin, schema: { body: NodeCreateSchema } }, async (request, reply) => reply.code(201).send({ node: addNode(d, request.body.name, nodeChanges(request.body), ACTOR) }));
  app.get(list, { config: admin }, async () => ({ nodes: listNodes(d) }));
  // Every selected node or none: one bad key refuses the request before any node is changed.
  app.patch<{ Body: NodesEditBody }>(list, { config: admin, schema: { body: NodesEditSchema } }, async (request) => {
    const { select, ...changes } = request.body;
    return { nodes: d.write(() => selectNodes(d, select).map((n): NodeInfo => setNode(d, n, changes, ACTOR))) };
  });
  onlyMethods(app, list, ['GET', 'POST', 'PATCH'], 'admin');

  const one = `${list}/:name`;
  const nameOf = (p: unknown) => urlName((p as { name: string }).name, 'node');
  app.get(one, { config: admin }, async (request) => ({ node: getNode(d, nameOf(request.params)) }));
  app.patch<{ Body: NodePatchBody }>(one, { config: admin, schema: { body: NodePatchSchema } }, async (request) => ({ node: setNode(d, nameOf(request.params), nodeChanges(request.body), ACTOR) }));
  app.delete(one, { config: admin }, async (request) => {
    removeNode(d, nameOf(request.params), ACTOR);
    return { ok: true };
  });
  onlyMethods(app, one, ['GET', 'PATCH', 'DELETE'], 'admin');

  app.get(`${ADMIN}discovered`, { config: admin }, async () => ({ discovered: listDiscovered(d) }));
  onlyMethods(app, `${ADMIN}discovered`, ['GET'], 'admin');

  // Discovered machines with a report become nodes (all of them or none; server/db/discovery.ts).
  const enlistUrl = `${ADMIN}discovered/enlist`;
  app.post<{ Body: EnlistRequest }>(enlistUrl, { config: admin, schema: { body: EnlistRequestSchema } }, async (request, reply) => {
    const b = request.body;
    const macs = b.macs.map((m) => normaliseMac(m) ?? m);
    return reply.code(201).send({ nodes: enlist(d, { macs, name: b.name, image: b.image, layoutXml: b.layout, layoutSource: b.layout !== undefined ? 'api' : undefined, groups: b.groups, asNew: b.new }, ACTOR) });
  });
  onlyMethods(app, enlistUrl, ['POST'], 'admin');
};

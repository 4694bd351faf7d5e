/**
 * Groups (admin token): list, read (with every node, nested groups resolved), add nodes and
 * included groups (POST), remove them (DELETE with a body) or the whole group (DELETE without).
 */
import { GroupChangeSchema, type GroupChangeBody } from '../../common/schema/api.js';
import { validate } from '../../common/schema/validate.js';
import { addToGroup, groupInfo, listGroups, removeFromGroup } from '../db/groups.js';
import { ADMIN, ACTOR, onlyMethods, type Resource } from './route.js';
import { urlName } from './http.js';

export const groups: Resource = (app, ctx) => {
  const d = ctx.data;
  const admin = { auth: 'admin' } as const;
  app.get(`${ADMIN}groups`, { config: admin }, async () => ({ groups: listGroups(d) }));
  onlyMethods(app, `${ADMIN}groups`, ['GET'], 'admin');

  const one = `${ADMIN}groups/:name`;
  const nameOf = (p: unknown) => urlName((p as { name: string }).name, 'group');
  app.get(one, { config: admin }, async (request) => ({ group: groupInfo(d, nameOf(request.params)) }));
  app.post<{ Body: GroupChangeBody }>(one, { config: admin, schema: { body: GroupChangeSchema } }, async (request) => {
    const b = request.body;
    return { group: addToGroup(d, nameOf(request.params), { nodes: b.nodes, includes: b.includes, description: b.description }, ACTOR) };
  });
  // The body is optional here (none removes the whole group), so it is checked by hand with the same schema.
  app.delete(one, { config: admin }, async (request) => {
    const name = nameOf(request.params);
    const b = validate(GroupChangeSchema, request.body ?? {});
    removeFromGroup(d, name, { nodes: b.nodes, includes: b.includes }, ACTOR);
    return { ok: true };
  });
  onlyMethods(app, one, ['GET', 'POST', 'DELETE'], 'admin');
};

/**
 * The admin API's power route (POST /api/v1/admin/power) and the edit of many nodes at once
 * (PATCH /api/v1/admin/nodes), through inject(): what the web console sends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POWER_ACTION_NAMES } from '../../../common/schema/api.js';
import { addNode, getNode } from '../../../server/db/inventory.js';
import { addToGroup } from '../../../server/db/groups.js';
import { POWER_ACTIONS } from '../../../server/power/types.js';
import { bearer, fixture, type Fixture } from './app-fixture.js';

let f: Fixture;
const api = (method: string, path: string, payload?: unknown, headers: Record<string, string> = bearer(f.admin)) =>
  f.app.inject({ method: method as any, url: '/api/v1/admin/' + path, headers, ...(payload !== undefined ? { payload: payload as object } : {}) });

beforeAll(async () => {
  f = await fixture();
  const d = f.ctx.data;
  addNode(d, 'p1', { macs: ['52:54:00:00:19:01'], properties: { rack: 'r1', old: 'x' }, power: { driver: 'manual', address: 'rack 1 slot 1' } }, 'test');
  addNode(d, 'p2', { macs: ['52:54:00:00:19:02'], properties: { rack: 'r1', old: 'y' }, power: { driver: 'manual' } }, 'test');
  addNode(d, 'p3', { macs: ['52:54:00:00:19:03'], properties: { rack: 'r2' } }, 'test');
  addToGroup(d, 'rackp', { nodes: ['p1', 'p2', 'p3'] }, 'test');
});
afterAll(() => f?.close());

describe('POST /api/v1/admin/power', () => {
  it('knows the same actions as the drivers', () => {
    expect([...POWER_ACTION_NAMES]).toEqual([...POWER_ACTIONS]);
  });

  it('acts on every selected node, a node without a driver being one failed row, and audits the change', async () => {
    const r = await api('POST', 'power', { action: 'cycle', select: ['@rackp'] });
    expect(r.statusCode).toBe(200);
    const { results } = r.json();
    expect(results.map((x: any) => [x.node, x.ok])).toEqual([['p1', true], ['p2', true], ['p3', false]]);
    expect(results[0]).toMatchObject({ driver: 'manual', action: 'cycle', state: 'unknown', message: expect.stringContaining('rack 1 slot 1') });
    expect(results[2].error).toMatchObject({ code: 'FERRY_E_POWER_NOT_SET', hint: expect.stringContaining('ferry node set p3 --power') });
    const audit = f.ctx.data.db.prepare("SELECT actor, object FROM audit WHERE action = 'power.cycle' ORDER BY object").all();
    expect(audit).toEqual([{ actor: 'api:admin', object: 'p1' }, { actor: 'api:admin', object: 'p2' }, { actor: 'api:admin', object: 'p3' }]);
    // status changes nothing: not audited.
    expect((await api('POST', 'power', { action: 'status', select: ['p1'] })).json().results).toMatchObject([{ node: 'p1', ok: true, state: 'unknown' }]);
    expect(f.ctx.data.db.prepare("SELECT COUNT(*) AS n FROM audit WHERE action = 'power.status'").get()).toEqual({ n: 0 });
  });

  it('refuses an unknown action, an empty selection, an unknown node and a missing token', async () => {
    const bad = await api('POST', 'power', { action: 'reboot', select: [] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.problems.map((p: any) => p.path).sort()).toEqual(['$.action', '$.select']);
    const unknown = await api('POST', 'power', { action: 'on', select: ['nosuch'] });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('FERRY_E_NODE_NOT_FOUND');
    expect((await api('POST', 'power', { action: 'on', select: ['p1'] }, {})).statusCode).toBe(401);
    expect((await api('GET', 'power')).statusCode).toBe(405);
  });
});

describe('PATCH /api/v1/admin/nodes', () => {
  it('sets and unsets properties and inputs on every selected node', async () => {
    const r = await api('PATCH', 'nodes', { select: ['rack=r1'], properties: { role: 'web' }, unsetProperties: ['old'], inputs: { 'network.mode': 'dhcp' } });
    expect(r.statusCode).toBe(200);
    expect(r.json().nodes.map((n: any) => n.name)).toEqual(['p1', 'p2']);
    for (const n of ['p1', 'p2']) {
      expect(getNode(f.ctx.data, n).properties).toEqual({ rack: 'r1', role: 'web' });
      expect(getNode(f.ctx.data, n).inputs).toEqual({ 'network.mode': 'dhcp' });
    }
    expect(getNode(f.ctx.data, 'p3').properties).toEqual({ rack: 'r2' });
    const un = await api('PATCH', 'nodes', { select: ['p1', 'p2'], unsetInputs: ['network.mode'] });
    expect(un.json().nodes.map((n: any) => n.inputs)).toEqual([{}, {}]);
  });

  it('changes no node when the request is refused', async () => {
    const bad = await api('PATCH', 'nodes', { select: ['p1'], properties: { 'bad key': 'v' }, groups: ['x'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.problems.length).toBe(2);
    const unknown = await api('PATCH', 'nodes', { select: ['p3', 'nosuch'], properties: { role: 'db' } });
    expect(unknown.statusCode).toBe(404);
    expect(getNode(f.ctx.data, 'p3').properties).toEqual({ rack: 'r2' });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ADMIN_ROUTES, INSTALL_ROUTES } from '../../../common/protocol.js';
import { importImage } from '../../../server/store/image-import.js';
import { call, harness, LAYOUT, smallTree, type Harness } from './helpers.js';

describe('admin HTTP API: what the CLI does', () => {
  let h: Harness;
  let base: string;
  let tok: string;
  const api = (method: string, path: string, body?: unknown) => call(base, method, '/api/v1/admin/' + path, { token: tok, body });

  beforeAll(async () => {
    h = await harness();
    base = h.srv.url;
    tok = h.srv.adminToken;
    await importImage(h.data, 'base', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('nodes: create, change, read, delete', async () => {
    const c = await api('POST', 'nodes', { name: 'n1', macs: ['52:54:00:00:01:01'], image: 'base', layout: LAYOUT, inputs: { hostname: 'n1' }, properties: { rack: 'b2' }, groups: ['g1'] });
    expect(c.status).toBe(201);
    expect(c.json.node).toMatchObject({ name: 'n1', image: 'base', inputs: { hostname: 'n1' }, properties: { rack: 'b2' }, groups: ['g1'] });
    const dup = await api('POST', 'nodes', { name: 'n1', macs: ['52:54:00:00:01:02'] });
    expect(dup.status).toBe(409);
    expect(dup.json.error.code).toBe('FERRY_E_NODE_EXISTS');
    const mac = await api('POST', 'nodes', { name: 'n2', macs: ['52:54:00:00:01:01'] });
    expect(mac.status).toBe(409);
    expect(mac.json.error.code).toBe('FERRY_E_MAC_IN_USE');
    const p = await api('PATCH', 'nodes/n1', { inputs: { 'network.mode': 'dhcp' }, unsetProperties: ['rack'], addMacs: ['52:54:00:00:01:03'] });
    expect(p.status).toBe(200);
    expect(p.json.node).toMatchObject({ inputs: { hostname: 'n1', 'network.mode': 'dhcp' }, properties: {}, macs: ['52:54:00:00:01:01', '52:54:00:00:01:03'] });
    const badImage = await api('PATCH', 'nodes/n1', { image: 'nope' });
    expect(badImage.status).toBe(404);
    const badLayout = await api('PATCH', 'nodes/n1', { layout: '<config><disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB"><part num="1" size="lots" p_type="primary"/></disk></config>' });
    expect(badLayout.status).toBe(400);
    expect(badLayout.json.error.code).toBe('FERRY_E_LAYOUT_INVALID');
    expect(badLayout.json.error.details.problems.length).toBeGreaterThan(0);
    expect((await api('GET', 'nodes')).json.nodes).toHaveLength(1);
    expect((await api('GET', 'nodes/n1')).json.node.name).toBe('n1');
    expect((await api('PUT', 'nodes/n1')).status).toBe(405);
    expect((await api('GET', 'nodes/n9')).status).toBe(404);
  });

  it('groups nest and refuse cycles', async () => {
    await api('POST', 'nodes', { name: 'n3', macs: ['52:54:00:00:01:04'] });
    expect((await api('POST', 'groups/outer', { includes: ['g1'], nodes: ['n3'], description: 'all' })).json.group).toMatchObject({ allNodes: ['n1', 'n3'], includes: ['g1'] });
    const cyc = await api('POST', 'groups/g1', { includes: ['outer'] });
    expect(cyc.status).toBe(409);
    expect(cyc.json.error.code).toBe('FERRY_E_GROUP_CYCLE');
    expect((await api('DELETE', 'groups/outer', { nodes: ['n3'] })).status).toBe(200);
    expect((await api('GET', 'groups/outer')).json.group.allNodes).toEqual(['n1']);
    expect((await api('DELETE', 'groups/outer')).status).toBe(200);
    expect((await api('GET', 'groups/outer')).status).toBe(404);
  });

  it('deployments: arm, list, redeploy, events; images: clone, verify, rm, gc', async () => {
    const a = await call(base, 'POST', ADMIN_ROUTES.deployments, { token: tok, body: { node: 'n1', ttl: '2h', inputs: { extra: 'yes' } } });
    expect(a.status).toBe(201);
    const dep = a.json.deployment;
    expect(Date.parse(dep.expiresAt) - Date.now()).toBeGreaterThan(7_100_000);
    await call(base, 'POST', INSTALL_ROUTES.events, { token: dep.token, body: { events: [{ phase: 'disks', state: 'start' }] } });
    expect((await api('GET', `deployments/${dep.id}/events`)).json.events).toHaveLength(1);
    expect((await api('GET', 'deployments?node=n1&active=1')).json.deployments.map((d: any) => d.id)).toEqual([dep.id]);
    const r = await api('POST', `deployments/${dep.id}/redeploy`);
    expect(r.status).toBe(201);
    const cfg = await call(base, 'GET', INSTALL_ROUTES.config, { token: r.json.deployment.token });
    expect(cfg.json.inputs).toEqual({ hostname: 'n1', 'network.mode': 'dhcp', extra: 'yes' });
    expect((await api('GET', 'deployments/999')).status).toBe(404);

    // n3 has no image: nothing is armed, not even n1.
    const before = (await api('GET', 'deployments?node=n1&active=1')).json.deployments.map((x: any) => x.id);
    const partial = await api('POST', 'deploy', { select: ['@g1', 'n3'] });
    expect(partial.status).toBe(400);
    expect(partial.json.error.code).toBe('FERRY_E_NODE_NO_IMAGE');
    expect((await api('GET', 'deployments?node=n1&active=1')).json.deployments.map((x: any) => x.id)).toEqual(before);
    const many = await api('POST', 'deploy', { select: ['@g1'], inputs: { wave: '1' } });
    expect(many.status).toBe(201);
    expect(many.json.deployments.map((x: any) => x.node)).toEqual(['n1']);
    const badSel = await api('POST', 'deploy', { select: ['../etc', '@'], ttl: 'x' });
    expect(badSel.status).toBe(400);
    expect(badSel.json.error.details.problems.map((p: any) => p.path).sort()).toEqual(['$.select[0]', '$.select[1]', '$.ttl']);

    const cust = await api('POST', 'images/base/customizations', [{ kind: 'hostname' }, { kind: 'regexp', path: '/etc/hostname', pattern: 'host', replacement: 'h' }]);
    expect(cust.status).toBe(201);
    expect(cust.json.image).toMatchObject({ name: 'base', version: 2 });
    expect(cust.json.image.customizations).toHaveLength(2);
    const badCust = await api('POST', 'images/base/customizations', [{ kind: 'file' }]);
    expect(badCust.status).toBe(400);
    expect(badCust.json.error.details.problems.map((p: any) => p.path)).toEqual(['$[0].path', '$[0].content']);

    const c = await api('POST', 'images/base/clone', { name: 'base-web', inputs: { role: 'web' } });
    expect(c.status).toBe(201);
    expect(c.json.image).toMatchObject({ master: 'base@2', inputs: { role: 'web' } });
    expect((await api('POST', 'images/base/verify')).json.results.every((x: any) => x.ok)).toBe(true);
    expect((await api('DELETE', 'images/base')).status).toBe(409);
    expect((await api('DELETE', 'images/base-web')).json.removed).toEqual(['base-web@1']);
    expect((await api('DELETE', 'images/base@1')).json.removed).toEqual(['base@1']);
    expect((await api('POST', 'gc?dryRun=1')).json.removed).toEqual([]);
    expect((await api('GET', 'images')).json.images.map((i: any) => i.name)).toEqual(['base']);
  });
});

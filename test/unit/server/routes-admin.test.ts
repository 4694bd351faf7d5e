import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ROUTES, INSTALL_ROUTES } from '../../../common/protocol.js';
import { waitFor } from '../../../common/wait.js';
import { readJson } from '../../../server/api/http.js';
import { mountRaw } from '../../../server/api/route.js';
import { authOf } from '../../../server/api/auth.js';
import { bearer, fixture, LAYOUT, type Fixture } from './app-fixture.js';

const paths = (r: { json(): any }) => r.json().error.details.problems.map((p: any) => p.path);

describe('admin API (fastify inject)', () => {
  let f: Fixture;
  const api = (method: string, path: string, payload?: unknown, token?: string) =>
    f.app.inject({ method: method as any, url: '/api/v1/admin/' + path, headers: bearer(token ?? f.admin), ...(payload !== undefined ? { payload: payload as object } : {}) });

  beforeAll(async () => {
    f = await fixture([
      // A plain (ctx, req, res) module, as parallel branches write them.
      (app, ctx) =>
        mountRaw(app, ctx, { method: 'POST', url: '/api/v1/admin/raw-echo', auth: 'admin' }, async (_ctx, req, res) => {
          const body = await readJson(req);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ body, auth: authOf(req).kind }));
        }),
    ]);
    const l = await f.layer(Buffer.from('layer bytes'));
    f.image('base', [l]);
  });
  afterAll(() => f?.close());

  it('every admin route refuses a missing or deploy token', async () => {
    const r = await api('POST', 'nodes', { name: 'tok', macs: ['52:54:00:00:09:09'], image: 'base', layout: LAYOUT });
    expect(r.statusCode).toBe(201);
    const dep = (await api('POST', 'deployments', { node: 'tok' })).json().deployment;
    for (const path of ['nodes', 'nodes/tok', 'groups', 'images', 'images/base', 'deployments', `deployments/${dep.id}`, 'discovered', 'audit', 'events']) {
      expect((await f.app.inject({ method: 'GET', url: '/api/v1/admin/' + path })).statusCode, path).toBe(401);
      const d = await api('GET', path, undefined, dep.token);
      expect(d.statusCode, path).toBe(403);
      expect(d.json().error.code).toBe('FERRY_E_FORBIDDEN');
    }
    // Tokens before bodies: a bad body without a token is 401, not 400.
    expect((await f.app.inject({ method: 'POST', url: '/api/v1/admin/nodes', payload: { bad: 1 } })).statusCode).toBe(401);
  });

  it('nodes: create, read, change, delete; bad bodies and names', async () => {
    const c = await api('POST', 'nodes', { name: 'n1', macs: ['52:54:00:00:01:01'], image: 'base', layout: LAYOUT, inputs: { hostname: 'n1' }, properties: { rack: 'b2' }, groups: ['g1'] });
    expect(c.statusCode).toBe(201);
    expect(c.json().node).toMatchObject({ name: 'n1', image: 'base', properties: { rack: 'b2' }, groups: ['g1'] });
    const bad = await api('POST', 'nodes', { name: '../n', macs: ['zz', 5], inputs: { 'a b': 1 }, diskMap: [], extra: 1 });
    expect(bad.statusCode).toBe(400);
    expect(paths(bad)).toEqual(['$.extra', '$.name', '$.macs[0]', '$.macs[1]', '$.inputs.a b', '$.inputs.a b', '$.diskMap']);
    expect(paths(await api('POST', 'nodes', { name: 'n2', macs: [] }))).toEqual(['$.macs']);
    expect(paths(await api('POST', 'nodes', []))).toEqual(['$']);
    const p = await api('PATCH', 'nodes/n1', { unsetProperties: ['rack'], addMacs: ['52-54-00-00-01-03'], diskMap: { '/dev/sda': '/dev/vda' } });
    expect(p.statusCode).toBe(200);
    expect(p.json().node).toMatchObject({ properties: {}, macs: ['52:54:00:00:01:01', '52:54:00:00:01:03'] });
    expect(paths(await api('PATCH', 'nodes/n1', { image: 5, removeMacs: ['x'], diskMap: { sda: 'vda' } }))).toEqual(['$.removeMacs[0]', '$.image', '$.diskMap.sda', '$.diskMap.sda']);
    expect((await api('GET', 'nodes')).json().nodes.map((n: any) => n.name)).toContain('n1');
    expect((await api('GET', 'nodes/n1')).json().node.name).toBe('n1');
    expect((await api('GET', 'nodes/n9')).statusCode).toBe(404);
    const name = await api('GET', 'nodes/..%2f..%2fadmin.token');
    expect(name.statusCode).toBe(400);
    expect(name.json().error.code).toBe('FERRY_E_BAD_NAME');
    expect((await api('PUT', 'nodes/n1')).statusCode).toBe(405);
    await api('POST', 'nodes', { name: 'gone', macs: ['52:54:00:00:01:07'] });
    expect((await api('DELETE', 'nodes/gone')).json()).toEqual({ ok: true });
    expect((await api('GET', 'nodes/gone')).statusCode).toBe(404);
  });

  it('groups: add, read, remove members (DELETE with a body), remove the group (without)', async () => {
    await api('POST', 'nodes', { name: 'n3', macs: ['52:54:00:00:01:04'] });
    const g = await api('POST', 'groups/outer', { nodes: ['n3'], includes: ['g1'], description: 'all' });
    expect(g.statusCode).toBe(200);
    expect(g.json().group).toMatchObject({ includes: ['g1'] });
    expect(paths(await api('POST', 'groups/outer', { nodes: 'n3', colour: 'red' }))).toEqual(['$.colour', '$.nodes']);
    expect(paths(await api('DELETE', 'groups/outer', { nodes: [1] }))).toEqual(['$.nodes[0]']);
    expect((await api('DELETE', 'groups/outer', { nodes: ['n3'] })).statusCode).toBe(200);
    expect((await api('GET', 'groups')).json().groups.map((x: any) => x.name)).toContain('outer');
    expect((await api('DELETE', 'groups/outer')).statusCode).toBe(200);
    expect((await api('GET', 'groups/outer')).statusCode).toBe(404);
    expect((await api('PATCH', 'groups/outer', {})).statusCode).toBe(405);
  });

  it('deployments: arm, list, read, events, redeploy, arm a selection', async () => {
    const a = await api('POST', 'deployments', { node: 'n1', ttl: '2h', inputs: { extra: 'yes' } });
    expect(a.statusCode).toBe(201);
    const dep = a.json().deployment;
    expect(dep).toMatchObject({ node: 'n1', token: expect.stringMatching(/^ferry-deploy-/) });
    expect(paths(await api('POST', 'deployments', { node: '../x', image: 5, layout: '', ttl: 'soon', extra: true }))).toEqual(['$.extra', '$.node', '$.image', '$.layout', '$.ttl']);
    await f.app.inject({ method: 'POST', url: INSTALL_ROUTES.events, headers: bearer(dep.token), payload: { events: [{ phase: 'disks', state: 'start' }] } });
    expect((await api('GET', `deployments/${dep.id}/events`)).json().events).toHaveLength(1);
    expect((await api('GET', `deployments/${dep.id}`)).json().deployment.id).toBe(dep.id);
    expect((await api('GET', 'deployments?node=n1&active=1')).json().deployments.map((x: any) => x.id)).toEqual([dep.id]);
    expect((await api('GET', 'deployments?node=..%2fx')).statusCode).toBe(400);
    expect((await api('GET', 'deployments/x1')).statusCode).toBe(404);
    expect((await api('GET', 'deployments/999')).json().error.code).toBe('FERRY_E_DEPLOYMENT_NOT_FOUND');
    expect((await api('GET', `deployments/${dep.id}/nope`)).statusCode).toBe(404);
    const r = await api('POST', `deployments/${dep.id}/redeploy`);
    expect(r.statusCode).toBe(201);
    expect(r.json().deployment.id).not.toBe(dep.id);
    expect((await api('GET', `deployments/${dep.id}/redeploy`)).statusCode).toBe(405);
    const many = await api('POST', 'deploy', { select: ['@g1'] });
    expect(many.statusCode).toBe(201);
    expect(many.json().deployments.map((x: any) => x.node)).toEqual(['n1']);
    expect(paths(await api('POST', 'deploy', { select: ['../etc', '@', 'rack=b2'], ttl: 'x' }))).toEqual(['$.select[0]', '$.select[1]', '$.ttl']);
    expect(paths(await api('POST', 'deploy', { select: [] }))).toEqual(['$.select']);
    expect(ADMIN_ROUTES.deployments).toBe('/api/v1/admin/deployments');
  });

  it('deploy with the transport options of `ferry deploy` (--transport, --min-receivers, --max-wait, --max-bitrate)', async () => {
    for (const name of ['mc1', 'mc2']) {
      expect((await api('POST', 'nodes', { name, macs: [`52:54:00:00:0c:0${name.slice(-1)}`], image: 'base', layout: LAYOUT, groups: ['mc'] })).statusCode).toBe(201);
    }
    const many = await api('POST', 'deploy', { select: ['@mc'], transport: 'multicast', minReceivers: 2, maxWait: 90, maxBitrate: '80m' });
    expect(many.statusCode).toBe(201);
    const ids = many.json().deployments.map((x: any) => x.id);
    const infos = await Promise.all(ids.map(async (id: number) => (await api('GET', `deployments/${id}`)).json().deployment));
    for (const i of infos) expect(i.transport).toEqual({ kind: 'multicast', multicast: { minReceivers: 2, maxWaitS: 90, maxBitrate: '80m' } });
    // One request is one batch (one multicast session), as one `ferry deploy` is.
    expect(infos[0].batch).toBeTruthy();
    expect(infos[1].batch).toBe(infos[0].batch);
    const one = await api('POST', 'deployments', { node: 'mc1', transport: 'http' });
    expect(one.statusCode).toBe(201);
    expect((await api('GET', `deployments/${one.json().deployment.id}`)).json().deployment.transport).toEqual({ kind: 'http' });
    // Bad values: the schema's bounds, then the same check as the CLI's (a transport name, a bit rate).
    expect(paths(await api('POST', 'deploy', { select: ['@mc'], minReceivers: 0, maxWait: 3601, maxBitrate: 5 }))).toEqual(['$.minReceivers', '$.maxWait', '$.maxBitrate']);
    const bad = await api('POST', 'deploy', { select: ['@mc'], transport: 'pigeon', maxBitrate: 'fast' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('FERRY_E_BAD_VALUE');
    expect(paths(bad)).toEqual(['transport', 'max-bitrate']);
    // Session options without a multicast node: refused, and nothing is armed.
    const before = (await api('GET', 'deployments?node=mc2')).json().deployments.length;
    const none = await api('POST', 'deploy', { select: ['mc2'], transport: 'http', maxWait: 30 });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.details.problems[0]).toMatchObject({ path: 'maxWait', message: expect.stringMatching(/no node of this request deploys by multicast/) });
    expect((await api('GET', 'deployments?node=mc2')).json().deployments.length).toBe(before);
    expect((await api('POST', 'deployments', { node: 'mc2', minReceivers: 3 })).statusCode).toBe(400);
    expect((await api('GET', 'deployments?node=mc2')).json().deployments.length).toBe(before);
    // seedWait: a torrent option, kept in the record; refused without a torrent node and out of bounds.
    const sw = await api('POST', 'deployments', { node: 'mc1', transport: 'torrent', seedWait: 30 });
    expect(sw.statusCode).toBe(201);
    expect((await api('GET', `deployments/${sw.json().deployment.id}`)).json().deployment.transport).toEqual({ kind: 'torrent', seedWaitS: 30 });
    const noTorrent = await api('POST', 'deploy', { select: ['mc2'], transport: 'http', seedWait: 30 });
    expect(noTorrent.statusCode).toBe(400);
    expect(noTorrent.json().error.details.problems[0]).toMatchObject({ path: 'seedWait', message: expect.stringMatching(/no node of this request deploys by torrent/) });
    expect(paths(await api('POST', 'deploy', { select: ['mc2'], transport: 'torrent', seedWait: 3601 }))).toEqual(['$.seedWait']);
    expect((await api('GET', 'deployments?node=mc2')).json().deployments.length).toBe(before);
  });

  it('images: list, read, customizations, clone, verify, delete, gc', async () => {
    expect((await api('GET', 'images')).json().images.map((i: any) => i.name)).toEqual(['base']);
    expect((await api('GET', 'images/base')).json().image).toMatchObject({ name: 'base', version: 1 });
    const cust = await api('POST', 'images/base/customizations', [{ kind: 'hostname' }, { kind: 'regexp', path: '/etc/hostname', pattern: 'h', replacement: 'x' }]);
    expect(cust.statusCode).toBe(201);
    expect(cust.json().image).toMatchObject({ version: 2, customizations: [{ kind: 'hostname' }, { kind: 'regexp' }] });
    const bad = await api('POST', 'images/base/customizations', [{ kind: 'file', path: 'etc/x' }, { kind: 'script' , script: 1 }, { kind: 'teleport' }]);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('FERRY_E_BAD_CUSTOMIZATIONS');
    expect(paths(bad)).toEqual(['$[0].content', '$[0].path', '$[1].script', '$[2].kind']);
    expect(bad.json().error.details.problems[3].message).toMatch(/unknown kind "teleport": use hostname, network, file/);
    const c = await api('POST', 'images/base/clone', { name: 'base-web', inputs: { role: 'web' } });
    expect(c.statusCode).toBe(201);
    expect(c.json().image).toMatchObject({ master: 'base@2', inputs: { role: 'web' } });
    expect(paths(await api('POST', 'images/base/clone', { name: '..' }))).toEqual(['$.name']);
    expect((await api('POST', 'images/base/verify')).json().results.every((x: any) => x.ok)).toBe(true);
    expect((await api('DELETE', 'images/base-web')).json().removed).toEqual(['base-web@1']);
    expect((await api('GET', 'images/base%2f..')).statusCode).toBe(400);
    expect((await api('POST', 'gc?dryRun=1')).json().removed).toEqual([]);
    expect((await api('GET', 'gc')).statusCode).toBe(405);
  });

  it('audit: who changed what, newest first', async () => {
    const r = await api('GET', 'audit');
    expect(r.statusCode).toBe(200);
    expect(r.json().audit.some((a: any) => a.actor === 'api:admin' && a.action === 'node.add')).toBe(true);
  });

  it('events: the monitor stream starts with a snapshot and carries what is published', async () => {
    const p = api('GET', 'events');
    await waitFor(() => f.ctx.hub.size === 1 || undefined, { what: 'the stream to attach', timeoutMs: 10_000 });
    f.ctx.hub.publish('progress', { deployment: 1, node: 'n1', event: { phase: 'disks', state: 'start' } });
    f.ctx.hub.close();
    const r = await p;
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(r.body).toMatch(/^retry: 2000\n\nid: \d+\nevent: snapshot\ndata: \{/);
    expect(r.body).toContain('event: progress\ndata: {"deployment":1,"node":"n1"');
  });

  it('a plain (ctx, req, res) module mounts with the token hook and reads its own body', async () => {
    const r = await api('POST', 'raw-echo', { hello: 'world' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ body: { hello: 'world' }, auth: 'admin' });
    expect((await f.app.inject({ method: 'POST', url: '/api/v1/admin/raw-echo', payload: {} })).statusCode).toBe(401);
    const bad = await f.app.inject({ method: 'POST', url: '/api/v1/admin/raw-echo', headers: { ...bearer(f.admin), 'content-type': 'application/json' }, payload: '{' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('FERRY_E_BAD_JSON');
  });
});

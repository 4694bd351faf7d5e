/**
 * The answers of every JSON route of the installer and admin APIs, validated against their
 * schemas (common/schema/responses.ts). The server does not serialize with the schemas, so this
 * is where a field sent but not declared (the objects are closed), a missing field or a wrong
 * type is caught. Also checks at compile time that the server's own types of what it sends
 * (those not derived from the schemas) fit them.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISCOVERY_ROUTES, INSTALL_ROUTES, MULTICAST_ROUTES, TORRENT_ROUTES } from '../../../common/protocol.js';
import { compile } from '../../../common/schema/validate.js';
import * as R from '../../../common/schema/responses.js';
import type { AuditEntry } from '../../../server/db/audit.js';
import type { DiscoveredInfo, NodeInfo } from '../../../server/db/inventory.js';
import type { GroupInfo } from '../../../server/db/groups.js';
import type { VerifyResult } from '../../../server/store/image-gc.js';
import { bearer, fixture, LAYOUT, type Fixture } from './app-fixture.js';

// What the server's modules declare must be what the schemas allow (a compile-time check).
type Fits<A, B extends A> = B;
export type _TypesFit = [
  Fits<R.NodeInfoBody, NodeInfo>,
  Fits<R.GroupInfoBody, GroupInfo>,
  Fits<R.DiscoveredInfoBody, DiscoveredInfo>,
  Fits<R.VerifyResultBody, VerifyResult>,
  Fits<R.AuditEntryBody, AuditEntry>,
];

/** The answer's problems against the schema, as "path: message" (empty when it conforms). */
function problems(schema: TSchema, body: unknown): string[] {
  const v = compile(schema);
  return v(body) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '$'}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`);
}

const INVENTORY = {
  system: { vendor: 'QEMU', product: 'Standard PC', serial: 's1', uuid: 'u1' },
  firmware: { vendor: 'SeaBIOS', version: '1', date: '04/01/2014', mode: 'bios' },
  cpu: { model: 'qemu64', sockets: 1, cores: 2, threads: 2 },
  memoryBytes: 2 ** 31,
  disks: [{ path: '/dev/vda', sizeBytes: 2 ** 33, rotational: false, transport: 'virtio' }],
  nics: [{ name: 'eth0', mac: '52:54:00:00:01:01', driver: 'virtio_net', link: 'up' }],
};

describe('response bodies match their schemas (fastify inject)', () => {
  let f: Fixture;
  const api = (method: string, path: string, payload?: unknown, token?: string) =>
    f.app.inject({ method: method as any, url: path.startsWith('/') ? path : '/api/v1/admin/' + path, headers: bearer(token ?? f.admin), ...(payload !== undefined ? { payload: payload as object } : {}) });
  /** Call a route, check its status and its body against the schema, return the body. */
  const call = async <T extends TSchema>(schema: T, status: number, method: string, path: string, payload?: unknown, token?: string): Promise<Static<T>> => {
    const r = await api(method, path, payload, token);
    expect(r.statusCode, `${method} ${path}: ${r.body.slice(0, 300)}`).toBe(status);
    const body = r.json();
    expect(problems(schema, body), `${method} ${path}`).toEqual([]);
    return body;
  };

  beforeAll(async () => {
    f = await fixture();
    f.image('base', [await f.layer(Buffer.from('layer bytes'))]);
  });
  afterAll(() => f?.close());

  it('the schemas refuse what they do not declare (the check can fail)', () => {
    expect(problems(R.OkSchema, { ok: true })).toEqual([]);
    expect(problems(R.OkSchema, { ok: true, extra: 1 })).toEqual(['$: must NOT have additional properties (extra)']);
    expect(problems(R.ErrorBodySchema, { error: { code: 'oops', message: 'x' } })).toHaveLength(1);
    expect(problems(R.ArmResponseSchema, { deployment: { id: 1, node: 'n', token: 'ferry-deploy-x', expiresAt: 'tomorrow' } })).toHaveLength(1);
  });

  it('nodes, groups and discovered MACs', async () => {
    await call(R.NodeBodySchema, 201, 'POST', 'nodes', { name: 'n1', macs: ['52:54:00:00:01:01'], image: 'base', layout: LAYOUT, inputs: { hostname: 'n1' }, properties: { rack: 'b2' }, groups: ['g1'], diskMap: { '/dev/sda': '/dev/vda' } });
    await call(R.NodeBodySchema, 201, 'POST', 'nodes', { name: 'bare', macs: ['52:54:00:00:01:02'] });
    await call(R.NodeListSchema, 200, 'GET', 'nodes');
    await call(R.NodeBodySchema, 200, 'GET', 'nodes/n1');
    await call(R.NodeBodySchema, 200, 'PATCH', 'nodes/bare', { addMacs: ['52:54:00:00:01:03'], bootAction: 'install' });
    await call(R.GroupBodySchema, 200, 'POST', 'groups/outer', { nodes: ['bare'], includes: ['g1'], description: 'all' });
    await call(R.GroupListSchema, 200, 'GET', 'groups');
    await call(R.GroupBodySchema, 200, 'GET', 'groups/outer');
    await call(R.OkSchema, 200, 'DELETE', 'groups/outer', { nodes: ['bare'] });
    await call(R.OkSchema, 200, 'DELETE', 'groups/outer');
    expect((await f.app.inject({ method: 'GET', url: '/boot/ipxe?mac=02:00:00:00:00:99' })).statusCode).toBe(200);
    const d = await call(R.DiscoveredListSchema, 200, 'GET', 'discovered');
    expect(d.discovered.length).toBe(1);
    // A discovery boot (ferry serve --discover): its report, the list with it, its enlistment.
    f.ctx.discover = { finish: 'poweroff' };
    const script = (await f.app.inject({ method: 'GET', url: '/boot/ipxe?mac=02:00:00:00:00:98' })).body;
    f.ctx.discover = undefined;
    const discoveryToken = /ferry\.token=(\S+)/.exec(script)![1];
    await call(R.DiscoveryStoredSchema, 200, 'POST', DISCOVERY_ROUTES.inventory, { ...INVENTORY, nics: [{ name: 'eth0', mac: '02:00:00:00:00:98', link: 'up' }] }, discoveryToken);
    expect((await call(R.DiscoveredListSchema, 200, 'GET', 'discovered')).discovered.find((x) => x.mac === '02:00:00:00:00:98')?.inventory?.serial).toBe('s1');
    await call(R.EnlistedSchema, 201, 'POST', 'discovered/enlist', { macs: ['02:00:00:00:00:98'], name: 'found-{mac}', image: 'base', layout: LAYOUT, groups: ['g1'] });
    await call(R.OkSchema, 200, 'DELETE', 'nodes/bare');
  });

  it('deployments: arm, the installer API, list, record, events, redeploy, a selection, cancel', async () => {
    const armed = await call(R.ArmResponseSchema, 201, 'POST', 'deployments', { node: 'n1', ttl: '2h' });
    const token = armed.deployment.token;
    const cfg = await call(R.InstallConfigSchema, 200, 'GET', INSTALL_ROUTES.config, undefined, token);
    expect(cfg.diskMap).toEqual({ '/dev/sda': '/dev/vda' });
    await call(R.EventsStoredSchema, 200, 'POST', INSTALL_ROUTES.events, { events: [{ phase: 'disks', state: 'start' }, { phase: 'layers', state: 'progress', object: 'sha256:x', bytes: 1, total: 2, details: { a: 1 } }] }, token);
    await call(R.InventoryStoredSchema, 200, 'POST', INSTALL_ROUTES.inventory, INVENTORY, token);
    await call(R.DeploymentListSchema, 200, 'GET', 'deployments?node=n1');
    const rec = await call(R.DeploymentRecordSchema, 200, 'GET', `deployments/${armed.deployment.id}`);
    expect(rec.events).toHaveLength(2);
    await call(R.DeploymentEventsSchema, 200, 'GET', `deployments/${armed.deployment.id}/events`);
    await call(R.OkSchema, 200, 'POST', INSTALL_ROUTES.result, { status: 'failed', error: { code: 'FERRY_E_X', message: 'disk on fire', phase: 'disks' } }, token);
    // A failed record carries its error.
    const failed = await call(R.DeploymentRecordSchema, 200, 'GET', `deployments/${armed.deployment.id}`);
    expect(failed.deployment).toMatchObject({ status: 'failed', error: { code: 'FERRY_E_X' } });
    await call(R.ArmResponseSchema, 201, 'POST', `deployments/${armed.deployment.id}/redeploy`);
    await call(R.DeployResponseSchema, 201, 'POST', 'deploy', { select: ['@g1'], transport: 'multicast', minReceivers: 1, maxWait: 30, maxBitrate: '80m' });
    const list = await call(R.DeploymentListSchema, 200, 'GET', 'deployments?active=1');
    expect(list.deployments[0].transport.kind).toBe('multicast');
    // Fan-out answers with a running deployment's token: the layer's torrent and its swarm; a
    // multicast join of a deployment that is not multicast is refused with the error body.
    const run = (await call(R.ArmResponseSchema, 201, 'POST', 'deployments', { node: 'n1' })).deployment.token;
    const layer = cfg.image.layers[0].digest;
    await call(R.LayerTorrentAnswerSchema, 200, 'GET', `${TORRENT_ROUTES.torrent}?layer=${layer}`, undefined, run);
    await call(R.TorrentSwarmStateSchema, 200, 'GET', `${TORRENT_ROUTES.swarm}?layer=${layer}`, undefined, run);
    await call(R.ErrorBodySchema, 400, 'POST', MULTICAST_ROUTES.join, { layer }, run);
    const c = await call(R.CancelResponseSchema, 200, 'POST', 'cancel', { select: ['n1'] });
    expect(c.cancelled.length).toBe(1);
  });

  it('images: list, read, customizations, clone, verify, delete, gc; and the audit log', async () => {
    await call(R.ImageListSchema, 200, 'GET', 'images');
    await call(R.ImageBodySchema, 200, 'GET', 'images/base');
    await call(R.ImageBodySchema, 201, 'POST', 'images/base/customizations', [{ kind: 'hostname' }, { kind: 'file', path: '/etc/motd', content: 'hi', mode: 420 }]);
    const clone = await call(R.ImageBodySchema, 201, 'POST', 'images/base/clone', { name: 'base-web', inputs: { role: 'web' } });
    expect(clone.image.master).toBe('base@2');
    await call(R.VerifyResponseSchema, 200, 'POST', 'images/base/verify');
    await call(R.ImageRemovedSchema, 200, 'DELETE', 'images/base-web');
    await call(R.GcResponseSchema, 200, 'POST', 'gc?dryRun=1');
    const a = await call(R.AuditListSchema, 200, 'GET', 'audit');
    expect(a.audit.length).toBeGreaterThan(5);
  });

  it('every refusal is an error body: 400, 401, 403, 404, 405, 409, 413, 415', async () => {
    const dep = (await api('POST', 'deployments', { node: 'n1' })).json().deployment;
    await call(R.ErrorBodySchema, 400, 'POST', 'nodes', { name: '../n', macs: [] });
    await call(R.ErrorBodySchema, 401, 'GET', 'nodes', undefined, 'nope');
    await call(R.ErrorBodySchema, 403, 'GET', 'nodes', undefined, dep.token);
    await call(R.ErrorBodySchema, 403, 'GET', INSTALL_ROUTES.config, undefined, f.admin);
    await call(R.ErrorBodySchema, 404, 'GET', 'nodes/n9');
    await call(R.ErrorBodySchema, 404, 'GET', 'deployments/999');
    await call(R.ErrorBodySchema, 405, 'PUT', 'nodes/n1');
    await call(R.ErrorBodySchema, 409, 'POST', 'nodes', { name: 'n1', macs: ['52:54:00:00:01:09'] });
    const big = await f.app.inject({ method: 'POST', url: '/api/v1/admin/nodes', headers: { ...bearer(f.admin), 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'x'.repeat(2 << 20) }) });
    expect(big.statusCode).toBe(413);
    expect(problems(R.ErrorBodySchema, big.json())).toEqual([]);
    const type = await f.app.inject({ method: 'POST', url: '/api/v1/admin/nodes', headers: { ...bearer(f.admin), 'content-type': 'text/plain' }, payload: 'x' });
    expect(type.statusCode).toBe(415);
    expect(problems(R.ErrorBodySchema, type.json())).toEqual([]);
  });
});

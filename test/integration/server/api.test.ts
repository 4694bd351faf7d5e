import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { ADMIN_ROUTES, INSTALL_ROUTES, blobPath, type ArmResponse, type InstallConfig } from '../../../common/protocol.js';
import { addNode, getNode } from '../../../server/db/inventory.js';
import { importImage } from '../../../server/store/image-import.js';
import { SseParser } from '../../../cli/monitor.js';
import { MonitorState } from '../../../server/monitor.js';
import { call, harness, LAYOUT, smallTree, tempDir, type Harness } from './helpers.js';

describe('image server on loopback', () => {
  let h: Harness;
  let base: string;
  let admin: string;
  let boot: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    boot = tempDir('ferry-boot-');
    const bootDir = boot.dir;
    writeFileSync(join(bootDir, 'vmlinuz'), Buffer.alloc(123_456, 7));
    writeFileSync(join(bootDir, 'initrd.img'), Buffer.alloc(54_321, 9));
    h = await harness({ bootDir });
    base = h.srv.url;
    admin = h.srv.adminToken;
    const tree = smallTree(join(h.tmp, 'tree'));
    await importImage(h.data, 'base', { dir: tree, actor: 'test' });
    await importImage(h.data, 'other', { dir: smallTree(join(h.tmp, 'tree2'), 'b'), actor: 'test' });
    addNode(h.data, 'web1', { macs: ['52:54:00:aa:00:01'], image: 'base', layoutXml: LAYOUT, inputs: { hostname: 'web1', 'network.mode': 'dhcp' }, groups: ['web'] }, 'test');
    addNode(h.data, 'web2', { macs: ['52-54-00-AA-00-02'], image: 'base', layoutXml: LAYOUT, groups: ['web'] }, 'test');
  });
  afterAll(async () => {
    await h?.close();
    boot?.cleanup();
  });

  it('creates the admin token with mode 0600 at first start', () => {
    const st = statSync(join(h.dataDir, 'admin.token'));
    expect(st.mode & 0o777).toBe(0o600);
    expect(readFileSync(join(h.dataDir, 'admin.token'), 'utf8').trim()).toBe(admin);
    expect(admin.length).toBeGreaterThan(40);
    // The database holds deploy tokens.
    expect(statSync(join(h.dataDir, 'ferry.db')).mode & 0o777).toBe(0o600);
  });

  it('arms, boots, configures, reports and switches the node to local boot', async () => {
    const armed = await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, body: { node: 'web1' } });
    expect(armed.status).toBe(201);
    const dep = (armed.json as ArmResponse).deployment;
    expect(dep.node).toBe('web1');
    expect(dep.token).toMatch(/^ferry-deploy-[A-Za-z0-9_-]{40,}$/);
    expect(getNode(h.data, 'web1').bootAction).toBe('install');

    // The event stream sees what the installer reports.
    const state = new MonitorState();
    const seen: string[] = [];
    const sse = await request(base + '/api/v1/admin/events', { headers: { authorization: `Bearer ${admin}` } });
    expect(sse.statusCode).toBe(200);
    const parser = new SseParser((type, data) => {
      seen.push(type);
      state.apply(type, JSON.parse(data));
    });
    sse.body.setEncoding('utf8');
    sse.body.on('data', (c: string) => parser.push(c));

    const ipxe = await call(base, 'GET', '/boot/ipxe?mac=52:54:00:AA:00:01');
    expect(ipxe.status).toBe(200);
    expect(ipxe.text).toMatch(/^#!ipxe/);
    expect(ipxe.text).toContain(`${base}/boot/vmlinuz`);
    expect(ipxe.text).toContain(`${base}/boot/initrd.img`);
    expect(ipxe.text).toContain(`ferry.server=${base}`);
    expect(ipxe.text).toContain(`ferry.token=${dep.token}`);
    expect(ipxe.text).toContain('BOOTIF=01-52-54-00-aa-00-01');

    const k = await call(base, 'GET', '/boot/vmlinuz');
    expect(k.status).toBe(200);
    expect(k.buf.length).toBe(123_456);
    const i = await call(base, 'HEAD', '/boot/initrd.img');
    expect(i.headers['content-length']).toBe('54321');

    const cfgRes = await call(base, 'GET', INSTALL_ROUTES.config, { token: dep.token });
    expect(cfgRes.status).toBe(200);
    const cfg = cfgRes.json as InstallConfig;
    expect(cfg.node.name).toBe('web1');
    expect(cfg.node.macs).toEqual(['52:54:00:aa:00:01']);
    expect(cfg.deployment.id).toBe(dep.id);
    expect(cfg.image.name).toBe('base');
    expect(cfg.image.layers).toHaveLength(1);
    expect(cfg.image.layers[0].mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(cfg.layout.xml).toBe(LAYOUT);
    expect(cfg.layout.digest).toBe('sha256:' + createHash('sha256').update(LAYOUT).digest('hex'));
    expect(cfg.inputs).toEqual({ hostname: 'web1', 'network.mode': 'dhcp' });
    expect(cfg.transport).toEqual({ kind: 'http', baseUrl: base });

    // The layer it names downloads with the deploy token and hashes to its digest.
    const layer = cfg.image.layers[0];
    const blob = await call(base, 'GET', blobPath(layer.digest), { token: dep.token });
    expect(blob.status).toBe(200);
    expect(blob.buf.length).toBe(layer.size);
    expect('sha256:' + createHash('sha256').update(blob.buf).digest('hex')).toBe(layer.digest);

    const t0 = Date.now();
    const ev = await call(base, 'POST', INSTALL_ROUTES.events, {
      token: dep.token,
      body: {
        events: [
          { phase: 'layers', state: 'start', object: layer.digest, total: 10_000_000, ts: new Date(t0).toISOString() },
          { phase: 'layers', state: 'progress', object: layer.digest, bytes: 2_000_000, total: 10_000_000, ts: new Date(t0 + 1000).toISOString() },
          { phase: 'layers', state: 'progress', object: layer.digest, bytes: 4_000_000, total: 10_000_000, ts: new Date(t0 + 2000).toISOString() },
        ],
      },
    });
    expect(ev.status).toBe(200);
    expect(ev.json).toMatchObject({ ok: true, stored: 3 });

    const { waitFor } = await import('../../../common/wait.js');
    const row = await waitFor(() => state.rows().find((r) => r.node === 'web1' && r.percent !== undefined && r.percent >= 40), { what: 'the monitor to show web1 at 40%', timeoutMs: 30_000 });
    expect(row.stage).toBe('layers');
    expect(row.mbps).toBeCloseTo(2, 5);
    expect(row.etaSeconds).toBeCloseTo(3, 5);
    expect(row.state).toBe('running');

    const res = await call(base, 'POST', INSTALL_ROUTES.result, { token: dep.token, body: { status: 'success' } });
    expect(res.status).toBe(200);
    expect(getNode(h.data, 'web1').bootAction).toBe('local');
    await waitFor(() => state.rows().find((r) => r.node === 'web1' && r.state === 'success'), { what: 'the monitor to show success', timeoutMs: 30_000 });
    expect(seen[0]).toBe('snapshot');
    sse.body.destroy();

    const again = await call(base, 'POST', INSTALL_ROUTES.result, { token: dep.token, body: { status: 'success' } });
    // The deployment ended: its token is refused from now on (lifecycle.test.ts covers every route).
    expect(again.status).toBe(401);
    expect(again.json.error.code).toBe('FERRY_E_TOKEN_ENDED');

    const local = await call(base, 'GET', '/boot/ipxe?mac=52:54:00:aa:00:01');
    expect(local.text).not.toContain('ferry.token');
    expect(local.text).toContain('exit');

    const hist = await call(base, 'GET', `${ADMIN_ROUTES.deployments}/${dep.id}`, { token: admin });
    expect(hist.json.deployment.status).toBe('success');
    expect(hist.json.events.map((e: any) => e.state)).toEqual(['start', 'progress', 'progress']);
  });

  it('records unknown MACs as discovered and boots them locally', async () => {
    const r = await call(base, 'GET', '/boot/ipxe?mac=02:00:00:00:00:99');
    expect(r.status).toBe(200);
    expect(r.text).toContain('exit');
    const d = await call(base, 'GET', '/api/v1/admin/discovered', { token: admin });
    expect(d.json.discovered.map((x: any) => x.mac)).toContain('02:00:00:00:00:99');
    const bad = await call(base, 'GET', '/boot/ipxe?mac=zz');
    expect(bad.status).toBe(400);
    expect(bad.json.error.details.problems[0].path).toBe('mac');
  });

  it('arming again revokes the older token', async () => {
    const a = (await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, body: { node: 'web2' } })).json.deployment;
    const b = (await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, body: { node: 'web2', image: 'other' } })).json.deployment;
    const old = await call(base, 'GET', INSTALL_ROUTES.config, { token: a.token });
    expect(old.status).toBe(401);
    expect(old.json.error.code).toBe('FERRY_E_TOKEN_REVOKED');
    const cur = await call(base, 'GET', INSTALL_ROUTES.config, { token: b.token });
    expect(cur.status).toBe(200);
    expect(cur.json.image.name).toBe('other');
  });
});

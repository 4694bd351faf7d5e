/**
 * The deployment lifecycle through the real server: a deploy token works from arming until its
 * deployment ends, and not one call after that (config, events, result and blobs alike).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ADMIN_ROUTES, INSTALL_ROUTES, blobPath, type ArmResponse, type InstallConfig } from '../../../common/protocol.js';
import { addNode } from '../../../server/db/inventory.js';
import { importImage } from '../../../server/store/image-import.js';
import { ServerClient } from '../../../installer/client.js';
import { run } from '../../../common/run.js';
import { listAudit } from '../../../server/db/audit.js';
import { getNode } from '../../../server/db/inventory.js';
import { call, harness, LAYOUT, smallTree, type Harness } from './helpers.js';

describe('deployment lifecycle', () => {
  let h: Harness;
  let base: string;
  let admin: string;

  beforeAll(async () => {
    h = await harness();
    base = h.srv.url;
    admin = h.srv.adminToken;
    await importImage(h.data, 'base', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
    for (let i = 1; i <= 4; i++) addNode(h.data, `n${i}`, { macs: [`52:54:00:bb:00:0${i}`], image: 'base', layoutXml: LAYOUT, groups: ['rack'] }, 'test');
  });
  afterAll(async () => {
    await h?.close();
  });

  async function arm(node: string): Promise<ArmResponse['deployment']> {
    const r = await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, body: { node } });
    expect(r.status).toBe(201);
    return (r.json as ArmResponse).deployment;
  }

  /** Every installer call a token can make, with the answer's status and error code. */
  async function everyCall(token: string, layer: string) {
    const out: Record<string, { status: number; code?: string }> = {};
    const put = (k: string, r: { status: number; json: any }) => (out[k] = { status: r.status, code: r.json?.error?.code });
    put('config', await call(base, 'GET', INSTALL_ROUTES.config, { token }));
    put('events', await call(base, 'POST', INSTALL_ROUTES.events, { token, body: { events: [{ phase: 'layers', state: 'heartbeat' }] } }));
    put('blob', await call(base, 'GET', blobPath(layer), { token }));
    put('blobHead', await call(base, 'HEAD', blobPath(layer), { token }));
    put('result', await call(base, 'POST', INSTALL_ROUTES.result, { token, body: { status: 'success' } }));
    return out;
  }

  for (const outcome of ['success', 'failed'] as const) {
    it(`refuses every call with the token of a deployment that ended with ${outcome}`, async () => {
      const dep = await arm('n1');
      const cfg = (await call(base, 'GET', INSTALL_ROUTES.config, { token: dep.token })).json as InstallConfig;
      const layer = cfg.image.layers[0].digest;
      expect((await call(base, 'GET', blobPath(layer), { token: dep.token })).status).toBe(200);
      const body = outcome === 'success' ? { status: 'success' } : { status: 'failed', error: { code: 'FERRY_E_TEST', message: 'a test failure' } };
      expect((await call(base, 'POST', INSTALL_ROUTES.result, { token: dep.token, body })).status).toBe(200);

      const after = await everyCall(dep.token, layer);
      for (const [k, v] of Object.entries(after)) {
        expect(v.status, k).toBe(401);
        // HEAD answers carry no body.
        if (k !== 'blobHead') expect(v.code, k).toBe('FERRY_E_TOKEN_ENDED');
      }
      const rec = await call(base, 'GET', `${ADMIN_ROUTES.deployments}/${dep.id}`, { token: admin });
      expect(rec.json.deployment.status).toBe(outcome);
    });
  }

  it('a second install with an ended token stops at the configuration', async () => {
    const dep = await arm('n2');
    expect((await call(base, 'GET', INSTALL_ROUTES.config, { token: dep.token })).status).toBe(200);
    expect((await call(base, 'POST', INSTALL_ROUTES.result, { token: dep.token, body: { status: 'success' } })).status).toBe(200);
    const client = new ServerClient({ server: base, token: dep.token, backoff: { baseMs: 10, maxMs: 20, giveUpAfterMs: 1000 } });
    await expect(client.getConfig()).rejects.toMatchObject({ code: 'FERRY_E_TOKEN_REJECTED', message: expect.stringContaining('FERRY_E_TOKEN_ENDED') });
  });

  it('a token works while armed and running, and a newer arm revokes it', async () => {
    const a = await arm('n3');
    expect((await call(base, 'GET', INSTALL_ROUTES.config, { token: a.token })).status).toBe(200);
    expect((await call(base, 'POST', INSTALL_ROUTES.events, { token: a.token, body: { events: [{ phase: 'layers', state: 'start' }] } })).status).toBe(200);
    const b = await arm('n3');
    const old = await call(base, 'GET', INSTALL_ROUTES.config, { token: a.token });
    expect(old.status).toBe(401);
    expect(old.json.error.code).toBe('FERRY_E_TOKEN_REVOKED');
    expect((await call(base, 'GET', INSTALL_ROUTES.config, { token: b.token })).status).toBe(200);
  });

  const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', h.dataDir], { okCodes, timeoutMs: 120_000 });

  it('ferry cancel ends armed and running deployments: cancelled, local boot, token refused, audited, in history', async () => {
    const armed = await arm('n1');
    const running = await arm('n2');
    expect((await call(base, 'GET', INSTALL_ROUTES.config, { token: running.token })).status).toBe(200);
    expect((await call(base, 'POST', INSTALL_ROUTES.events, { token: running.token, body: { events: [{ phase: 'layers', state: 'start' }] } })).status).toBe(200);
    expect(getNode(h.data, 'n1').bootAction).toBe('install');
    // A misspelled node cancels nothing.
    const typo = await ferry(['cancel', 'n1', 'nope'], [1]);
    expect(typo.stderr).toContain('FERRY_E_NODE_NOT_FOUND');
    expect((await call(base, 'GET', INSTALL_ROUTES.config, { token: armed.token })).status).toBe(200);

    const out = JSON.parse((await ferry(['cancel', 'n1', 'n2', 'n4', '--json'])).stdout);
    expect(out.cancelled.map((x: any) => [x.id, x.node, x.status])).toEqual([[armed.id, 'n1', 'cancelled'], [running.id, 'n2', 'cancelled']]);
    expect(out.idle).toEqual(['n4']);
    for (const dep of [armed, running]) {
      const r = await call(base, 'GET', INSTALL_ROUTES.config, { token: dep.token });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('FERRY_E_TOKEN_ENDED');
    }
    for (const n of ['n1', 'n2']) {
      expect(getNode(h.data, n).bootAction).toBe('local');
      const ipxe = await call(base, 'GET', `/boot/ipxe?mac=${n === 'n1' ? '52:54:00:bb:00:01' : '52:54:00:bb:00:02'}`);
      expect(ipxe.text).not.toContain('ferry.token');
      expect(ipxe.text).toContain('exit');
    }
    const audit = listAudit(h.data.db, { limit: 50 }).filter((a) => a.action === 'deploy.cancel');
    expect(audit.map((a) => a.object).sort()).toEqual(['n1', 'n2']);
    expect(audit.every((a) => a.actor.startsWith('cli:'))).toBe(true);
    const hist = JSON.parse((await ferry(['history', 'n2', '--json'])).stdout);
    expect(hist[0]).toMatchObject({ id: running.id, status: 'cancelled', stage: 'layers' });
    expect((await ferry(['history', 'n2'])).stdout).toMatch(new RegExp(`${running.id}\\s+n2\\s+base@1\\s+(http\\s+)?cancelled`));
  });

  it('the admin API cancels a selection (@group), validates its body and refuses deploy tokens', async () => {
    const a = await arm('n3');
    const b = await arm('n4');
    const byDeploy = await call(base, 'POST', '/api/v1/admin/cancel', { token: a.token, body: { select: ['n3'] } });
    expect(byDeploy.status).toBe(403);
    const badBody = await call(base, 'POST', '/api/v1/admin/cancel', { token: admin, body: { select: [], extra: 1 } });
    expect(badBody.status).toBe(400);
    expect(badBody.json.error.details.problems.map((p: any) => p.path).sort()).toEqual(['$.extra', '$.select']);
    const get = await call(base, 'GET', '/api/v1/admin/cancel', { token: admin });
    expect(get.status).toBe(405);

    const r = await call(base, 'POST', '/api/v1/admin/cancel', { token: admin, body: { select: ['@rack'] } });
    expect(r.status).toBe(200);
    expect(r.json.cancelled.map((x: any) => x.id).sort()).toEqual([a.id, b.id].sort());
    expect(r.json.idle).toEqual(['n1', 'n2']);
    const rec = await call(base, 'GET', `${ADMIN_ROUTES.deployments}/${b.id}`, { token: admin });
    expect(rec.json.deployment.status).toBe('cancelled');
    expect(rec.json.deployment.endedAt).toBeTruthy();
    expect((await call(base, 'POST', INSTALL_ROUTES.result, { token: b.token, body: { status: 'success' } })).json.error.code).toBe('FERRY_E_TOKEN_ENDED');
    expect(listAudit(h.data.db, { limit: 50 }).filter((x) => x.action === 'deploy.cancel' && x.actor === 'api:admin').map((x) => x.object).sort()).toEqual(['n3', 'n4']);
  });
});

describe('lost deployments (a short --lost-after)', () => {
  let h: Harness;
  let base: string;
  let admin: string;
  const LOST_MS = 1000;

  beforeAll(async () => {
    h = await harness({ lostAfterMs: LOST_MS });
    base = h.srv.url;
    admin = h.srv.adminToken;
    await importImage(h.data, 'base', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
    addNode(h.data, 'quiet', { macs: ['52:54:00:cc:00:01'], image: 'base', layoutXml: LAYOUT }, 'test');
    addNode(h.data, 'chatty', { macs: ['52:54:00:cc:00:02'], image: 'base', layoutXml: LAYOUT }, 'test');
    addNode(h.data, 'waiting', { macs: ['52:54:00:cc:00:03'], image: 'base', layoutXml: LAYOUT }, 'test');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a silent running install becomes lost (API, history, monitor stream, audit); a heartbeat brings it back; beating ones and armed ones stay', async () => {
    const { waitFor } = await import('../../../common/wait.js');
    const { request } = await import('undici');
    const { SseParser } = await import('../../../cli/monitor.js');
    const { MonitorState } = await import('../../../server/monitor.js');
    const state = new MonitorState();
    const sse = await request(base + '/api/v1/admin/events', { headers: { authorization: `Bearer ${admin}` } });
    const parser = new SseParser((type, data) => state.apply(type, JSON.parse(data)));
    sse.body.setEncoding('utf8');
    sse.body.on('data', (c: string) => parser.push(c));

    const arm = async (node: string) => (await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, body: { node } })).json.deployment as ArmResponse['deployment'];
    const quiet = await arm('quiet');
    const chatty = await arm('chatty');
    const waiting = await arm('waiting');
    for (const d of [quiet, chatty]) expect((await call(base, 'GET', INSTALL_ROUTES.config, { token: d.token })).status).toBe(200);
    const t0 = Date.now();
    // chatty beats every 200 ms for 3 lost-after periods; quiet says nothing.
    while (Date.now() - t0 < 3 * LOST_MS) {
      expect((await call(base, 'POST', INSTALL_ROUTES.events, { token: chatty.token, body: { events: [{ phase: 'layers', state: 'heartbeat' }] } })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
    }
    const status = async (id: number) => (await call(base, 'GET', `${ADMIN_ROUTES.deployments}/${id}`, { token: admin })).json.deployment.status;
    await waitFor(async () => (await status(quiet.id)) === 'lost', { what: 'the quiet deployment to be lost', timeoutMs: 10_000 });
    expect(await status(chatty.id)).toBe('running');
    expect(await status(waiting.id)).toBe('armed');
    await waitFor(() => state.rows().find((r) => r.id === quiet.id && r.state === 'lost'), { what: 'the monitor to show lost', timeoutMs: 10_000 });
    const hist = await run([join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry'), 'history', 'quiet', '--json', '--data', h.dataDir], { timeoutMs: 120_000 });
    expect(JSON.parse(hist.stdout)[0]).toMatchObject({ id: quiet.id, status: 'lost' });
    // (chatty may be lost by now too: it stopped beating when the loop ended.)
    expect(listAudit(h.data.db, { limit: 50 }).find((a) => a.action === 'deploy.lost' && a.object === 'quiet')).toMatchObject({ actor: 'server', details: { deployment: quiet.id, lostAfterSeconds: 1 } });
    expect((await call(base, 'GET', '/api/v1/admin/deployments?active=1', { token: admin })).json.deployments.map((x: any) => x.id)).toContain(quiet.id);

    // The lost installer is heard from again: running, and its token still works.
    expect((await call(base, 'POST', INSTALL_ROUTES.events, { token: quiet.token, body: { events: [{ phase: 'layers', state: 'heartbeat' }] } })).status).toBe(200);
    expect(await status(quiet.id)).toBe('running');
    await waitFor(() => state.rows().find((r) => r.id === quiet.id && r.state === 'running'), { what: 'the monitor to show running again', timeoutMs: 10_000 });
    sse.body.destroy();
  });

  it('ferry serve refuses a --lost-after that is not a number of seconds', async () => {
    const r = await run([join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry'), 'serve', '--lost-after', '5m', '--data', join(h.tmp, 'other')], { okCodes: [2], timeoutMs: 120_000 });
    expect(r.stderr).toContain('--lost-after');
  });
});

describe('one server per data directory', () => {
  const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

  it('a second server on the same directory is refused with the first one\'s PID, and the first keeps its server.json', async () => {
    const { startServer } = await import('../../../server/index.js');
    const { existsSync } = await import('node:fs');
    const h = await harness();
    try {
      await expect(startServer({ dataDir: h.dataDir, listen: '127.0.0.1:0' })).rejects.toMatchObject({ code: 'FERRY_E_SERVER_RUNNING', message: expect.stringContaining(`PID ${process.pid}`) });
      const cli = await run([FERRY, 'serve', '--listen', '127.0.0.1:0', '--data', h.dataDir], { okCodes: [1], timeoutMs: 120_000 });
      expect(cli.stderr).toContain('FERRY_E_SERVER_RUNNING');
      expect(cli.stderr).toContain(`PID ${process.pid}`);
      expect(existsSync(join(h.dataDir, 'server.json'))).toBe(true);
      expect((await call(h.srv.url, 'GET', '/api/v1/admin/nodes', { token: h.srv.adminToken })).status).toBe(200);
      // Closed, the directory is free again at once.
      await h.srv.close();
      h.srv = await startServer({ dataDir: h.dataDir, listen: '127.0.0.1:0' });
      expect((await call(h.srv.url, 'GET', '/api/v1/admin/nodes', { token: h.srv.adminToken })).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it('a server killed with SIGKILL leaves no lock behind', async () => {
    const { spawnTool } = await import('../../../common/run.js');
    const { startServer } = await import('../../../server/index.js');
    const { waitFor } = await import('../../../common/wait.js');
    const { existsSync, readFileSync } = await import('node:fs');
    const t = (await import('./helpers.js')).tempDir();
    const dataDir = join(t.dir, 'data');
    const s = spawnTool([FERRY, 'serve', '--listen', '127.0.0.1:0', '--data', dataDir], { stdout: 'ignore', timeoutMs: 120_000 });
    s.done.catch(() => {});
    try {
      await waitFor(() => existsSync(join(dataDir, 'server.json')), { what: 'the spawned server to start', timeoutMs: 60_000 });
      const pid = Number(readFileSync(join(dataDir, 'server.lock'), 'utf8'));
      expect(pid).toBe(JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')).pid);
      await expect(startServer({ dataDir, listen: '127.0.0.1:0' })).rejects.toMatchObject({ code: 'FERRY_E_SERVER_RUNNING' });
      process.kill(pid, 'SIGKILL');
      const srv = await waitFor(() => startServer({ dataDir, listen: '127.0.0.1:0' }), { what: 'the lock to be released after SIGKILL', timeoutMs: 10_000, intervalMs: 100 });
      await srv.close();
    } finally {
      s.child.kill('SIGKILL');
      t.cleanup();
    }
  });
});

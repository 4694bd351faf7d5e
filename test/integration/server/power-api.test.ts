/**
 * Power over the admin API (issue 18): a node's power settings set, changed and removed with
 * POST/PATCH /api/v1/admin/nodes (the password write-only: never in an answer, the audit log or
 * the server's log), and every power action, from the API or from `ferry power` in its own
 * process, as a `power` event on the admin event stream and an audit entry.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { PowerEventSchema, NodeBodySchema } from '../../../common/schema/responses.js';
import { refusal } from '../../../common/schema/validate.js';
import { waitFor } from '../../../common/wait.js';
import { SseParser } from '../../../cli/monitor.js';
import { startServer, type RunningServer } from '../../../server/index.js';
import { call, tempDir } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
const SECRET = 'bmc-secret-5e2b9a';
const NODES = '/api/v1/admin/nodes';

describe('power over the admin API', () => {
  const t = tempDir('ferry-power-api-');
  const logLines: string[] = [];
  const events: { type: string; data: any }[] = [];
  let srv: RunningServer;
  let dataDir: string;
  let stream: ClientRequest | undefined;
  const admin = (method: string, path: string, body?: unknown) => call(srv.url, method, path, { token: srv.adminToken, body });

  beforeAll(async () => {
    dataDir = join(t.dir, 'data');
    mkdirSync(t.dir, { recursive: true });
    srv = await startServer({
      dataDir, listen: '127.0.0.1:0',
      log: { format: 'json', level: 'debug', destination: { write: (l: string) => logLines.push(...l.split('\n').filter(Boolean)) } },
    });
    await new Promise<void>((resolve, reject) => {
      stream = httpRequest(`${srv.url}/api/v1/admin/events`, { headers: { authorization: `Bearer ${srv.adminToken}`, accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`events answered ${res.statusCode}`));
        res.setEncoding('utf8');
        const p = new SseParser((type, data) => events.push({ type, data: JSON.parse(data) }));
        res.on('data', (c: string) => p.push(c));
        resolve();
      });
      stream.on('error', () => {});
      stream.end();
    });
  });
  afterAll(async () => {
    stream?.destroy();
    await srv?.close();
    t.cleanup();
  });

  it('sets, changes and removes power settings; the password is write-only', async () => {
    const created = await admin('POST', NODES, { name: 'pw1', macs: ['52:54:00:18:00:01'], power: { driver: 'manual', address: 'rack 4, slot 2', user: 'admin', password: SECRET } });
    expect(created.status, created.text).toBe(201);
    expect(refusal(NodeBodySchema, created.json)).toBeUndefined();
    expect(created.json.node.power).toEqual({ driver: 'manual', address: 'rack 4, slot 2', user: 'admin', password: true });
    expect(created.text).not.toContain(SECRET);

    const changed = await admin('PATCH', `${NODES}/pw1`, { power: { driver: 'ipmi', address: '10.0.0.9:623', password: null } });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json.node.power).toEqual({ driver: 'ipmi', address: '10.0.0.9:623', user: 'admin', password: false });
    const again = await admin('PATCH', `${NODES}/pw1`, { power: { user: null, password: SECRET } });
    expect(again.json.node.power).toEqual({ driver: 'ipmi', address: '10.0.0.9:623', password: true });
    const got = await admin('GET', `${NODES}/pw1`);
    expect(got.json.node.power).toEqual({ driver: 'ipmi', address: '10.0.0.9:623', password: true });
    expect(got.text).not.toContain(SECRET);
    expect((await admin('GET', NODES)).text).not.toContain(SECRET);

    // Refused whole, with the field named: an unknown driver, an address the driver cannot use, an unknown key.
    const bad = await admin('PATCH', `${NODES}/pw1`, { power: { driver: 'telnet' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('FERRY_E_BAD_VALUE');
    expect(bad.json.error.message).toContain('telnet');
    const badAddr = await admin('PATCH', `${NODES}/pw1`, { power: { driver: 'qemu', address: 'relative.sock' } });
    expect(badAddr.status).toBe(400);
    const badKey = await admin('PATCH', `${NODES}/pw1`, { power: { driver: 'manual', passwd: SECRET } });
    expect(badKey.status).toBe(400);
    expect(badKey.json.error.code).toBe('FERRY_E_BAD_REQUEST');
    expect(badKey.text).not.toContain(SECRET);
    expect((await admin('GET', `${NODES}/pw1`)).json.node.power.driver).toBe('ipmi');

    const removed = await admin('PATCH', `${NODES}/pw1`, { power: null });
    expect(removed.json.node.power).toBeUndefined();

    const audit = await admin('GET', '/api/v1/admin/audit?limit=100');
    expect(audit.status).toBe(200);
    expect(audit.text).not.toContain(SECRET);
    expect(audit.text).toContain('(set)');
    expect(audit.text).toContain('(removed)');
    expect(logLines.join('\n')).not.toContain(SECRET);
  });

  it('puts every power action on the event stream and in the audit log, from the API and from ferry power', async () => {
    await admin('POST', NODES, { name: 'pw2', macs: ['52:54:00:18:00:02'], power: { driver: 'manual', address: 'bench 1', password: SECRET } });
    await admin('POST', NODES, { name: 'pw3', macs: ['52:54:00:18:00:03'], power: { driver: 'qemu', address: join(t.dir, 'no-such-qmp.sock') } });
    const r = await admin('POST', '/api/v1/admin/power', { action: 'cycle', select: ['pw2', 'pw3'] });
    expect(r.status, r.text).toBe(200);
    const power = () => events.filter((e) => e.type === 'power').map((e) => e.data);
    await waitFor(() => power().length >= 2, { what: 'two power events', timeoutMs: 10_000 });
    const ok = power().find((e) => e.node === 'pw2')!;
    expect(ok).toMatchObject({ action: 'cycle', actor: 'api:admin', driver: 'manual', ok: true, state: 'unknown' });
    const failed = power().find((e) => e.node === 'pw3')!;
    expect(failed).toMatchObject({ action: 'cycle', driver: 'qemu', ok: false, error: expect.stringMatching(/^FERRY_E_/) });
    for (const e of power()) expect(refusal(PowerEventSchema, e)).toBeUndefined();

    // From the CLI, another process writing the database: on the stream within a tick or two.
    await run([FERRY, 'power', 'off', 'pw2', '--data', dataDir], { timeoutMs: 60_000 });
    await waitFor(() => power().some((e) => e.node === 'pw2' && e.action === 'off'), { what: 'the CLI power action on the stream', timeoutMs: 10_000 });
    expect(power().find((e) => e.action === 'off')!.actor).not.toBe('api:admin');
    // Status reads the machine and changes nothing: no event, no audit entry.
    await admin('POST', '/api/v1/admin/power', { action: 'status', select: ['pw2'] });
    await new Promise((res) => setTimeout(res, 2500));
    expect(power().filter((e) => e.node === 'pw2').map((e) => e.action)).toEqual(['cycle', 'off']);
    const audit = (await admin('GET', '/api/v1/admin/audit?limit=100')).json.audit as { action: string; object: string }[];
    expect(audit.filter((a) => a.action.startsWith('power.')).map((a) => `${a.action} ${a.object}`).sort()).toEqual(['power.cycle pw2', 'power.cycle pw3', 'power.off pw2']);
    expect(logLines.filter((l) => l.includes('"power action"')).length).toBe(3);
    expect(logLines.join('\n')).not.toContain(SECRET);
  }, 90_000);
});

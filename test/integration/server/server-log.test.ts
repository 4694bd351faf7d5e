/**
 * The server's log (server/log.ts, issue 17): against a loopback server with TFTP, one JSON line
 * per HTTP request, per boot decision (iPXE and pxelinux), per TFTP transfer and per deployment
 * state change; and no secret sent to the server (deploy token, admin token, session cookie,
 * a token in a query) ever appears in it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { INSTALL_ROUTES } from '../../../common/protocol.js';
import { DataDir } from '../../../server/context.js';
import { armDeployment } from '../../../server/db/deployments.js';
import { addNode } from '../../../server/db/inventory.js';
import { startServer, type RunningServer } from '../../../server/index.js';
import { importImage } from '../../../server/store/image-import.js';
import { call, LAYOUT, smallTree, tempDir } from './helpers.js';

const MAC = '52:54:00:10:17:01';

describe('ferry serve log', () => {
  const t = tempDir('ferry-log-');
  const lines: string[] = [];
  let srv: RunningServer;
  let data: DataDir;
  let token: string;
  let deployment: number;
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, any>);

  beforeAll(async () => {
    const dataDir = join(t.dir, 'data');
    mkdirSync(join(t.dir, 'tftp'));
    srv = await startServer({
      dataDir,
      listen: '127.0.0.1:0',
      tftp: { listen: '127.0.0.1:0', root: join(t.dir, 'tftp') },
      log: { format: 'json', level: 'info', destination: { write: (l: string) => lines.push(...l.split('\n').filter(Boolean)) } },
    });
    data = new DataDir(dataDir);
    await importImage(data, 'logimg', { dir: smallTree(join(t.dir, 'tree')), actor: 'test' });
    addNode(data, 'log1', { macs: [MAC], image: 'logimg', layoutXml: LAYOUT }, 'test');
    const armed = armDeployment(data, 'log1', { actor: 'test' });
    token = armed.token;
    deployment = armed.id;
  });
  afterAll(async () => {
    data?.close();
    await srv?.close();
    t.cleanup();
  });

  it('logs each request once, with method, path, status and time, and the boot decision for a MAC', async () => {
    const r = await call(srv.url, 'GET', `/boot/ipxe?mac=${MAC}`);
    expect(r.status).toBe(200);
    expect(r.text).toContain(token); // the answer carries it, the log must not
    const boot = records().filter((x) => x.msg === 'boot decision');
    expect(boot).toEqual([expect.objectContaining({ via: 'ipxe', mac: MAC, node: 'log1', action: 'install', reason: `deployment ${deployment} armed`, deployment, level: 30 })]);
    const reqs = records().filter((x) => x.msg === 'request' && x.url.startsWith('/boot/ipxe'));
    expect(reqs).toHaveLength(1);
    expect(reqs[0]).toMatchObject({ method: 'GET', status: 200, remote: '127.0.0.1' });
    expect(typeof reqs[0].ms).toBe('number');

    await call(srv.url, 'GET', '/boot/ipxe?mac=52:54:00:10:17:99');
    expect(records().filter((x) => x.msg === 'boot decision').at(-1)).toMatchObject({ action: 'local', discovered: true, reason: expect.stringContaining('unknown machine') });
  });

  it('logs a refused request with its status', async () => {
    const r = await call(srv.url, 'GET', '/api/v1/admin/nodes', { token: 'ferry-admin-wrong' });
    expect(r.status).toBe(401);
    expect(records().filter((x) => x.msg === 'request' && x.url === '/api/v1/admin/nodes').at(-1)).toMatchObject({ status: 401 });
  });

  it('logs a TFTP transfer and the pxelinux boot decision', async () => {
    const out = join(t.dir, 'got');
    await run(['tftp', '-m', 'binary', '127.0.0.1', String(srv.tftp!.port), '-c', 'get', `pxelinux.cfg/01-${MAC.replace(/:/g, '-')}`, out], { timeoutMs: 30_000, okCodes: [0, 1] });
    expect(records().filter((x) => x.msg === 'boot decision').at(-1)).toMatchObject({ via: 'pxelinux', mac: MAC, action: 'install' });
    const sent = records().filter((x) => x.msg === 'tftp sent');
    expect(sent).toEqual([expect.objectContaining({ file: `pxelinux.cfg/01-${MAC.replace(/:/g, '-')}`, bytes: expect.any(Number), level: 30 })]);
  });

  it('logs each deployment state change once, an arm made by another process (the CLI) too', async () => {
    // Armed through another connection to the database, as `ferry deploy` does: the server's watch sees it.
    await waitFor(() => records().some((x) => x.msg === 'deployment state' && x.status === 'armed'), { what: 'the armed line', timeoutMs: 10_000 });
    expect((await call(srv.url, 'GET', INSTALL_ROUTES.config, { token })).status).toBe(200);
    // Read again: no change, no second line.
    expect((await call(srv.url, 'GET', INSTALL_ROUTES.config, { token })).status).toBe(200);
    expect((await call(srv.url, 'POST', INSTALL_ROUTES.result, { token, body: { status: 'success' } })).status).toBe(200);
    const changes = records().filter((x) => x.msg === 'deployment state');
    expect(changes.map((x) => [x.deployment, x.node, x.status])).toEqual([
      [deployment, 'log1', 'armed'],
      [deployment, 'log1', 'running'],
      [deployment, 'log1', 'success'],
    ]);
    expect(changes.map((x) => x.from)).toEqual([undefined, 'armed', 'running']);
  });

  it('never logs a secret sent in a header, a cookie or a query', async () => {
    const cookie = 'ferry_session=ferry-session-SECRETCOOKIEVALUE123';
    await call(srv.url, 'GET', `/api/v1/admin/nodes?token=QUERYSECRET12345&x=1`, { token: srv.adminToken, headers: { cookie } });
    await call(srv.url, 'GET', `/api/v1/admin/nodes`, { headers: { authorization: `Bearer ${srv.adminToken}`, 'x-ferry-token': 'HEADERSECRET999' } });
    await call(srv.url, 'GET', INSTALL_ROUTES.config, { token }); // ended: refused, logged
    const all = lines.join('\n');
    expect(records().filter((x) => x.msg === 'request' && x.url.startsWith('/api/v1/admin/nodes?')).at(-1)!.url).toBe('/api/v1/admin/nodes?token=[redacted]&x=1');
    for (const secret of [token, srv.adminToken, 'SECRETCOOKIEVALUE123', 'QUERYSECRET12345', 'HEADERSECRET999']) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/ferry-(deploy|admin|session)-[A-Za-z0-9_-]{8}/);
  });
});

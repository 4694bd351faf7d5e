/**
 * `ferry monitor`'s first connection is retried like a reconnect (issue 17): started while no
 * server runs for DATA, it says so, connects when `ferry serve` comes up and draws the table;
 * with no server at all it fails with FERRY_E_MONITOR_GAVE_UP after --give-up seconds, not at once.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnTool } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { startServer } from '../../../server/index.js';
import { armDeployment } from '../../../server/db/deployments.js';
import { addNode } from '../../../server/db/inventory.js';
import { importImage } from '../../../server/store/image-import.js';
import { harness, LAYOUT, smallTree, type Harness } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

describe('ferry monitor before the server', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.close();
  });

  it('waits for a server that is not running yet, then shows its table', async () => {
    h = await harness();
    await importImage(h.data, 'mf', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
    addNode(h.data, 'mf1', { macs: ['52:54:00:17:ab:01'], image: 'mf', layoutXml: LAYOUT }, 'test');
    const armed = armDeployment(h.data, 'mf1', { actor: 'test' });
    const port = h.srv.port;
    await h.srv.close();

    const m = spawnTool([FERRY, 'monitor', '--data', h.dataDir, '--give-up', '60'], { timeoutMs: 120_000, okCodes: [0, 130] });
    m.child.stdin!.end();
    let out = '';
    let err = '';
    m.child.stdout!.on('data', (b) => (out += b));
    m.child.stderr!.on('data', (b) => (err += b));
    await waitFor(() => /ferry: cannot reach the server \(no running server recorded in the data directory\); retrying, for at most 60 s/.test(err), { what: 'the monitor to say there is no server yet', timeoutMs: 60_000 });
    expect(m.child.exitCode).toBeNull();

    h.srv = await startServer({ dataDir: h.dataDir, listen: `127.0.0.1:${port}` });
    await waitFor(() => /ferry: connected to the server at http:\/\/127\.0\.0\.1:\d+/.test(err), { what: 'the monitor to connect', timeoutMs: 20_000 });
    await waitFor(() => new RegExp(`^${armed.id} +mf1 +http +- +armed`, 'm').test(out), { what: 'the table', timeoutMs: 20_000 });
    expect(err).not.toMatch(/reconnected|FERRY_E_/);
    m.child.kill('SIGINT');
    await m.done;
  }, 120_000);

  it('gives up after --give-up seconds when no server comes, with the code', async () => {
    const t0 = Date.now();
    const r = spawnTool([FERRY, 'monitor', '--once', '--server', 'http://127.0.0.1:9', '--token', 'ferry-admin-x', '--give-up', '3'], { timeoutMs: 60_000, okCodes: [1] });
    r.child.stdin!.end();
    let err = '';
    r.child.stderr!.on('data', (b) => (err += b));
    const res = await r.done;
    expect(res.code).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3_000);
    expect(err).toMatch(/cannot reach the server at http:\/\/127\.0\.0\.1:9 \(cannot connect: .*ECONNREFUSED.*\); retrying, for at most 3 s/);
    expect(err).toMatch(/FERRY_E_MONITOR_GAVE_UP: the server at http:\/\/127\.0\.0\.1:9 has not answered for 3 s .*never reached it/);
  }, 60_000);
});

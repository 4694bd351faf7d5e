/**
 * `ferry monitor` when the server goes away (issue 17): it says so, reconnects when the server
 * is back (reading its address from DATA/server.json again), draws the table again, and after
 * --give-up SECONDS without a server exits 1 with FERRY_E_MONITOR_GAVE_UP.
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

describe('ferry monitor reconnects', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.close();
  });

  it('says the server went away, reconnects when it is back, and gives up after --give-up seconds', async () => {
    h = await harness();
    await importImage(h.data, 'mr', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
    addNode(h.data, 'mon1', { macs: ['52:54:00:17:aa:01'], image: 'mr', layoutXml: LAYOUT }, 'test');
    const first = armDeployment(h.data, 'mon1', { actor: 'test' });

    const m = spawnTool([FERRY, 'monitor', '--data', h.dataDir, '--give-up', '6'], { timeoutMs: 120_000, okCodes: [1] });
    m.child.stdin!.end();
    let out = '';
    let err = '';
    m.child.stdout!.on('data', (b) => (out += b));
    m.child.stderr!.on('data', (b) => (err += b));
    await waitFor(() => new RegExp(`^${first.id} +mon1 +http +- +armed`, 'm').test(out), { what: 'the first table', timeoutMs: 60_000 });

    const port = h.srv.port;
    await h.srv.close();
    await waitFor(() => /ferry: lost the server at http:\/\/127\.0\.0\.1:\d+ \(.*\); reconnecting, for at most 6 s/.test(err), { what: 'the monitor to say the server is gone', timeoutMs: 20_000 });

    // Back, with a newer deployment that supersedes the first: the fresh snapshot shows only it.
    const second = armDeployment(h.data, 'mon1', { actor: 'test' });
    h.srv = await startServer({ dataDir: h.dataDir, listen: `127.0.0.1:${port}` });
    await waitFor(() => /ferry: reconnected to the server at http:\/\/127\.0\.0\.1:\d+/.test(err), { what: 'the monitor to reconnect', timeoutMs: 20_000 });
    await waitFor(() => new RegExp(`^${second.id} +mon1 +http +- +armed`, 'm').test(out.slice(out.lastIndexOf('ID '))), { what: 'the table after reconnecting', timeoutMs: 20_000 });
    expect(out.slice(out.lastIndexOf('ID '))).not.toMatch(new RegExp(`^${first.id} `, 'm'));

    // Armed by another process (as `ferry deploy` writes the database): shown live, no reconnect needed.
    addNode(h.data, 'mon2', { macs: ['52:54:00:17:aa:02'], image: 'mr', layoutXml: LAYOUT }, 'test');
    const third = armDeployment(h.data, 'mon2', { actor: 'test' });
    await waitFor(() => new RegExp(`^${third.id} +mon2 +http +- +armed`, 'm').test(out.slice(out.lastIndexOf('ID '))), { what: 'the CLI-armed deployment in the table', timeoutMs: 20_000 });
    expect(err.match(/ferry: reconnected/g)).toHaveLength(1);

    // Gone for good: one message, then a coded failure once --give-up has passed.
    await h.srv.close();
    const goneAt = Date.now();
    const r = await m.done;
    expect(r.code).toBe(1);
    expect(Date.now() - goneAt).toBeGreaterThanOrEqual(5_000);
    expect(Date.now() - goneAt).toBeLessThan(30_000);
    expect(err).toMatch(/FERRY_E_MONITOR_GAVE_UP: the server at .* has not answered for 6 s/);
    expect(err.match(/ferry: lost the server/g)).toHaveLength(2);
    expect(err).not.toMatch(/at .*\.m?js:\d+/);
  }, 120_000);
});

/**
 * Choosing a transport (issue 13): `ferry deploy --transport`, node and group defaults, the record
 * (`ferry history`, the API), the install configuration, and the installer's fallback to HTTP
 * when the chosen transport cannot deliver a layer.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { INSTALL_ROUTES } from '../../common/protocol.js';
import type { ProgressEvent } from '../../common/progress.js';
import { runInstall } from '../../installer/install.js';
import { DataDir } from '../../server/context.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { call, LAYOUT, smallTree, tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');

describe('transport choice: CLI, record, config and fallback', () => {
  let t: ReturnType<typeof tempDir>;
  let data: string;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000 });
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);

  beforeAll(async () => {
    t = tempDir('ferry-transport-');
    data = join(t.dir, 'data');
    smallTree(join(t.dir, 'tree'));
    fs.writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    await ferry(['image', 'import', 'base', '--dir', join(t.dir, 'tree')]);
    for (const [i, n] of ['a1', 'a2', 'b1'].entries()) {
      await ferry(['node', 'add', n, '--mac', `52:54:00:00:01:0${i}`, '--image', 'base', '--layout', join(t.dir, 'layout.xml'), '--group', n.startsWith('a') ? 'rack-a' : 'rack-b']);
    }
  });
  afterAll(() => t?.cleanup());

  it('defaults to http; --transport, node and group defaults are kept in the record', async () => {
    const plain = await json(['deploy', 'a1']);
    // As before: each deployment's token, id, node and expiry (and the arm-time warnings, when any).
    expect(Object.keys(plain.deployments[0]).filter((k) => k !== 'warnings').sort()).toEqual(['expiresAt', 'id', 'node', 'token']);
    expect((await json(['history', '--record', String(plain.deployments[0].id)])).deployment.transport).toEqual({ kind: 'http' });

    await ferry(['group', 'add', 'rack-a', '--transport', 'multicast']);
    expect((await json(['group', 'show', 'rack-a'])).transport).toBe('multicast');
    await ferry(['node', 'set', 'b1', '--transport', 'torrent']);
    expect((await json(['node', 'show', 'b1'])).transport).toBe('torrent');

    const both = await json(['deploy', '@rack-a', 'b1', '--max-wait', '7', '--min-receivers', '2', '--max-bitrate', '50m']);
    const recs = await json(['history']);
    const byNode = Object.fromEntries(recs.filter((r: any) => both.deployments.some((d: any) => d.id === r.id)).map((r: any) => [r.node, r]));
    expect(byNode.a1.transport).toEqual({ kind: 'multicast', multicast: { minReceivers: 2, maxWaitS: 7, maxBitrate: '50m' } });
    expect(byNode.a2.transport.kind).toBe('multicast');
    expect(byNode.b1.transport).toEqual({ kind: 'torrent' });
    // One `ferry deploy` is one batch.
    expect(new Set([byNode.a1.batch, byNode.a2.batch, byNode.b1.batch]).size).toBe(1);
    const table = (await ferry(['history'])).stdout;
    expect(table.split('\n')[0]).toMatch(/TRANSPORT/i);
    expect((await ferry(['history', '--record', String(byNode.a1.id)])).stdout).toContain('transport: multicast (min 2 receivers, max wait 7 s, max 50mbit/s)');

    // --transport on deploy wins over both defaults; clearing the defaults gives http again.
    const forced = await json(['deploy', 'a1', 'b1', '--transport', 'http']);
    for (const d of forced.deployments) expect((await json(['history', '--record', String(d.id)])).deployment.transport).toEqual({ kind: 'http' });
    await ferry(['node', 'set', 'b1', '--no-transport']);
    await ferry(['group', 'add', 'rack-a', '--no-transport']);
    expect((await json(['node', 'show', 'b1'])).transport).toBeUndefined();
  });

  it('refuses bad transport values, conflicting group defaults, and session options without multicast', async () => {
    const bad = await ferry(['deploy', 'a1', '--transport', 'carrier-pigeon', '--max-wait', '0', '--max-bitrate', 'fast', '--json'], [1]);
    const err = JSON.parse(bad.stdout).error;
    expect(err.code).toBe('FERRY_E_BAD_VALUE');
    expect(err.details.problems.map((p: any) => p.path).sort()).toEqual(['max-bitrate', 'max-wait', 'transport']);
    expect(JSON.parse((await ferry(['node', 'set', 'a1', '--transport', 'ftp', '--json'], [1])).stdout).error.code).toBe('FERRY_E_BAD_VALUE');
    const before = (await json(['history'])).length;
    expect((await ferry(['deploy', 'a1', '--max-wait', '5'], [2])).stderr).toMatch(/FERRY_E_USAGE.*multicast session options/);
    expect((await json(['history'])).length).toBe(before);
    await ferry(['group', 'add', 'left', '--node', 'a2', '--transport', 'torrent']);
    await ferry(['group', 'add', 'rack-a', '--transport', 'multicast']);
    const conflict = JSON.parse((await ferry(['deploy', 'a2', '--json'], [1])).stdout).error;
    expect(conflict).toMatchObject({ code: 'FERRY_E_TRANSPORT_CONFLICT', details: { node: 'a2', groups: { torrent: ['left'], multicast: ['rack-a'] } } });
    // The node's own default settles it.
    await ferry(['node', 'set', 'a2', '--transport', 'http']);
    await ferry(['deploy', 'a2']);
    await ferry(['group', 'rm', 'left']);
    await ferry(['group', 'add', 'rack-a', '--no-transport']);
  });

  it('--seed-wait: a torrent option kept in the record, refused without a torrent node and out of bounds', async () => {
    const [d] = (await json(['deploy', 'b1', '--transport', 'torrent', '--seed-wait', '45'])).deployments;
    expect((await json(['history', '--record', String(d.id)])).deployment.transport).toEqual({ kind: 'torrent', seedWaitS: 45 });
    expect((await ferry(['history', '--record', String(d.id)])).stdout).toMatch(/torrent \(seed wait 45 s\)/);
    const before = (await json(['history'])).length;
    expect((await ferry(['deploy', 'a1', '--transport', 'http', '--seed-wait', '5'], [2])).stderr).toMatch(/FERRY_E_USAGE.*--seed-wait is a torrent option/);
    const bad = JSON.parse((await ferry(['deploy', 'b1', '--transport', 'torrent', '--seed-wait', '3601', '--json'], [1])).stdout).error;
    expect(bad.details.problems.map((p: any) => p.path)).toEqual(['seed-wait']);
    expect((await json(['history'])).length).toBe(before);
  });

  describe('with a server', () => {
    let srv: RunningServer;
    beforeAll(async () => {
      srv = await startServer({ dataDir: data, listen: '127.0.0.1:0' });
    });
    afterAll(async () => srv?.close());

    it('hands the node its transport, and the installer uses it (torrent from the server\'s seeder) and completes', async () => {
      const armed = (await json(['deploy', 'b1', '--transport', 'torrent'])).deployments[0];
      const cfg = await call(srv.url, 'GET', INSTALL_ROUTES.config, { token: armed.token });
      expect(cfg.json.transport).toEqual({ kind: 'torrent', baseUrl: srv.publicUrl });
      // `ferry deploy --seed-wait S` reaches the node in its config.
      const sw = (await json(['deploy', 'b1', '--transport', 'torrent', '--seed-wait', '7'])).deployments[0];
      expect((await call(srv.url, 'GET', INSTALL_ROUTES.config, { token: sw.token })).json.transport).toEqual({ kind: 'torrent', baseUrl: srv.publicUrl, seedWaitS: 7 });
      const again = (await json(['deploy', 'b1', '--transport', 'torrent'])).deployments[0];
      if (again.id === armed.id) throw new Error('a new deployment was expected');
      const api = await call(srv.url, 'GET', `/api/v1/admin/deployments/${armed.id}`, { token: srv.adminToken });
      expect(api.json.deployment.transport).toEqual({ kind: 'torrent' });

      const events: ProgressEvent[] = [];
      const root = join(t.dir, 'root');
      fs.mkdirSync(root);
      const outcome = await runInstall({ server: srv.url, token: again.token, root, yes: true, initramfs: false, console: () => {}, onEvent: (e) => events.push(e) });
      expect(outcome.result).toEqual({ status: 'success' });
      expect(fs.readFileSync(join(root, 'data.bin')).length).toBe(300_000);
      // Every transport exists in this installer now: the layer came by torrent, not by the fallback.
      expect(events.filter((e) => e.state === 'warning' && e.details?.fallback === 'http')).toEqual([]);
      expect(events.filter((e) => e.phase === 'layers' && e.state === 'end' && e.object).map((e) => e.details?.transport)).toEqual(['torrent']);
    });
  });
});

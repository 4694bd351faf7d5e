/** The server's seeding policy and the swarm's expected members (issue 13), without a network (the database in a temporary directory). */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bdecode } from '../../common/bencode.js';
import { blobPath, TORRENT_ROUTES } from '../../common/protocol.js';
import { seederTorrent } from '../../server/torrent/seeder.js';
import { Swarms } from '../../server/torrent/swarm.js';
import { layerTorrent, torrentFile } from '../../server/torrent/torrent.js';
import { getDeploymentRow, swarmMembers } from '../../server/db/deployments.js';
import { recordEvents } from '../../server/db/deployment-events.js';
import { bearer, fixture, LAYOUT } from './server/app-fixture.js';

describe('swarm done counts the expected members', () => {
  const ih = 'cd'.repeat(20);
  const ann = (dep: number, left: number) => ({ infoHash: ih, peerId: String(dep).padStart(40, '0'), ip: `10.0.0.${dep}`, port: 6881, left, uploaded: 0, downloaded: 0, deployment: dep });
  it('waits for a member that has not announced, and is done once every member holds the layer', () => {
    const s = new Swarms();
    s.announce('img@1', 'sha256:x', ann(1, 0));
    s.announce('img@1', 'sha256:x', ann(2, 0));
    // Only the peers that announced: done.
    expect(s.state('img@1', 'sha256:x', ih).done).toBe(true);
    // Deployment 3 of the batch has not announced yet: not done.
    expect(s.state('img@1', 'sha256:x', ih, [1, 2, 3])).toMatchObject({ done: false, expected: 3, waiting: 1, complete: 2 });
    s.announce('img@1', 'sha256:x', ann(3, 50));
    expect(s.state('img@1', 'sha256:x', ih, [1, 2, 3])).toMatchObject({ done: false, waiting: 1, incomplete: 1 });
    s.announce('img@1', 'sha256:x', ann(3, 0));
    expect(s.state('img@1', 'sha256:x', ih, [1, 2, 3])).toMatchObject({ done: true, waiting: 0 });
    // A member that is no longer running (finished, failed) is not in the list: not waited for.
    expect(s.state('img@1', 'sha256:x', ih, [1, 2]).done).toBe(true);
  });
});

describe('the server seeder\'s torrent', () => {
  it('is the same info dictionary (same info-hash) with no tracker and no web seed', async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'ferry-seedt-'));
    try {
      const file = join(dir, 'blob');
      fs.writeFileSync(file, randomBytes(300 * 1024));
      const t = await layerTorrent(file, 'sha256:' + 'e'.repeat(64));
      const mine = bdecode(seederTorrent(t)) as Record<string, unknown>;
      expect(Object.keys(mine)).toEqual(['info']);
      const nodes = bdecode(torrentFile(t, 'http://s/announce', [])) as Record<string, unknown>;
      expect(nodes['url-list']).toBeUndefined();
      expect(Object.keys(nodes)).toEqual(['announce', 'info']);
      const seg = seederTorrent(t);
      expect(createHash('sha1').update(seg.subarray(7, seg.length - 1)).digest('hex')).toBe(t.infoHash);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the swarm\'s members in the database', () => {
  it('the batch\'s torrent deployments still armed or running, less those that took the layer over HTTP; without the seeder, the web seed', async () => {
    const f = await fixture();
    try {
      const l = await f.layer(Buffer.from('swarm layer'));
      f.image('sw', [l]);
      const api = (method: string, path: string, payload?: unknown) => f.app.inject({ method: method as 'POST', url: '/api/v1/admin/' + path, headers: bearer(f.admin), ...(payload !== undefined ? { payload: payload as object } : {}) });
      for (const [i, name] of ['s1', 's2', 's3', 's4'].entries()) expect((await api('POST', 'nodes', { name, macs: [`52:54:00:00:0d:0${i}`], image: 'sw', layout: LAYOUT })).statusCode).toBe(201);
      const ids: number[] = (await api('POST', 'deploy', { select: ['s1', 's2', 's3'], transport: 'torrent' })).json().deployments.map((x: { id: number }) => x.id);
      const d = f.ctx.data;
      // `ferry serve --torrent-web-seed` (no seeder started, nothing spawned here): the torrent
      // handed to the node lists the blob's URL as its web seed.
      f.ctx.torrentSeed = false;
      const token = (await api('POST', 'deployments', { node: 's4', transport: 'torrent' })).json().deployment.token;
      const tr = await f.app.inject({ method: 'GET', url: `${TORRENT_ROUTES.torrent}?layer=${l.digest}`, headers: bearer(token) });
      expect(tr.statusCode).toBe(200);
      const meta = bdecode(Buffer.from(tr.json().torrent, 'base64')) as Record<string, unknown>;
      expect((meta['url-list'] as Buffer[]).map(String)).toEqual([`${f.ctx.publicUrl}${blobPath(l.digest)}`]);
      const row = getDeploymentRow(d, ids[0]);
      expect(swarmMembers(d, row, l.digest).sort()).toEqual([...ids].sort());
      // s2 fell back to HTTP for this layer: not waited for; a fallback of another layer does not count.
      recordEvents(d, getDeploymentRow(d, ids[1]), [{ phase: 'layers', state: 'warning', object: l.digest, code: 'FERRY_E_TORRENT_STALLED', details: { transport: 'torrent', fallback: 'http' } }]);
      recordEvents(d, getDeploymentRow(d, ids[2]), [{ phase: 'layers', state: 'warning', object: 'sha256:' + '0'.repeat(64), code: 'FERRY_E_TORRENT_STALLED', details: { transport: 'torrent', fallback: 'http' } }]);
      expect(swarmMembers(d, row, l.digest).sort()).toEqual([ids[0], ids[2]].sort());
      // A deployment that ended (here: failed) is not waited for either.
      d.db.prepare("UPDATE deployments SET status = 'failed' WHERE id = ?").run(ids[2]);
      expect(swarmMembers(d, row, l.digest)).toEqual([ids[0]]);
    } finally {
      await f.close();
    }
    // The first import of the whole server (app fixture) takes 8-10 s at load 20 on 2 cores.
  }, 30_000);
});

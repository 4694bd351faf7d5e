/** The server's seeding policy and the swarm's expected members (issue 13), without a network. */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bdecode } from '../../common/bencode.js';
import { seederTorrent } from '../../server/torrent/seeder.js';
import { Swarms } from '../../server/torrent/swarm.js';
import { layerTorrent, torrentFile } from '../../server/torrent/torrent.js';

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

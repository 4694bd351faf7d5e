/** BitTorrent pieces without a network (issue 13): bencode, the deterministic torrent, the tracker's swarms, aria2's readout. */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bdecode, bencode } from '../../common/bencode.js';
import { parseReadout } from '../../installer/transport/torrent.js';
import { compactPeers, parseAnnounce, queryBytes, Swarms } from '../../server/torrent/swarm.js';
import { layerTorrent, pieceLengthFor, torrentFile } from '../../server/torrent/torrent.js';

const pct = (b: Buffer) => [...b].map((x) => '%' + x.toString(16).padStart(2, '0')).join('');

describe('bencode', () => {
  it('encodes canonically (keys sorted by bytes) and decodes back', () => {
    const b = bencode({ z: 1, a: [Buffer.from('xy'), 'é', -3], m: { b: 0 } });
    expect(b.toString('latin1')).toBe('d1:al2:xy2:' + Buffer.from('é').toString('latin1') + 'i-3ee1:md1:bi0ee1:zi1ee');
    const d = bdecode(b) as any;
    expect(d.z).toBe(1);
    expect(d.a[0].toString()).toBe('xy');
    expect(d.m.b).toBe(0);
  });
  it.each(['i01e', 'i-0e', 'd1:bi0e1:ai0ee', '5:abc', 'l', 'i1ei2e', 'x', '1:a1:b'.slice(0, 3) + 'e'])('refuses %s', (s) => {
    expect(() => bdecode(Buffer.from(s))).toThrow(expect.objectContaining({ code: 'FERRY_E_BAD_BENCODE' }));
  });
  it('refuses nesting deeper than 32', () => {
    expect(() => bdecode(Buffer.from('l'.repeat(40) + 'e'.repeat(40)))).toThrow(/deeper/);
  });
});

describe('layer torrents', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ferry-ut-torrent-'));
  it('piece length is a fixed function of the size', () => {
    expect(pieceLengthFor(1)).toBe(262144);
    expect(pieceLengthFor(512 * 1024 * 1024)).toBe(262144);
    expect(pieceLengthFor(513 * 1024 * 1024)).toBe(524288);
    expect(pieceLengthFor(1e12)).toBe(16 * 1024 * 1024);
  });
  it('same blob, same info-hash, whatever the announce URL and web seed; private; pieces are the SHA-1s', async () => {
    const data = randomBytes(600 * 1024);
    const f = join(dir, 'blob');
    fs.writeFileSync(f, data);
    const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
    const a = await layerTorrent(f, digest);
    fs.copyFileSync(f, join(dir, 'copy'));
    const b = await layerTorrent(join(dir, 'copy'), digest);
    expect(a.infoHash).toBe(b.infoHash);
    const t1 = bdecode(torrentFile(a, 'http://s1/announce', ['http://s1/blobs/x'])) as any;
    const t2 = bdecode(torrentFile(b, 'http://s2/announce', ['http://s2/blobs/x'])) as any;
    expect(createHash('sha1').update(bencode(t1.info)).digest('hex')).toBe(a.infoHash);
    expect(createHash('sha1').update(bencode(t2.info)).digest('hex')).toBe(a.infoHash);
    expect(t1.info.private).toBe(1);
    expect(t1.info.length).toBe(data.length);
    expect(t1['url-list'][0].toString()).toBe('http://s1/blobs/x');
    const pieces: Buffer = t1.info.pieces;
    expect(pieces.length).toBe(20 * 3);
    expect(pieces.subarray(40).equals(createHash('sha1').update(data.subarray(2 * 262144)).digest())).toBe(true);
    fs.writeFileSync(join(dir, 'other'), Buffer.concat([data.subarray(0, 10), Buffer.from([data[10] ^ 1]), data.subarray(11)]));
    expect((await layerTorrent(join(dir, 'other'), digest)).infoHash).not.toBe(a.infoHash);
  });
});

describe('tracker swarms', () => {
  const ih = 'ab'.repeat(20);
  const ann = (peer: number, left: number, extra: Partial<Parameters<Swarms['announce']>[2]> = {}) => ({ infoHash: ih, peerId: String(peer).padStart(40, '0'), ip: `10.0.0.${peer}`, port: 6881, left, uploaded: 0, downloaded: 0, deployment: peer, ...extra });
  it('hands out the other peers, a seed only leechers; done when every live peer is complete; peers expire', () => {
    let now = 0;
    const s = new Swarms(() => now);
    expect(s.announce('img@1', 'sha256:x', ann(1, 100)).peers).toEqual([]);
    expect(s.announce('img@1', 'sha256:x', ann(2, 0)).peers).toEqual([{ ip: '10.0.0.1', port: 6881 }]);
    expect(s.announce('img@1', 'sha256:x', ann(3, 0)).peers).toEqual([{ ip: '10.0.0.1', port: 6881 }]);
    expect(s.announce('other@1', 'sha256:x', ann(4, 5)).peers).toEqual([]);
    expect(s.state('img@1', 'sha256:x', ih)).toMatchObject({ peers: 3, complete: 2, incomplete: 1, done: false });
    s.announce('img@1', 'sha256:x', ann(1, 0, { event: 'completed' }));
    expect(s.state('img@1', 'sha256:x', ih).done).toBe(true);
    now += 60_000;
    expect(s.state('img@1', 'sha256:x', ih)).toMatchObject({ peers: 0, done: false });
  });
  it('stopped removes the peer; numwant is capped at 50', () => {
    const s = new Swarms();
    for (let i = 1; i <= 60; i++) s.announce('i', 'l', ann(i, 1));
    expect(s.announce('i', 'l', ann(61, 1, { numwant: 500 })).peers).toHaveLength(50);
    s.announce('i', 'l', ann(61, 1, { event: 'stopped' }));
    expect(s.state('i', 'l', ih).peers).toBe(60);
  });
  it('compact peers are 6 bytes each, IPv4 (also v4-mapped) only', () => {
    expect(compactPeers([{ ip: '10.1.2.3', port: 6881 }, { ip: '::ffff:10.0.0.9', port: 1 }, { ip: 'fe80::1', port: 2 }]).toString('hex')).toBe('0a0102031ae10a0000090001');
  });
  it('parses an announce as aria2 sends it, and refuses a bad one', () => {
    const h = Buffer.from(ih, 'hex');
    const q = `info_hash=${pct(h)}&peer_id=A2-1-36-0-${pct(randomBytes(10))}&uploaded=5&downloaded=0&left=7&compact=1&numwant=50&event=started&port=6970`;
    expect(parseAnnounce(q, '10.0.0.5', 9)).toMatchObject({ infoHash: ih, port: 6970, left: 7, uploaded: 5, event: 'started', numwant: 50, ip: '10.0.0.5', deployment: 9 });
    expect(() => parseAnnounce(q.replace('port=6970', 'port=0'), '', 1)).toThrow(/port/);
    expect(() => parseAnnounce(q.replace(/info_hash=[^&]*/, 'info_hash=%AB'), '', 1)).toThrow(/info_hash/);
    expect(() => parseAnnounce('x'.repeat(3000), '', 1)).toThrow(/2048/);
    expect(queryBytes('a%20+').toString()).toBe('a  ');
  });
});

describe('aria2 readout', () => {
  it('reads bytes, total and peers', () => {
    expect(parseReadout('[#2089b0 16MiB/64MiB(25%) CN:4 SD:2 DL:10MiB ETA:4s]')).toEqual({ bytes: 16 * 1024 ** 2, total: 64 * 1024 ** 2, peers: 4 });
    expect(parseReadout('[#79f419 SEED(0.0) CN:0 SD:0]')).toBeUndefined();
  });
});

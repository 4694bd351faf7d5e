/**
 * One deterministic .torrent per layer blob (issue 13). The info dictionary depends only on the
 * blob: its name is the digest's hex, its piece length a fixed function of the size, its pieces
 * the blob's SHA-1 piece hashes, and it is private (BEP 27: no DHT, no PEX, no LPD in clients
 * that honour it). Same blob, same info-hash, on every server. The announce URL and the web seed
 * (BEP 19 url-list: the blob's own URL on this server) sit outside the info dictionary, so they
 * may differ between servers without changing the swarm's identity.
 *
 * Written with Ferry's bencode encoder (common/bencode.ts), not mktorrent: the server computes
 * the piece hashes anyway to know the info-hash when a tracker request arrives, mktorrent would
 * be one more process per blob and one more Debian package on the server, and its output is
 * not deterministic across versions (it writes "creation date" and "created by").
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { bencode } from '../../common/bencode.js';

/** Piece length for a blob of `size` bytes: 256 KiB doubled until there are at most 2048 pieces, at most 16 MiB. */
export function pieceLengthFor(size: number): number {
  let p = 256 * 1024;
  while (p < 16 * 1024 * 1024 && Math.ceil(size / p) > 2048) p *= 2;
  return p;
}

export interface LayerTorrent {
  digest: string;
  size: number;
  pieceLength: number;
  /** The 20-byte SHA-1 of the bencoded info dictionary, as 40 lowercase hex digits. */
  infoHash: string;
  /** The bencoded info dictionary (the part that fixes the info-hash). */
  info: Buffer;
}

async function pieceHashes(file: string, pieceLength: number): Promise<Buffer> {
  const out: Buffer[] = [];
  let h = createHash('sha1');
  let inPiece = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(pieceLength - inPiece, chunk.length - off);
      h.update(chunk.subarray(off, off + n));
      inPiece += n;
      off += n;
      if (inPiece === pieceLength) {
        out.push(h.digest());
        h = createHash('sha1');
        inPiece = 0;
      }
    }
  }
  if (inPiece > 0) out.push(h.digest());
  return Buffer.concat(out);
}

/** The torrent of one blob file (reads it once; cache the result). */
export async function layerTorrent(file: string, digest: string): Promise<LayerTorrent> {
  const size = statSync(file).size;
  const pieceLength = pieceLengthFor(size);
  const info = bencode({ length: size, name: digest.replace(/^sha256:/, ''), 'piece length': pieceLength, pieces: await pieceHashes(file, pieceLength), private: 1 });
  return { digest, size, pieceLength, infoHash: createHash('sha1').update(info).digest('hex'), info };
}

/** The .torrent file: the info dictionary plus where to announce and the web seed. */
export function torrentFile(t: LayerTorrent, announce: string, webSeeds: string[]): Buffer {
  // The info dictionary is spliced in as it was hashed, byte for byte, keys in order
  // (announce < info < url-list).
  const head = bencode({ announce });
  // No web seed: no url-list at all (the server seeds as a peer, server/torrent/seeder.ts).
  const tail = webSeeds.length ? bencode({ 'url-list': webSeeds }) : Buffer.from('de');
  return Buffer.concat([head.subarray(0, head.length - 1), Buffer.from('4:info'), t.info, tail.subarray(1)]);
}

/** Torrents by digest, computed once per blob and server run (blobs are immutable). */
export class TorrentCache {
  private readonly map = new Map<string, Promise<LayerTorrent>>();
  private readonly byHash = new Map<string, string>();
  get(file: string, digest: string): Promise<LayerTorrent> {
    let p = this.map.get(digest);
    if (!p) {
      p = layerTorrent(file, digest).then((t) => {
        this.byHash.set(t.infoHash, digest);
        return t;
      });
      p.catch(() => this.map.delete(digest));
      this.map.set(digest, p);
    }
    return p;
  }
  /** The digest of a known info-hash (one this server handed out), else undefined. */
  digestOf(infoHash: string): string | undefined {
    return this.byHash.get(infoHash);
  }
}

/**
 * The tracker's memory (issue 13): one swarm per image and layer torrent, holding the peers that
 * announced with a deploy token of that image. In memory only: a swarm lives as long as its
 * installs, and a restarted server is re-taught by the next announce (every 10 s).
 * Bounded: peers per swarm, swarms, peers per answer; a peer that stops announcing expires.
 */
import type { TorrentSwarmState } from '../../common/protocol.js';
import { FerryError } from '../../common/errors.js';

export const ANNOUNCE_INTERVAL_S = 10;
const PEER_TTL_MS = 4 * ANNOUNCE_INTERVAL_S * 1000;
const MAX_PEERS_PER_SWARM = 1024;
const MAX_SWARMS = 256;
const MAX_NUMWANT = 50;

export interface Announce {
  infoHash: string;
  /** The peer id as hex (20 bytes). */
  peerId: string;
  ip: string;
  port: number;
  left: number;
  uploaded: number;
  downloaded: number;
  event?: 'started' | 'completed' | 'stopped';
  numwant?: number;
  deployment: number;
}

interface Peer {
  ip: string;
  port: number;
  left: number;
  uploaded: number;
  downloaded: number;
  deployment: number;
  seen: number;
}

/** What the swarm route answers (the protocol's type); `done`: every peer still in it has the whole layer. */
export type SwarmState = TorrentSwarmState;

export class Swarms {
  private readonly swarms = new Map<string, { layer: string; infoHash: string; peers: Map<string, Peer>; touched: number }>();
  constructor(private readonly now: () => number = Date.now) {}

  private key(image: string, infoHash: string): string {
    return `${image}\n${infoHash}`;
  }

  private expire(peers: Map<string, Peer>): void {
    const t = this.now();
    for (const [id, p] of peers) if (t - p.seen > PEER_TTL_MS) peers.delete(id);
  }

  /** Record an announce; the answer is up to numwant other peers (a seed gets only leechers). */
  announce(image: string, layer: string, a: Announce): { peers: Array<{ ip: string; port: number }>; complete: number; incomplete: number } {
    const k = this.key(image, a.infoHash);
    let s = this.swarms.get(k);
    if (!s) {
      if (this.swarms.size >= MAX_SWARMS) {
        // Forget the swarm touched longest ago (its installs are over).
        let oldest: string | undefined;
        let t = Infinity;
        for (const [kk, v] of this.swarms) if (v.touched < t) [oldest, t] = [kk, v.touched];
        if (oldest) this.swarms.delete(oldest);
      }
      s = { layer, infoHash: a.infoHash, peers: new Map(), touched: this.now() };
      this.swarms.set(k, s);
    }
    s.touched = this.now();
    this.expire(s.peers);
    if (a.event === 'stopped') s.peers.delete(a.peerId);
    else {
      if (!s.peers.has(a.peerId) && s.peers.size >= MAX_PEERS_PER_SWARM) {
        throw new FerryError('FERRY_E_TORRENT_SWARM_FULL', `the swarm of ${layer} has ${MAX_PEERS_PER_SWARM} peers`, { details: { layer, peers: s.peers.size }, hint: 'the node takes the layer over HTTP; deploy fewer nodes of one image at once' });
      }
      s.peers.set(a.peerId, { ip: a.ip, port: a.port, left: a.left, uploaded: a.uploaded, downloaded: a.downloaded, deployment: a.deployment, seen: this.now() });
    }
    const want = Math.max(0, Math.min(a.numwant ?? MAX_NUMWANT, MAX_NUMWANT));
    const others = [...s.peers.entries()].filter(([id, p]) => id !== a.peerId && !(a.left === 0 && p.left === 0));
    // A random sample, so that the swarm does not form one chain.
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [others[i], others[j]] = [others[j], others[i]];
    }
    const st = this.counts(s.peers);
    return { peers: others.slice(0, want).map(([, p]) => ({ ip: p.ip, port: p.port })), complete: st.complete, incomplete: st.incomplete };
  }

  private counts(peers: Map<string, Peer>): { complete: number; incomplete: number; uploaded: number } {
    let complete = 0;
    let uploaded = 0;
    for (const p of peers.values()) {
      if (p.left === 0) complete++;
      uploaded += p.uploaded;
    }
    return { complete, incomplete: peers.size - complete, uploaded };
  }

  /**
   * The swarm's state. `expected`: the deployments that belong in it (the batch's torrent
   * deployments of this image still armed or running): `done` only when each of them has a peer
   * holding the whole layer and no peer lacks any, so a node that has not announced yet is
   * waited for (the installer's --seed-wait bounds the wait). Without `expected`, the peers
   * that announced are the swarm.
   */
  state(image: string, layer: string, infoHash: string, expected?: number[]): SwarmState {
    const s = this.swarms.get(this.key(image, infoHash));
    if (s) this.expire(s.peers);
    const c = s ? this.counts(s.peers) : { complete: 0, incomplete: 0, uploaded: 0 };
    const peers = s?.peers.size ?? 0;
    const have = new Set<number>();
    for (const p of s?.peers.values() ?? []) if (p.left === 0) have.add(p.deployment);
    const waiting = expected ? expected.filter((id) => !have.has(id)).length : 0;
    const out: SwarmState = { layer, infoHash, peers, complete: c.complete, incomplete: c.incomplete, done: peers > 0 && c.incomplete === 0 && waiting === 0, uploaded: c.uploaded };
    if (expected) [out.expected, out.waiting] = [expected.length, waiting];
    return out;
  }
}

/** 6 bytes a peer (BEP 23), IPv4 only; IPv6 peers are left out of the compact list. */
export function compactPeers(peers: Array<{ ip: string; port: number }>): Buffer {
  const out: Buffer[] = [];
  for (const p of peers) {
    const ip = p.ip.replace(/^::ffff:/, '');
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
    if (!m) continue;
    const b = Buffer.alloc(6);
    for (let i = 0; i < 4; i++) b[i] = Number(m[i + 1]);
    b.writeUInt16BE(p.port, 4);
    out.push(b);
  }
  return Buffer.concat(out);
}

/** Percent-decode a query value to its bytes (info_hash and peer_id are binary). */
export function queryBytes(raw: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '%') {
      const h = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new FerryError('FERRY_E_BAD_REQUEST', 'a bad percent escape in the announce', { hint: 'a BitTorrent client bug' });
      out.push(parseInt(h, 16));
      i += 2;
    } else if (c === '+') out.push(0x20);
    else out.push(c.charCodeAt(0) & 0xff);
  }
  return Buffer.from(out);
}

/** Parse an announce query (raw, as the client sent it). */
export function parseAnnounce(search: string, ip: string, deployment: number): Announce {
  if (search.length > 2048) throw new FerryError('FERRY_E_BAD_REQUEST', 'the announce query is longer than 2048 bytes', { hint: 'a BitTorrent client bug' });
  const q = new Map<string, string>();
  for (const part of search.replace(/^\?/, '').split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) q.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const bad = (field: string, why: string): never => {
    throw new FerryError('FERRY_E_BAD_REQUEST', `announce ${field} ${why}`, { details: { field }, hint: 'a BitTorrent client bug' });
  };
  const ih = queryBytes(q.get('info_hash') ?? '');
  if (ih.length !== 20) bad('info_hash', 'is not 20 bytes');
  const pid = queryBytes(q.get('peer_id') ?? '');
  if (pid.length !== 20) bad('peer_id', 'is not 20 bytes');
  const num = (f: string, dflt?: number): number => {
    const v = q.get(f);
    if (v === undefined && dflt !== undefined) return dflt;
    if (!v || !/^[0-9]{1,15}$/.test(v)) bad(f, 'is not a non-negative integer');
    return Number(v);
  };
  const port = num('port');
  if (port < 1 || port > 65535) bad('port', 'is not a TCP port');
  const ev = q.get('event');
  const event = ev === 'started' || ev === 'completed' || ev === 'stopped' ? ev : undefined;
  return { infoHash: ih.toString('hex'), peerId: pid.toString('hex'), ip, port, left: num('left'), uploaded: num('uploaded', 0), downloaded: num('downloaded', 0), event, numwant: q.has('numwant') ? num('numwant') : undefined, deployment };
}

/**
 * Multicast sessions (issue 13): the server's side of the multicast transport, with udpcast's
 * `udp-sender` as the engine (the one FOG and Clonezilla use).
 *
 * A session belongs to one image and one batch (the deployments one `ferry deploy` armed), and
 * runs one udp-sender per layer. Per layer rather than one stream of all layers, because:
 *  - every stream is bound to exactly one layer: its own port base and data address, and a
 *    header line (`FERRYMC1 SESSION DIGEST SIZE`) the receiver checks before a byte reaches the
 *    layer sink; a receiver that lost sync cannot read another layer's bytes as this one's (the
 *    FOG failure mode), and the sha256 is still the last word;
 *  - every layer has its own start barrier (`--min-receivers`, `--max-wait` from its first join),
 *    so the wait bounds every layer, not just the first one (FOG applied it to the first only and
 *    dropped hosts on the later ones);
 *  - a node that fails one layer (a digest mismatch, a drop) takes that layer over HTTP and can
 *    still join the next one.
 *
 * The barrier counts the batch's multicast deployments of this image that are still in the
 * session (a node that left for HTTP is not waited for again), or `--min-receivers`.
 * A node that asks after its layer's transfer started is late: it is told so at once and takes
 * HTTP. A receiver that holds the session back is dropped by udp-sender itself
 * (`--retries-until-drop`: it stops waiting for a receiver that has not acknowledged a slice
 * after that many requests); the receiver sees "Dropped by server" and finishes over HTTP, so
 * the others keep their pace. The server records who was dropped from udp-sender's own log.
 * udp-sender drops only a receiver that stops answering; one on a slow link that answers (with
 * retransmission requests) holds every slice back. The pace rule (pace.ts) finds it in
 * udp-sender's `Timeout notReady=[…]` reports (late again and again while the others are ready)
 * and tells it to leave: the session state says `dropped` to its installer, which stops its
 * receiver and takes HTTP; udp-sender then drops it as unanswering.
 *
 * Sessions live in the server process (they are as long-lived as a transfer); a restart ends
 * them, and their receivers fall back to HTTP.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { interfaceFor, type InterfaceAddress } from '../../common/netif.js';
import type { ImageManifest, MulticastJoin, MulticastOptions, MulticastSessionState } from '../../common/protocol.js';
import { spawnTool, type Spawned } from '../../common/run.js';
import type { DataDir } from '../context.js';
import { batchMembers, transportOf, type DeploymentRow } from '../db/deployments.js';
import { parseTimeoutLine, PaceWatch, type PaceRule } from './pace.js';

export interface MulticastConfig {
  /** `ferry serve --multicast-interface IF`; default: the interface that routes to the node. */
  interface?: string;
  /** `--multicast-group A.B.C.D/P`: data addresses are taken from this range (default 239.255.70.0/24). */
  group?: string;
  /** `--multicast-ports LO-HI`: port bases (even, two ports each) from this range (default 9200-9399). */
  ports?: string;
  /** udp-sender's --retries-until-drop when a session has several receivers (default 8). */
  dropRetries?: number;
  /** The pace rule that tells a receiver holding a session back to leave (default DEFAULT_PACE_RULE; pace.ts). */
  pace?: PaceRule;
  /** Where a layer's bytes come from (default: the blob store). Tests hand in a damaged stream. */
  source?: (digest: string, path: string) => Readable;
}

export const DEFAULT_GROUP = '239.255.70.0/24';
export const DEFAULT_PORTS = '9200-9399';
/**
 * udpcast paces to the slowest receiver; it drops one that leaves this many acknowledgement
 * rounds of a slice without being ready. Measured in the netns harness: 8 drops a receiver on
 * an 8 Mbit/s link from a 60 Mbit/s session within the first slices, but also, on a loaded
 * 2-core machine, receivers that were only short of CPU (the bench's slow-node run at 8 nodes
 * lost all 8 to HTTP). Since the pace rule (pace.ts) picks the one that holds the others back
 * and its installer says goodbye for it (udpcast's CMD_DISCONNECT), udp-sender's own drop is
 * only the backstop for a receiver that vanished: 30 rounds (one node on 20 Mbit/s among 4:
 * the others 1.26 × their time alone, test/integration/multicast-pace.test.ts).
 */
export const DEFAULT_DROP_RETRIES = 30;
/**
 * A session with one receiver holds nobody back: udpcast's own default, so that a receiver
 * whose CPU is busy extracting for a moment is not dropped (measured: with 8, a lone receiver on
 * a loaded 2-core machine was dropped from a 64 MiB layer).
 */
const LONE_DROP_RETRIES = 200;
/** Completed sessions remembered (for late joiners and the state query). */
const KEEP_DONE = 256;

export const STREAM_MAGIC = 'FERRYMC1';
export function streamHeader(session: string, digest: string, size: number): string {
  return `${STREAM_MAGIC} ${session} ${digest} ${size}\n`;
}

interface Range {
  base: number; // the network's first address as an integer
  size: number; // usable addresses
  portLo: number;
  portHi: number;
}

const ipToInt = (ip: string) => ip.split('.').reduce((n, x) => n * 256 + Number(x), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** Check the configured range where it enters (ferry serve), every problem at once. */
export function parseMulticastConfig(c: MulticastConfig): Range {
  const problems: string[] = [];
  const g = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(c.group ?? DEFAULT_GROUP);
  let base = 0;
  let size = 0;
  if (!g || g.slice(1, 5).some((x) => Number(x) > 255) || Number(g[5]) < 8 || Number(g[5]) > 30) problems.push(`--multicast-group "${c.group}" is not A.B.C.D/P (P 8…30)`);
  else {
    const prefix = Number(g[5]);
    base = ipToInt(g.slice(1, 5).join('.'));
    base -= base % 2 ** (32 - prefix);
    size = 2 ** (32 - prefix) - 2;
    if (Number(g[1]) < 224 || Number(g[1]) > 239) problems.push(`--multicast-group ${c.group} is not in 224.0.0.0/4 (use an administratively scoped range such as 239.255.70.0/24)`);
  }
  const p = /^(\d{1,5})-(\d{1,5})$/.exec(c.ports ?? DEFAULT_PORTS);
  let portLo = 0;
  let portHi = 0;
  if (!p || Number(p[1]) < 1024 || Number(p[2]) > 65535 || Number(p[1]) + 1 > Number(p[2])) problems.push(`--multicast-ports "${c.ports}" is not LO-HI within 1024-65535 with room for one pair`);
  else {
    portLo = Number(p[1]) + (Number(p[1]) % 2);
    portHi = Number(p[2]);
  }
  if (problems.length) {
    throw new FerryError('FERRY_E_BAD_VALUE', problems.join('; '), { details: { group: c.group, ports: c.ports, problems }, hint: 'e.g. --multicast-group 239.255.70.0/24 --multicast-ports 9200-9399' });
  }
  return { base, size, portLo, portHi };
}

interface LayerSession {
  id: string;
  key: string;
  batch: string;
  layer: string;
  size: number;
  state: MulticastSessionState['state'];
  expected: number;
  slot: number;
  address: string;
  portbase: number;
  opts: MulticastOptions;
  joined: Map<number, string>; // deployment id → its address
  connected: Map<number, string>; // udp-sender's participant # → address
  dropped: Set<number>;
  /** Of `dropped`: those the pace rule told to leave (the rest udp-sender dropped itself). */
  told: Set<number>;
  pace: PaceWatch;
  late: Set<number>;
  proc?: Spawned;
  iface?: InterfaceAddress;
}

export class MulticastSessions {
  private readonly range: Range;
  private readonly sessions = new Map<string, LayerSession>();
  /** Per batch: deployments that left the session for HTTP (not waited for on later layers). */
  private readonly gone = new Map<string, Set<number>>();
  private seq = 0;
  private closed = false;

  constructor(private readonly data: DataDir, private readonly cfg: MulticastConfig = {}) {
    this.range = parseMulticastConfig(cfg);
  }

  /** `ferry serve --multicast-interface IF`: the interface must be usable before the server starts. */
  async checkInterface(): Promise<InterfaceAddress | undefined> {
    return this.cfg.interface ? interfaceFor(undefined, this.cfg.interface) : undefined;
  }

  private batchMembers(row: DeploymentRow): number[] {
    return batchMembers(this.data, row, 'multicast');
  }

  private freeSlot(): number | undefined {
    const used = new Set([...this.sessions.values()].filter((s) => s.state === 'gathering' || s.state === 'sending').map((s) => s.slot));
    const slots = Math.min(this.range.size, Math.floor((this.range.portHi - this.range.portLo + 1) / 2));
    for (let i = 0; i < slots; i++) if (!used.has(i)) return i;
    return undefined;
  }

  /** A receiver asks to join `layer`'s session: the session's address, or go to HTTP now. */
  async join(row: DeploymentRow, layer: string, remoteAddress: string | undefined): Promise<MulticastJoin> {
    const t = transportOf(row);
    const m: ImageManifest = JSON.parse(row.manifest);
    const ref = m.layers.find((l) => l.digest === layer);
    if (t.kind !== 'multicast' || !ref || !row.batch) {
      throw new FerryError('FERRY_E_BAD_REQUEST', `deployment ${row.id} has no multicast session for ${layer}`, {
        details: { deployment: row.id, transport: t.kind, layer },
        hint: 'only a deployment armed with --transport multicast joins sessions, and only for its own image\'s layers',
      });
    }
    const addr = (remoteAddress ?? '').replace(/^::ffff:/, '');
    const key = `${row.image_digest}|${row.batch}|${layer}`;
    let s = this.sessions.get(key);
    if (s && s.state !== 'gathering') {
      s.late.add(row.id);
      this.leave(row.batch, row.id);
      return { state: 'late', code: 'FERRY_E_MULTICAST_LATE', reason: `the multicast session for ${layer} ${s.state === 'sending' ? 'started' : 'ended'} before this node joined` };
    }
    if (!s) {
      if (this.closed) return { state: 'unavailable', code: 'FERRY_E_MULTICAST_UNAVAILABLE', reason: 'the server is shutting down' };
      let iface: InterfaceAddress;
      try {
        iface = await interfaceFor(addr || undefined, this.cfg.interface);
      } catch (e) {
        const fe = e as FerryError;
        log.error('multicast session cannot start', { code: fe.code, error: fe.message });
        return { state: 'unavailable', code: fe.code ?? 'FERRY_E_MULTICAST_UNAVAILABLE', reason: fe.message };
      }
      // Re-check after the await: another receiver of the same layer may have created it.
      s = this.sessions.get(key);
      if (!s) {
        const slot = this.freeSlot();
        if (slot === undefined) return { state: 'unavailable', code: 'FERRY_E_MULTICAST_UNAVAILABLE', reason: 'every multicast address and port of the configured range is in use' };
        const gone = this.gone.get(row.batch) ?? new Set<number>();
        const members = this.batchMembers(row).filter((id) => !gone.has(id));
        const opts = t.multicast ?? { maxWaitS: 60, maxBitrate: '600m' };
        s = {
          id: `mc${Date.now().toString(36)}${(++this.seq).toString(36)}`,
          key,
          batch: row.batch,
          layer,
          size: ref.size,
          state: 'gathering',
          expected: Math.max(1, opts.minReceivers ?? members.length),
          slot,
          address: intToIp(this.range.base + 1 + slot),
          portbase: this.range.portLo + 2 * slot,
          opts,
          joined: new Map(),
          connected: new Map(),
          dropped: new Set(),
          told: new Set(),
          pace: new PaceWatch(this.cfg.pace),
          late: new Set(),
          iface,
        };
        this.sessions.set(key, s);
        this.start(s);
      }
    }
    if (s.state !== 'gathering') return this.join(row, layer, remoteAddress);
    s.joined.set(row.id, addr);
    return { state: 'joined', session: s.id, layer, address: s.address, portbase: s.portbase, header: streamHeader(s.id, layer, s.size), maxWaitS: s.opts.maxWaitS };
  }

  private leave(batch: string, id: number): void {
    const g = this.gone.get(batch) ?? new Set<number>();
    g.add(id);
    this.gone.set(batch, g);
  }

  private start(s: LayerSession): void {
    const argv = [
      'udp-sender', '--interface', s.iface!.ifname, '--nokbd', '--portbase', String(s.portbase), '--mcast-data-address', s.address,
      '--min-receivers', String(s.expected), '--max-wait', String(s.opts.maxWaitS), '--max-bitrate', s.opts.maxBitrate,
      '--full-duplex', '--retries-until-drop', String(s.expected > 1 ? (this.cfg.dropRetries ?? DEFAULT_DROP_RETRIES) : LONE_DROP_RETRIES),
      // No receiver within this long (or no start): the session ends and its receivers use HTTP.
      '--start-timeout', String(s.opts.maxWaitS + 30),
    ];
    log.info('multicast session starting', { session: s.id, layer: s.layer, address: s.address, portbase: s.portbase, expected: s.expected, interface: s.iface!.ifname });
    let proc: Spawned;
    try {
      proc = spawnTool(argv, { stdout: 'ignore' });
    } catch (e) {
      log.error('udp-sender did not start', { session: s.id, error: (e as Error).message });
      s.state = 'failed';
      return;
    }
    s.proc = proc;
    let rest = '';
    proc.child.stderr!.on('data', (b: Buffer) => {
      const lines = (rest + b.toString('utf8')).split(/[\r\n]/);
      rest = lines.pop() ?? '';
      for (const l of lines) this.onLine(s, l);
    });
    const path = this.data.blobs.path(s.layer);
    const src = this.cfg.source ? this.cfg.source(s.layer, path) : createReadStream(path);
    const stdin = proc.child.stdin!;
    stdin.on('error', () => {
      /* udp-sender gave up (start timeout, no receiver): its exit says why */
    });
    src.on('error', (e: Error) => {
      log.error('multicast source failed', { session: s.id, error: e.message });
      proc.child.kill('SIGKILL');
    });
    stdin.write(streamHeader(s.id, s.layer, s.size));
    src.pipe(stdin);
    proc.done.then(
      () => {
        s.state = 'done';
        log.info('multicast session done', { session: s.id, layer: s.layer, dropped: [...s.dropped] });
        this.prune();
      },
      (e: Error) => {
        if (s.state !== 'done') s.state = 'failed';
        src.destroy();
        log.warn('multicast session ended with an error', { session: s.id, layer: s.layer, error: e.message.split('\n')[0] });
        for (const id of s.joined.keys()) this.leave(s.batch, id);
        this.prune();
      },
    );
  }

  private onLine(s: LayerSession, line: string): void {
    let m: RegExpExecArray | null;
    if ((m = /^New connection from (\S+)\s+\(#(\d+)\)/.exec(line))) s.connected.set(Number(m[2]), m[1]);
    else if (/^Starting transfer/.test(line)) {
      s.state = 'sending';
      // Who joined but never connected will not be waited for on the next layer.
      const connected = new Set(s.connected.values());
      for (const [id, a] of s.joined) if (!connected.has(a)) this.leave(s.batch, id);
      log.info('multicast transfer started', { session: s.id, receivers: s.connected.size, expected: s.expected });
    } else if ((m = /^Dropping client #(\d+)/.exec(line))) {
      const addr = s.connected.get(Number(m[1]));
      for (const [id, a] of s.joined) {
        if (a === addr) {
          s.dropped.add(id);
          this.leave(s.batch, id);
        }
      }
      log.warn('multicast receiver dropped: it held the session back', { session: s.id, receiver: addr });
    } else if ((m = /^Disconnecting #(\d+)/.exec(line))) s.pace.gone(Number(m[1]));
    else if (s.state === 'sending') {
      if (line.startsWith('Timeout')) log.debug('udp-sender: a slice is late', { session: s.id, line: line.slice(0, 200) });
      const r = parseTimeoutLine(line);
      if (!r) return;
      for (const n of s.pace.report(r, Date.now())) {
        const addr = s.connected.get(n);
        for (const [id, a] of s.joined) {
          if (a === addr && !s.dropped.has(id)) {
            s.dropped.add(id);
            s.told.add(id);
            this.leave(s.batch, id);
          }
        }
        log.warn('multicast receiver told to leave: the others wait for it again and again (udp-sender reports it late while they are ready)', { session: s.id, receiver: addr, participant: n });
      }
    }
  }

  private prune(): void {
    const done = [...this.sessions.values()].filter((s) => s.state === 'done' || s.state === 'failed');
    for (const s of done.slice(0, Math.max(0, done.length - KEEP_DONE))) this.sessions.delete(s.key);
  }

  state(row: DeploymentRow, layer: string): MulticastSessionState | undefined {
    const s = this.sessions.get(`${row.image_digest}|${row.batch}|${layer}`);
    if (!s) return undefined;
    const self = s.dropped.has(row.id) ? 'dropped' : s.late.has(row.id) ? 'late' : s.joined.has(row.id) ? 'joined' : 'none';
    return { session: s.id, layer, state: s.state, expected: s.expected, joined: [...s.joined.keys()], connected: [...s.connected.values()], dropped: [...s.dropped], told: [...s.told], late: [...s.late], self };
  }

  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.sessions.values()].filter((s) => s.proc && !s.proc.child.killed && s.proc.child.exitCode === null);
    for (const s of running) s.proc!.child.kill('SIGKILL');
    await Promise.all(running.map((s) => s.proc!.done.catch(() => {})));
  }
}

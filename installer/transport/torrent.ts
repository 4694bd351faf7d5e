/**
 * The BitTorrent transport (issue 13): aria2c from Debian, a leecher that seeds.
 *  1. asks the server for the layer's deterministic torrent (TORRENT_ROUTES.torrent; deploy
 *     token; private, web seed = the blob's URL on the server);
 *  2. stages the layer whole on the target's own file system (aria2 cannot hand out pieces in
 *     order, and a layer can be larger than RAM), in ROOT/.ferry-torrent-HEX, mode 0700;
 *  3. runs aria2c with DHT, peer exchange and local peer discovery off, so the swarm is exactly
 *     what the server's tracker admits; the token travels in aria2's own config file (mode 0600,
 *     `header=`), never on its command line, and aria2 sends it to the tracker and the web seed;
 *  4. when the file is whole (aria2's readout turns to SEED), feeds it to the layer sink (size and
 *     sha256, the shared extractor), while aria2 keeps seeding;
 *  5. keeps seeding through the customize and bootloader stages; the finish stage calls
 *     `finishSeeding`, which stays until the server says every peer of each swarm has the layer
 *     or --seed-wait ends, then stops aria2 and removes the staging directories.
 * Any failure (no aria2, no peers and no web seed, aria2 exits, a stall) throws, and the dispatch
 * (index.ts) warns and applies the layer over HTTP.
 */
import { once } from 'node:events';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import type { ProgressSink } from '../../common/progress.js';
import { TORRENT_ROUTES, type LayerTorrentAnswer, type TorrentSwarmState } from '../../common/protocol.js';
import { spawnTool, stopSpawned, type Spawned } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import type { ServerClient } from '../client.js';
import type { LayerTransport } from './types.js';

/** aria2 stops a download whose speed stayed 0 this long (then HTTP takes the layer). */
const STALL_S = 20;
/** The longest a layer may take by torrent before the HTTP fallback. */
const DOWNLOAD_TIMEOUT_MS = 30 * 60 * 1000;
export const DEFAULT_SEED_WAIT_S = 180;

interface Seeder {
  layer: string;
  dir: string;
  proc: Spawned;
  exited: boolean;
}
const seeders: Seeder[] = [];

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** aria2's readout "[#gid 12MiB/64MiB(18%) CN:3 SD:1 DL:9.8MiB]" → bytes and peers. */
export function parseReadout(line: string): { bytes: number; total: number; peers: number } | undefined {
  const m = /\[#\w+ ([\d.]+)(B|KiB|MiB|GiB)\/([\d.]+)(B|KiB|MiB|GiB)\(\d+%\) CN:(\d+)/.exec(line);
  if (!m) return undefined;
  return { bytes: Math.round(Number(m[1]) * UNITS[m[2]]), total: Math.round(Number(m[3]) * UNITS[m[4]]), peers: Number(m[5]) };
}

async function stop(s: Seeder): Promise<void> {
  // SIGTERM: aria2 announces "stopped" to the tracker and exits.
  if (!s.exited) await stopSpawned(s.proc);
  fs.rmSync(s.dir, { recursive: true, force: true });
}

export const torrentTransport: LayerTransport = {
  kind: 'torrent',
  async deliver(ref, sink, o) {
    if (!o.client || !o.token) throw new FerryError('FERRY_E_TORRENT_UNAVAILABLE', 'the torrent transport needs the installer API and the deploy token', { hint: 'run the installer with --server and --token' });
    if (!o.stageDir) throw new FerryError('FERRY_E_TORRENT_UNAVAILABLE', 'the torrent transport has no place to stage the layer', { hint: 'a Ferry bug: report it' });
    const t = await o.client.call<LayerTorrentAnswer>('GET', `${TORRENT_ROUTES.torrent}?layer=${encodeURIComponent(ref.digest)}`, undefined, 'the layer\'s torrent');
    const hex = ref.digest.replace(/^sha256:/, '');
    const dir = join(o.stageDir, `.ferry-torrent-${hex.slice(0, 16)}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { mode: 0o700 });
    const torrentPath = join(dir, 'layer.torrent');
    const conf = join(dir, 'aria2.conf');
    fs.writeFileSync(torrentPath, Buffer.from(t.torrent, 'base64'), { mode: 0o600 });
    fs.writeFileSync(conf, `header=Authorization: Bearer ${o.token}\n`, { mode: 0o600 });
    const data = join(dir, hex);
    const argv = [
      'aria2c', `--conf-path=${conf}`, `--dir=${dir}`, '--enable-dht=false', '--enable-dht6=false', '--enable-peer-exchange=false', '--bt-enable-lpd=false',
      '--seed-ratio=0.0', '--seed-time=600', `--bt-stop-timeout=${STALL_S}`, '--file-allocation=none', '--summary-interval=1', '--console-log-level=warn',
      '--allow-overwrite=true', '--auto-file-renaming=false', '--follow-torrent=false', '--max-overall-upload-limit=0', '--bt-max-peers=55', '--listen-port=6881-6999',
      '--bt-hash-check-seed=false', '--stop-with-process=' + process.pid,
      // The web seed is the server: a connection it loses mid-piece (a proxy, a flaky link) is
      // retried, not the end of the URI (aria2's default drops it after 5 tries, and a swarm
      // without the server's copy stalls: test/integration/fanout-cuts.test.ts).
      '--max-tries=0', '--retry-wait=1',
      torrentPath,
    ];
    const proc = spawnTool(argv, { stdout: 'pipe' });
    const s: Seeder = { layer: ref.digest, dir, proc, exited: false };
    let exitErr: unknown;
    proc.done.then(() => (s.exited = true), (e) => ((s.exited = true), (exitErr = e)));
    let out = '';
    let peers = 0;
    // aria2 keeps its control file while it seeds: the readout's SEED(...) says the download is whole.
    let seeding = false;
    // A swarm that moves no verified byte for STALL_S (e.g. a peer that only sends bad pieces,
    // which aria2 keeps asking) ends the torrent attempt: HTTP takes the layer.
    let best = 0;
    let lastGain = Date.now();
    proc.child.stdout!.on('data', (b: Buffer) => {
      out = (out + b.toString('utf8')).slice(-4096);
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const l of lines) {
        if (/\[#\w+ SEED\(/.test(l)) seeding = true;
        const r = parseReadout(l);
        if (r) {
          peers = r.peers;
          if (r.bytes > best) [best, lastGain] = [r.bytes, Date.now()];
          o.progress?.({ phase: 'layers', state: 'progress', object: ref.digest, bytes: Math.min(r.bytes, ref.size), total: ref.size, message: `torrent: ${r.peers} peers`, details: { transport: 'torrent', peers: r.peers, stage: 'download' } });
        }
      }
    });
    const onAbort = () => proc.child.kill('SIGKILL');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      o.progress?.({ phase: 'layers', state: 'info', object: ref.digest, message: `torrent ${t.infoHash}: ${Math.ceil(ref.size / t.pieceLength)} pieces of ${t.pieceLength} bytes, staged in ${dir}`, details: { transport: 'torrent', infoHash: t.infoHash, pieceLength: t.pieceLength } });
      const whole = () => {
        if (s.exited) return true;
        if (!seeding && Date.now() - lastGain > STALL_S * 1000) return true;
        try {
          return seeding && fs.statSync(data).size === ref.size;
        } catch {
          return false;
        }
      };
      await waitFor(whole, { timeoutMs: DOWNLOAD_TIMEOUT_MS, intervalMs: 200, what: 'the torrent download' });
      if (!seeding && !s.exited) {
        throw new FerryError('FERRY_E_TORRENT_STALLED', `the torrent moved no verified byte in ${STALL_S} s (${best} of ${ref.size} bytes, ${peers} peers)`, { details: { layer: ref.digest, bytes: best, peers }, hint: 'nothing to do: the layer comes over HTTP; check that the nodes reach the server and each other on TCP 6881-6999' });
      }
      if (s.exited) {
        throw new FerryError('FERRY_E_TORRENT_FAILED', `aria2c ended before the layer was whole${exitErr ? `: ${(exitErr as Error).message.slice(0, 300)}` : ''}`, { details: { layer: ref.digest }, hint: 'nothing to do: the layer comes over HTTP; check that the nodes reach each other on TCP 6881-6999' });
      }
      o.progress?.({ phase: 'layers', state: 'info', object: ref.digest, message: `torrent: the layer is whole (${peers} peers); verifying and extracting while seeding`, details: { transport: 'torrent', peers, stage: 'downloaded' } });
      const rs = fs.createReadStream(data, { highWaterMark: 1024 * 1024 });
      for await (const chunk of rs as AsyncIterable<Buffer>) await sink.write(chunk);
    } catch (e) {
      await stop(s);
      throw e;
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
    // The bytes passed to the sink; aria2 keeps seeding until finishSeeding.
    seeders.push(s);
  },
};

/**
 * Before the node reboots: stay in each swarm until the server says every peer has the layer,
 * or `seedWaitS` ends; then stop aria2 and remove the staging directories. Never throws.
 */
export async function finishSeeding(o: { client?: ServerClient; seedWaitS: number; progress?: ProgressSink }): Promise<void> {
  const list = seeders.splice(0);
  if (!list.length) return;
  const deadline = Date.now() + o.seedWaitS * 1000;
  const pending = new Set(list.filter((s) => !s.exited));
  o.progress?.({ phase: 'finish', state: 'info', message: `seeding ${pending.size} layers until every node has them (at most ${o.seedWaitS} s)`, details: { transport: 'torrent', seedWaitS: o.seedWaitS } });
  const client = o.client;
  const round = async (): Promise<boolean> => {
    for (const s of [...pending]) {
      if (s.exited) {
        pending.delete(s);
        continue;
      }
      const st = await client!.call<TorrentSwarmState>('GET', `${TORRENT_ROUTES.swarm}?layer=${encodeURIComponent(s.layer)}`, undefined, 'the swarm state', { baseMs: 500, maxMs: 1000, giveUpAfterMs: 2000 }).catch(() => undefined);
      if (st?.done) {
        pending.delete(s);
        o.progress?.({ phase: 'finish', state: 'info', object: s.layer, message: `torrent: every one of ${st.peers} peers has the layer`, details: { transport: 'torrent', peers: st.peers, uploaded: st.uploaded } });
      }
    }
    return pending.size === 0;
  };
  if (client) await waitFor(round, { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 1000, what: 'the swarms to complete' }).catch(() => undefined);
  if (pending.size) o.progress?.({ phase: 'finish', state: 'warning', code: 'FERRY_W_SEED_WAIT', message: `--seed-wait of ${o.seedWaitS} s ended with ${pending.size} swarms not yet complete; stopping to seed`, details: { layers: [...pending].map((s) => s.layer) } });
  await Promise.all(list.map(stop));
}

/** Stop every seeder at once (a failed or aborted install). */
export async function stopSeeding(): Promise<void> {
  await Promise.all(seeders.splice(0).map(stop));
}

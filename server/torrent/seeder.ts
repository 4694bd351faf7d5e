/**
 * The server's own BitTorrent seeder (issue 13, the seeding policy). With the blob's URL as the
 * only source (BEP 19 web seed), aria2 on every node fetches the same pieces from it: its HTTP
 * segments start at the front of the file, so at 4 nodes the server sent 2.6-3.2 copies of the
 * layer and the peers had little to trade. Instead the server seeds each layer as a real peer
 * (aria2c, seed only, reading the blob through a symlink): a leecher asks a peer for the piece
 * rarest in its view, which at the start is a random one, so the server hands out different
 * pieces to different nodes and the nodes carry the copies between them. The tracker lists this
 * peer to every leecher (announce answers), and the torrent handed to nodes then has no web seed.
 * When no seeder can run (no aria2c on the server, the bound on seeders reached), the torrent
 * keeps the web seed as before; either way the node's 20-s stall rule and its HTTP fallback stay.
 *
 * Bounded: at most MAX_SEEDERS layers at once, each stopped after IDLE_MS without a request;
 * every seeder stops with the server.
 *
 * Supervised: a seeder that dies on its own (killed, crashed) is restarted on the same port after
 * RESTART_DELAY_MS, so a swarm in progress gets its seed back without waiting for the next torrent
 * request; at most MAX_RESTARTS in RESTART_WINDOW_MS per layer, after which the layer is not
 * seeded until the window has passed (its torrents keep the web seed). Every death and restart is
 * logged.
 */
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { spawnTool, stopSpawned, type Spawned } from '../../common/run.js';
import type { LayerTorrent } from './torrent.js';

const MAX_SEEDERS = 16;
const IDLE_MS = 10 * 60 * 1000;
/** How long a new seeder may take to listen before the torrent falls back to the web seed. */
const START_MS = 5000;
const RESTART_DELAY_MS = 1000;
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 10 * 60 * 1000;

interface Seeder {
  digest: string;
  port: number;
  dir: string;
  proc: Spawned;
  exited: boolean;
  /** Set when the server stops it (idle, closing, failed start): no restart then. */
  stopping: boolean;
  /** Listened once: only a seeder that came up is restarted (one that cannot start is not retried in a loop). */
  up: boolean;
  used: number;
}

/** What the supervisor did, for logs and tests. */
export interface SeederStatus {
  digest: string;
  port: number;
  pid: number | undefined;
  restarts: number;
}

/** A free TCP port on this host: `prefer` when it is free (a restarted seeder keeps its port), else from BitTorrent's 6881-6999 (firewall rules), else any. */
async function freePort(prefer?: number): Promise<number> {
  const tryPort = (p: number) =>
    new Promise<number | undefined>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(undefined));
      s.listen(p, () => {
        const a = s.address();
        s.close(() => resolve(a && typeof a === 'object' ? a.port : undefined));
      });
    });
  if (prefer) {
    const got = await tryPort(prefer);
    if (got) return got;
  }
  for (let p = 6881; p <= 6999; p++) {
    const got = await tryPort(p);
    if (got) return got;
  }
  const any = await tryPort(0);
  if (!any) throw new Error('no free TCP port');
  return any;
}

/** The .torrent the seeder reads: the info dictionary alone (it announces nowhere; the tracker lists it). */
export function seederTorrent(t: LayerTorrent): Buffer {
  return Buffer.concat([Buffer.from('d4:info'), t.info, Buffer.from('e')]);
}

export class ServerSeeders {
  private readonly seeders = new Map<string, Promise<Seeder | undefined>>();
  /** The seeders that listen now (announce answers read this without waiting for a start). */
  private readonly ready = new Map<string, Seeder>();
  /** Per layer: when its seeder was restarted, within RESTART_WINDOW_MS. */
  private readonly restarts = new Map<string, number[]>();
  private closed = false;
  /** Starts one at a time: a port is chosen free, then aria2 binds it. */
  private starting: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  /**
   * @param uploadRate each seeder's upload cap in bytes per second (aria2's --max-upload-limit;
   *   `ferry serve --torrent-seed-rate`, parsed by common/units.ts parseByteRate); none when absent.
   * @param enabled false: never seed (the torrent keeps its web seed).
   */
  constructor(private readonly o: { uploadRate?: number; enabled?: boolean } = {}) {
    if (o.uploadRate !== undefined && (!Number.isSafeInteger(o.uploadRate) || o.uploadRate < 1024)) {
      throw new FerryError('FERRY_E_BAD_VALUE', `the seeder's upload rate ${String(o.uploadRate).slice(0, 20)} is not a whole number of bytes per second of at least 1 KiB`, { hint: 'give --torrent-seed-rate such as 6MiB or 800K' });
    }
    this.timer = setInterval(() => void this.reap(), 30_000);
    this.timer.unref();
  }

  /** The port of the layer's seeder, started if need be; undefined when none runs (use the web seed). */
  async port(t: LayerTorrent, blobFile: string): Promise<number | undefined> {
    if (this.closed || this.o.enabled === false) return undefined;
    let p = this.seeders.get(t.digest);
    if (p) {
      const s = await p;
      if (s && !s.exited) {
        s.used = Date.now();
        return s.port;
      }
      this.seeders.delete(t.digest);
    }
    if (this.seeders.size >= MAX_SEEDERS) return undefined;
    if (this.restartsIn(t.digest) > MAX_RESTARTS) return undefined;
    const s = await this.launch(t, blobFile);
    return s?.port;
  }

  /** Start (one at a time) and remember a layer's seeder; undefined when it cannot run. */
  private launch(t: LayerTorrent, blobFile: string, port?: number, delayMs = 0): Promise<Seeder | undefined> {
    const p = this.starting
      .then(() => (delayMs ? new Promise((r) => setTimeout(r, delayMs)) : undefined))
      .then(() => (this.closed ? undefined : this.start(t, blobFile, port)));
    this.starting = p.catch(() => undefined);
    this.seeders.set(t.digest, p);
    void p.then((s) => {
      if (this.seeders.get(t.digest) !== p) return;
      if (s && !s.exited) this.ready.set(t.digest, s);
      else this.seeders.delete(t.digest);
    });
    return p;
  }

  /** Restarts of this layer's seeder within the window. */
  private restartsIn(digest: string): number {
    const now = Date.now();
    const list = (this.restarts.get(digest) ?? []).filter((at) => now - at < RESTART_WINDOW_MS);
    this.restarts.set(digest, list);
    return list.length;
  }

  /** A seeder ended without the server stopping it: restart it on its port, at a bounded rate. */
  private died(s: Seeder, t: LayerTorrent, blobFile: string, why: string): void {
    fs.rmSync(s.dir, { recursive: true, force: true });
    if (this.closed || s.stopping || !s.up) return;
    if (this.ready.get(s.digest) === s) this.ready.delete(s.digest);
    const n = this.restartsIn(s.digest);
    if (n >= MAX_RESTARTS) {
      this.restarts.get(s.digest)!.push(Date.now());
      this.seeders.delete(s.digest);
      log.error('the layer seeder keeps dying; not restarting it for now (its torrents keep the web seed)', { layer: s.digest, restarts: n, windowS: RESTART_WINDOW_MS / 1000, why });
      return;
    }
    this.restarts.get(s.digest)!.push(Date.now());
    log.warn('the layer seeder died; restarting it', { layer: s.digest, port: s.port, restart: n + 1, why });
    void this.launch(t, blobFile, s.port, RESTART_DELAY_MS).then((again) => {
      if (again) log.info('the layer seeder is back', { layer: s.digest, port: again.port, restart: n + 1 });
    });
  }

  /** The port of a running seeder of this layer (for announce answers), without starting or waiting for one. */
  async running(digest: string): Promise<number | undefined> {
    const s = this.ready.get(digest);
    if (!s || s.exited) return undefined;
    s.used = Date.now();
    return s.port;
  }

  /** The seeders that listen now, with their process ids and restart counts. */
  status(): SeederStatus[] {
    return [...this.ready.values()].filter((s) => !s.exited).map((s) => ({ digest: s.digest, port: s.port, pid: s.proc.child.pid, restarts: this.restartsIn(s.digest) }));
  }

  private async start(t: LayerTorrent, blobFile: string, preferPort?: number): Promise<Seeder | undefined> {
    const hex = t.digest.replace(/^sha256:/, '');
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'ferry-seed-'));
    try {
      // aria2 finds the file by the torrent's name (the digest's hex) in --dir: a symlink to the
      // blob, so the store is only read; the control file, if any, stays in this directory.
      fs.symlinkSync(blobFile, join(dir, hex));
      fs.writeFileSync(join(dir, 'layer.torrent'), seederTorrent(t), { mode: 0o600 });
      const port = await freePort(preferPort);
      const argv = [
        'aria2c', `--dir=${dir}`, '--enable-dht=false', '--enable-dht6=false', '--enable-peer-exchange=false', '--bt-enable-lpd=false',
        '--bt-seed-unverified=true', '--check-integrity=false', '--seed-ratio=0.0', '--seed-time=100000', '--file-allocation=none',
        '--allow-overwrite=false', '--auto-file-renaming=false', '--follow-torrent=false', '--console-log-level=warn', '--summary-interval=0',
        `--listen-port=${port}`, '--bt-max-peers=128', `--max-upload-limit=${this.o.uploadRate ?? 0}`, '--max-overall-download-limit=1K',
        '--stop-with-process=' + process.pid, '--no-conf=true', join(dir, 'layer.torrent'),
      ];
      const proc = spawnTool(argv, { stdout: 'ignore', quiet: true });
      const s: Seeder = { digest: t.digest, port, dir, proc, exited: false, stopping: false, up: false, used: Date.now() };
      proc.done.then(
        () => {
          s.exited = true;
          this.died(s, t, blobFile, 'exited');
        },
        (e) => {
          s.exited = true;
          this.died(s, t, blobFile, (e as Error).message.slice(0, 300));
        },
      );
      // Ready when it listens (aria2 binds its port before it seeds).
      const ready = await listening(port, START_MS, () => s.exited);
      if (!ready) {
        await stopSeeder(s);
        log.warn('the layer seeder did not start; the torrent keeps its web seed', { layer: t.digest });
        return undefined;
      }
      s.up = true;
      log.info('seeding a layer', { layer: t.digest, port });
      return s;
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      log.warn('cannot seed the layer; the torrent keeps its web seed', { layer: t.digest, error: (e as Error).message.slice(0, 300) });
      return undefined;
    }
  }

  private async reap(): Promise<void> {
    const now = Date.now();
    for (const [k, p] of this.seeders) {
      const s = await p;
      if (!s || s.exited || now - s.used > IDLE_MS) {
        this.seeders.delete(k);
        if (s && this.ready.get(k) === s) this.ready.delete(k);
        if (s) await stopSeeder(s);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const all = [...this.seeders.values()];
    this.seeders.clear();
    this.ready.clear();
    await Promise.all(all.map(async (p) => {
      const s = await p;
      if (s) await stopSeeder(s);
    }));
  }
}

async function listening(port: number, ms: number, gone: () => boolean): Promise<boolean> {
  const { connect } = await import('node:net');
  const end = Date.now() + ms;
  while (Date.now() < end && !gone()) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect({ port, host: '127.0.0.1' });
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function stopSeeder(s: Seeder): Promise<void> {
  s.stopping = true;
  if (!s.exited) await stopSpawned(s.proc);
  fs.rmSync(s.dir, { recursive: true, force: true });
}

/**
 * The server's seeder under supervision (issue 13): a Ferry server in the test process seeding a
 * layer as a BitTorrent peer (server/torrent/seeder.ts) and 3 nodes in network namespaces on
 * shaped links running the real `ferry install --root` with aria2c. The seeder process is killed
 * (SIGKILL) while the nodes are in the middle of the swarm: the server restarts it on the same
 * port, a new process listens again, and every node completes with the layer's exact bytes.
 * The seeder runs with `--torrent-seed-rate` (startServer's torrentSeedRate), and aria2's argv
 * carries that cap.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { createNetwork, type Endpoint, type Network, type NsProcess } from '../harness/netns.js';
import { call, LAYOUT, tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');
const LAYER_BYTES = 16 * 1024 * 1024;
const SEED_RATE = 1536 * 1024;

/** The server's seeders: aria2c children of this process whose --dir is a ferry-seed- directory. */
function seederProcs(): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv[0]?.endsWith('aria2c') && argv.some((a) => a.includes('ferry-seed-'))) out.push({ pid: Number(d), argv });
    } catch {
      /* the process ended meanwhile */
    }
  }
  return out;
}

async function until<T>(what: string, ms: number, f: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

describe('the server seeder restarted when it dies mid-swarm', () => {
  let net: Network;
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let srv: RunningServer | undefined;
  let payload: Buffer;
  const ferry = (args: string[]) => run([FERRY, ...args, '--data', data], { timeoutMs: 60_000, quiet: true });
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);
  const rootOf = (n: Endpoint, token: string) => join(n.dir, `root-${token.slice(0, 6)}`);

  function install(n: Endpoint, token: string): NsProcess {
    const root = rootOf(n, token);
    fs.mkdirSync(root, { recursive: true });
    return n.spawn(['timeout', '150', FERRY, 'install', '--server', srv!.url, '--token', token, '--root', root, '--no-initramfs', '--seed-wait', '5'], { label: 'install' });
  }

  beforeAll(async () => {
    t = tempDir('ferry-seeder-');
    data = join(t.dir, 'data');
    const tree = join(t.dir, 'tree');
    fs.mkdirSync(join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(join(tree, 'etc', 'hostname'), 'seed\n');
    payload = randomBytes(LAYER_BYTES);
    fs.writeFileSync(join(tree, 'payload.bin'), payload);
    fs.writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    await ferry(['image', 'import', 'seed', '--dir', tree]);
    net = await createNetwork({ nodes: 3, rate: '40mbit', server: 'host' });
    for (const n of net.nodes) await ferry(['node', 'add', n.name, '--mac', n.mac, '--image', 'seed', '--layout', join(t.dir, 'layout.xml')]);
    srv = await startServer({ dataDir: data, listen: `${net.server.ip}:0`, torrentSeedRate: SEED_RATE });
  });
  afterAll(async () => {
    await srv?.close();
    await net?.teardown();
    t?.cleanup();
  });

  it('kills the seeder mid-swarm: it is back on its port and every node completes with the right bytes', async () => {
    const armed = (await json(['deploy', ...net.nodes.map((n) => n.name), '--transport', 'torrent'])).deployments as { id: number; token: string }[];
    const procs = armed.map((a, i) => install(net.nodes[i], a.token));
    // The first torrent request starts the seeder; the cap is in its argv.
    const first = await until('the server to start its seeder', 30_000, () => seederProcs()[0]);
    expect(first.argv).toContain(`--max-upload-limit=${SEED_RATE}`);
    const port = first.argv.find((a) => a.startsWith('--listen-port='));
    expect(port).toBeDefined();
    // Mid-swarm: every node has started its torrent, none has finished.
    await Promise.all(procs.map((p) => p.waitForOutput(/torrent [0-9a-f]{40}/, 30_000, 'a node to start its torrent')));
    await new Promise((r) => setTimeout(r, 1500));
    expect(procs.map((p) => p.hasExited)).toEqual([false, false, false]);
    process.kill(first.pid, 'SIGKILL');
    // Back: a new process, same port, same cap.
    const again = await until('the seeder to be restarted', 15_000, () => seederProcs().find((p) => p.pid !== first.pid));
    expect(again.argv).toContain(port);
    expect(again.argv).toContain(`--max-upload-limit=${SEED_RATE}`);
    const exits = await Promise.all(procs.map((p) => p.exited));
    exits.forEach((x, i) => expect(x.code, procs[i].output.slice(-3000)).toBe(0));
    const by: string[] = [];
    for (const [i, a] of armed.entries()) {
      expect(fs.readFileSync(join(rootOf(net.nodes[i], a.token), 'payload.bin')).equals(payload)).toBe(true);
      const ev = (await call(srv!.url, 'GET', `/api/v1/admin/deployments/${a.id}`, { token: srv!.adminToken })).json.events as any[];
      by.push(...ev.filter((e) => e.phase === 'layers' && e.state === 'end' && e.object).map((e) => e.details?.transport));
    }
    console.log(`seeder killed mid-swarm: layers by ${by.join(', ')}`);
    // The swarm, not the HTTP fallback, carried the layer to at least one node after the kill.
    expect(by.filter((x) => x === 'torrent').length).toBeGreaterThan(0);
    // Still the one seeder of this layer.
    expect(seederProcs().map((p) => p.pid)).toEqual([again.pid]);
  }, 180_000);
});

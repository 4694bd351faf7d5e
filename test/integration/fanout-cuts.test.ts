/**
 * The fan-out transports through the proxy that cuts connections at random points (issue 12),
 * many times in a row: a Ferry server in the test process (the netns harness's host mode), its
 * public URL the cutting proxy (test/harness/cutting-proxy.ts) on the same address, and 2 nodes in
 * network namespaces running the real `ferry install` against the proxy. Every HTTP connection a
 * node opens (config, events, torrent file, tracker announces, web seed, multicast join and
 * session polls, the HTTP fallback) is cut after a seeded random number of bytes, by a FIN or a
 * reset. Multicast rounds also lose datagrams on one node's link (netem) or pull its cable for a
 * moment. Every node must end with the right bytes, by its transport or by the HTTP fallback with
 * the event that says so; no install hangs (each is under `timeout`) or crashes.
 *
 * FERRY_CUT_SEED=N replays a run (the seed is printed, and named in every failure).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { droppingProxy, seededRandom, type CuttingProxy } from '../harness/cutting-proxy.js';
import { createNetwork, type Endpoint, type Network, type NsProcess } from '../harness/netns.js';
import { call, LAYOUT, tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');
const LAYER_BYTES = 2 * 1024 * 1024;
const SEED = Number(process.env.FERRY_CUT_SEED ?? (Date.now() % 100_000));
const ROUNDS = 3;
/** Cuts land anywhere in the first 256 KiB a connection carries to the node. */
const CUT_WITHIN = 256 * 1024;

describe('fan-out transports through a proxy that cuts connections at random points', () => {
  let net: Network;
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let srv: RunningServer | undefined;
  let proxy: CuttingProxy;
  let payload: Buffer;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000, quiet: true });
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);
  const rootOf = (n: Endpoint, token: string) => join(n.dir, `root-${token.slice(0, 6)}`);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  function install(n: Endpoint, token: string, extra: string[] = []): NsProcess {
    const root = rootOf(n, token);
    fs.mkdirSync(root, { recursive: true });
    // Bounded: a hung install fails the test (exit 124) instead of holding it.
    return n.spawn(['timeout', '100', FERRY, 'install', '--server', proxy.url, '--token', token, '--root', root, '--no-initramfs', ...extra], { label: 'install' });
  }
  const layerEnds = (ev: any[]) => ev.filter((e) => e.phase === 'layers' && e.state === 'end' && e.object).map((e) => e.details?.transport);
  const fallbacks = (ev: any[]) => ev.filter((e) => e.state === 'warning' && e.details?.fallback === 'http');

  /** Right bytes, a success, and either the transport or the HTTP fallback with its event. */
  async function checkNode(p: NsProcess, n: Endpoint, a: { id: number; token: string }, transport: string, what: string): Promise<string> {
    const x = await p.exited;
    expect(x.code, `${what} (seed ${SEED}): ${p.output.slice(-3000)}`).toBe(0);
    expect(sha(fs.readFileSync(join(rootOf(n, a.token), 'payload.bin'))), `${what} (seed ${SEED})`).toBe(sha(payload));
    const rec = (await call(srv!.url, 'GET', `/api/v1/admin/deployments/${a.id}`, { token: srv!.adminToken })).json;
    expect(rec.deployment.status, what).toBe('success');
    const ev = rec.events as any[];
    const ends = layerEnds(ev);
    expect(ends, `${what} (seed ${SEED})`).toHaveLength(1);
    if (ends[0] === 'http') expect(fallbacks(ev), `${what}: an HTTP layer needs the fallback event (seed ${SEED})`).toEqual([expect.objectContaining({ details: expect.objectContaining({ transport, fallback: 'http' }) })]);
    else expect(ends[0]).toBe(transport);
    if (ends[0] === 'http') console.log(`${what}: HTTP fallback: ${fallbacks(ev)[0].code} ${String(fallbacks(ev)[0].message).slice(0, 200)}`);
    return ends[0];
  }

  beforeAll(async () => {
    console.log(`fanout cuts: seed ${SEED} (FERRY_CUT_SEED=${SEED} replays it)`);
    t = tempDir('ferry-cuts-');
    data = join(t.dir, 'data');
    const tree = join(t.dir, 'tree');
    fs.mkdirSync(join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(join(tree, 'etc', 'hostname'), 'cut\n');
    payload = randomBytes(LAYER_BYTES);
    fs.writeFileSync(join(tree, 'payload.bin'), payload);
    fs.writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    await ferry(['image', 'import', 'cut', '--dir', tree]);
    net = await createNetwork({ nodes: 2, rate: '80mbit', server: 'host' });
    for (const n of net.nodes) await ferry(['node', 'add', n.name, '--mac', n.mac, '--image', 'cut', '--layout', join(t.dir, 'layout.xml')]);
    // The proxy first (its target is read per connection), so the server's public URL, which
    // the torrent's tracker and web seed and every blob URL are made of, is the proxy's.
    proxy = await droppingProxy(() => srv!.url, CUT_WITHIN, { random: seededRandom(SEED), fin: 'random', listen: net.server.ip });
    // torrentSeed false: the layer's bytes come from the web seed, through the proxy. The server's
    // own seeder (the default policy, tested in torrent.test.ts) speaks BitTorrent to the nodes
    // directly, past the proxy: with it only the small tracker calls would meet the cuts.
    srv = await startServer({ dataDir: data, listen: `${net.server.ip}:0`, publicUrl: proxy.url, multicast: { interface: net.server.ifname }, torrentSeed: false });
  });
  afterAll(async () => {
    await srv?.close();
    await proxy?.close();
    await net?.teardown();
    t?.cleanup();
  });

  it(`torrent: tracker, web seed and fallback traffic cut at random, ${ROUNDS} rounds in a row`, async () => {
    const by: string[] = [];
    const drops0 = proxy.drops;
    for (let round = 0; round < ROUNDS; round++) {
      const armed = (await json(['deploy', ...net.nodes.map((n) => n.name), '--transport', 'torrent'])).deployments as { id: number; token: string }[];
      const procs = armed.map((a, i) => install(net.nodes[i], a.token, ['--seed-wait', '3']));
      for (const [i, a] of armed.entries()) by.push(await checkNode(procs[i], net.nodes[i], a, 'torrent', `torrent round ${round} ${net.nodes[i].name}`));
    }
    console.log(`torrent through cuts: ${by.join(', ')}; ${proxy.drops - drops0} connections cut`);
    expect(proxy.drops - drops0).toBeGreaterThan(0);
    // The cuts must not make the transport useless: aria2 used to drop the web seed after 5
    // failed tries and every swarm stalled into the fallback (6 of 6 by HTTP).
    expect(by.filter((x) => x === 'torrent').length, `seed ${SEED}: ${by.join(', ')}`).toBeGreaterThanOrEqual(ROUNDS);
  }, 400_000);

  it(`multicast: control and fallback cut at random, datagrams lost or the cable pulled, ${ROUNDS} rounds in a row`, async () => {
    const by: string[] = [];
    const drops0 = proxy.drops;
    const lossy = net.nodes[1];
    const connections0 = proxy.connections;
    for (let round = 0; round < ROUNDS; round++) {
      const armed = (await json(['deploy', ...net.nodes.map((n) => n.name), '--transport', 'multicast', '--max-wait', '10', '--max-bitrate', '40m'])).deployments as { id: number; token: string }[];
      // Datagram loss on one node's link: its cable pulled once it has joined. Even rounds: four
      // short pulls (0.3 s, bursts of lost datagrams and retransmissions); odd rounds: one of
      // 1.5 s. (tc netem would be finer, but this host's kernel has no sch_netem and loads no modules.)
      const pulls = round % 2 === 0 ? [300, 300, 300, 300] : [1500];
      const procs = armed.map((a, i) => install(net.nodes[i], a.token));
      const joined = await procs[1].waitForOutput(/joined multicast session/, 40_000, 'the node to join its session').then(() => true, () => false);
      if (joined) {
        for (const ms of pulls) {
          await lossy.cut();
          await new Promise((r) => setTimeout(r, ms));
          await lossy.restore();
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      for (const [i, a] of armed.entries()) by.push(await checkNode(procs[i], net.nodes[i], a, 'multicast', `multicast round ${round} ${net.nodes[i].name}${joined ? '' : ' (had not joined: no pull)'}`));
    }
    console.log(`multicast through cuts: ${by.join(', ')}; ${proxy.drops - drops0} connections cut`);
    // Every control call went through the proxy. Its answers are small (configuration, joins,
    // polls: under the cut distance most of the time), so connections are cut for certain only
    // where a node fell back to HTTP and fetched the layer through it.
    expect(proxy.connections - connections0).toBeGreaterThan(0);
    if (by.includes('http')) expect(proxy.drops - drops0).toBeGreaterThan(0);
    // The node whose cable stays in gets the layers by multicast at least once in the rounds.
    expect(by.filter((x) => x === 'multicast').length, `seed ${SEED}: ${by.join(', ')}`).toBeGreaterThan(0);
  }, 400_000);
});

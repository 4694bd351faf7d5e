/**
 * BitTorrent installs on a rack without VMs (issue 13): a Ferry server in the test process (the
 * harness's host mode: tracker and web seed) and 4 nodes in network namespaces on one bridge,
 * every link shaped, each node running the real `ferry install --root` with aria2c.
 *  - 4 nodes armed by one `ferry deploy --transport torrent` all complete by torrent, the layer
 *    verified by its sha256; the server sends less than 4 copies (the nodes trade pieces), the
 *    staging directories are gone, progress events carry bytes, total and peers;
 *  - a hostile peer in the swarm (a node holding a deploy token of the image, seeding a copy
 *    with bytes flipped) and a node killed in the middle: the others still complete by torrent
 *    with the right bytes (aria2 checks each piece's SHA-1 and takes it elsewhere; the sink's
 *    sha256 is the last word);
 *  - the server seeds as a peer (the torrent has no web seed), and a node whose batch has a
 *    member that never announces waits for it until the deployment's --seed-wait ends;
 *  - a deploy token of another image gets no torrent, and its announce is refused.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bdecode } from '../../common/bencode.js';
import { run } from '../../common/run.js';
import { TORRENT_ROUTES } from '../../common/protocol.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { createNetwork, type Endpoint, type Network, type NsProcess } from '../harness/netns.js';
import { call, LAYOUT, tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');
const LAYER_BYTES = 8 * 1024 * 1024;

describe('torrent installs: 4 nodes in network namespaces', () => {
  let net: Network;
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let srv: RunningServer | undefined;
  let layer: { digest: string; size: number };
  let payload: Buffer;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000, quiet: true });
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);
  const rootOf = (n: Endpoint, token: string) => join(n.dir, `root-${token.slice(0, 6)}`);

  function install(n: Endpoint, token: string, seedWait = '20'): NsProcess {
    const root = rootOf(n, token);
    fs.mkdirSync(root, { recursive: true });
    return n.spawn(['timeout', '120', FERRY, 'install', '--server', srv!.url, '--token', token, '--root', root, '--no-initramfs', '--seed-wait', seedWait], { label: 'install' });
  }
  async function events(id: number): Promise<any[]> {
    return (await call(srv!.url, 'GET', `/api/v1/admin/deployments/${id}`, { token: srv!.adminToken })).json.events;
  }
  const layerEnds = (ev: any[]) => ev.filter((e) => e.phase === 'layers' && e.state === 'end' && e.object).map((e) => e.details?.transport);
  const fallbacks = (ev: any[]) => ev.filter((e) => e.state === 'warning' && e.details?.fallback === 'http');
  async function deploy(nodes: string[]): Promise<{ id: number; node: string; token: string }[]> {
    return (await json(['deploy', ...nodes, '--transport', 'torrent'])).deployments;
  }

  beforeAll(async () => {
    t = tempDir('ferry-torrent-');
    data = join(t.dir, 'data');
    const tree = join(t.dir, 'tree');
    fs.mkdirSync(join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(join(tree, 'etc', 'hostname'), 'bt\n');
    payload = randomBytes(LAYER_BYTES);
    fs.writeFileSync(join(tree, 'payload.bin'), payload);
    fs.writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    await ferry(['image', 'import', 'bt', '--dir', tree]);
    layer = (await json(['image', 'show', 'bt'])).layers[0];
    // A second image, for the token of another image.
    fs.writeFileSync(join(tree, 'etc', 'hostname'), 'other\n');
    await ferry(['image', 'import', 'other', '--dir', tree]);
    net = await createNetwork({ nodes: 4, rate: '80mbit', server: 'host' });
    for (const n of net.nodes) await ferry(['node', 'add', n.name, '--mac', n.mac, '--image', 'bt', '--layout', join(t.dir, 'layout.xml')]);
    srv = await startServer({ dataDir: data, listen: `${net.server.ip}:0` });
  });
  afterAll(async () => {
    await srv?.close();
    await net?.teardown();
    t?.cleanup();
  });

  it('installs 4 nodes by torrent; the server sends fewer than 2.5 copies', async () => {
    const armed = await deploy(net.nodes.map((n) => n.name));
    const before = await net.server.counters();
    const procs = armed.map((a, i) => install(net.nodes[i], a.token));
    const exits = await Promise.all(procs.map((p) => p.exited));
    const after = await net.server.counters();
    exits.forEach((x, i) => expect(x.code, procs[i].output.slice(-3000)).toBe(0));
    for (const [i, a] of armed.entries()) {
      const root = rootOf(net.nodes[i], a.token);
      expect(fs.readFileSync(join(root, 'payload.bin')).equals(payload)).toBe(true);
      expect(fs.readdirSync(root).filter((f) => f.startsWith('.ferry-torrent'))).toEqual([]);
      const ev = await events(a.id);
      expect(layerEnds(ev)).toEqual(['torrent']);
      expect(fallbacks(ev)).toEqual([]);
      expect(ev.some((e) => e.state === 'info' && e.details?.stage === 'downloaded' && typeof e.details.peers === 'number')).toBe(true);
    }
    const egress = after.txBytes - before.txBytes;
    expect(egress).toBeGreaterThan(layer.size);
    // The server seeds as a peer and hands out distinct pieces (web seed only: 2.6-3.2 copies).
    expect(egress).toBeLessThan(2.5 * layer.size);
    if (process.env.FERRY_TORRENT_DEBUG) console.log(procs[0].output.slice(-6000));
    console.log(`torrent, 4 nodes: server egress ${(egress / layer.size).toFixed(2)} x the layer`);
  }, 90_000);

  it('a hostile peer seeding flipped bytes and a node killed midway: the others complete by torrent, correct', async () => {
    const [hostileNode, victim, a1, a2] = net.nodes;
    const armed = await deploy([hostileNode.name, victim.name, a1.name, a2.name]);
    // The hostile peer: a node of the image (its deploy token) seeding a damaged copy.
    const tor = await call(srv!.url, 'GET', `${TORRENT_ROUTES.torrent}?layer=${layer.digest}`, { token: armed[0].token });
    expect(tor.status).toBe(200);
    const dir = join(hostileNode.dir, 'hostile');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(join(dir, 'l.torrent'), Buffer.from(tor.json.torrent, 'base64'));
    fs.writeFileSync(join(dir, 'a.conf'), `header=Authorization: Bearer ${armed[0].token}\n`, { mode: 0o600 });
    const bad = fs.readFileSync(join(data, 'blobs', 'sha256', layer.digest.slice(7)));
    for (let off = 0; off < bad.length; off += 256 * 1024) bad[off + 7] ^= 0xff;
    fs.writeFileSync(join(dir, layer.digest.slice(7)), bad);
    const hostile = hostileNode.spawn(['aria2c', '--seed-time=2', `--conf-path=${join(dir, 'a.conf')}`, `--dir=${dir}`, '--enable-dht=false', '--enable-peer-exchange=false', '--bt-enable-lpd=false', '--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', '--console-log-level=warn', join(dir, 'l.torrent')], { label: 'hostile' });
    try {
      await hostile.waitForOutput(/SEED|seeding/i, 20_000, 'the hostile seeder').catch(() => undefined);
      const v = install(victim, armed[1].token);
      const good = [install(a1, armed[2].token, '5'), install(a2, armed[3].token, '5')];
      // Kill the victim once it has part of the layer.
      await v.waitForOutput(/torrent [0-9a-f]{40}/, 30_000, 'the victim to start its torrent');
      // A dead node: everything in its namespace (ferry and its aria2c) killed at once.
      await victim.killAll();
      await v.exited;
      for (const p of good) expect((await p.exited).code, p.output.slice(-3000)).toBe(0);
      if (process.env.FERRY_TORRENT_DEBUG) console.log(good[0].output.slice(-5000));
      for (const [i, n] of [a1, a2].entries()) {
        expect(fs.readFileSync(join(rootOf(n, armed[i + 2].token), 'payload.bin')).equals(payload)).toBe(true);
        // By torrent (aria2 refused the bad pieces by their SHA-1), or, when the swarm stalled
        // on them, over HTTP with the event that says so: correct bytes either way.
        const ev = await events(armed[i + 2].id);
        const ends = layerEnds(ev);
        if (ends[0] === 'http') expect(fallbacks(ev)).toEqual([expect.objectContaining({ details: expect.objectContaining({ transport: 'torrent', fallback: 'http' }) })]);
        else expect(ends).toEqual(['torrent']);
        console.log(`hostile swarm: ${n.name} by ${ends[0]}`);
      }
    } finally {
      await hostile.kill('SIGKILL');
    }
  }, 90_000);

  it('the server seeds as a peer (no web seed in the torrent); the swarm waits for a member that has not announced, bounded by the deploy\'s --seed-wait', async () => {
    const [a, b] = (await json(['deploy', net.nodes[0].name, net.nodes[1].name, '--transport', 'torrent', '--seed-wait', '6'])).deployments;
    const tor = await call(srv!.url, 'GET', `${TORRENT_ROUTES.torrent}?layer=${layer.digest}`, { token: a.token });
    const meta = bdecode(Buffer.from(tor.json.torrent, 'base64')) as Record<string, unknown>;
    expect(meta['url-list']).toBeUndefined();
    // Only a installs; b (same batch, armed) never announces. No --seed-wait on the installer:
    // the deployment's 6 s applies.
    const root = rootOf(net.nodes[0], a.token);
    fs.mkdirSync(root, { recursive: true });
    const p = net.nodes[0].spawn(['timeout', '120', FERRY, 'install', '--server', srv!.url, '--token', a.token, '--root', root, '--no-initramfs'], { label: 'install' });
    expect((await p.exited).code, p.output.slice(-3000)).toBe(0);
    expect(fs.readFileSync(join(root, 'payload.bin')).equals(payload)).toBe(true);
    const ev = await events(a.id);
    expect(layerEnds(ev)).toEqual(['torrent']);
    const seedWait = ev.filter((e) => e.phase === 'finish' && (e.details?.seedWaitS !== undefined || e.code === 'FERRY_W_SEED_WAIT'));
    expect(seedWait.map((e) => e.details?.seedWaitS ?? e.code)).toEqual([6, 'FERRY_W_SEED_WAIT']);
    // Now a's deployment is over; b (still armed) is the one the swarm waits for.
    const st = await call(srv!.url, 'GET', `${TORRENT_ROUTES.swarm}?layer=${layer.digest}`, { token: b.token });
    expect(st.json).toMatchObject({ done: false, expected: 1, waiting: 1 });
  }, 90_000);

  it('a deploy token of another image gets no torrent of this layer and no peers', async () => {
    await ferry(['node', 'set', net.nodes[3].name, '--image', 'other']);
    try {
      const [o] = await deploy([net.nodes[3].name]);
      const other = (await json(['image', 'show', 'other'])).layers[0];
      if (other.digest === layer.digest) throw new Error('the test images share their layer');
      const r = await call(srv!.url, 'GET', `${TORRENT_ROUTES.torrent}?layer=${layer.digest}`, { token: o.token });
      expect(r.status).toBe(403);
      const ih = '%AA'.repeat(20);
      const res = await fetch(`${srv!.url}${TORRENT_ROUTES.announce}?info_hash=${ih}&peer_id=${'%BB'.repeat(20)}&port=6881&left=0&compact=1`, { headers: { authorization: `Bearer ${o.token}` } });
      const body = bdecode(Buffer.from(await res.arrayBuffer())) as Record<string, Buffer>;
      expect(body['failure reason'].toString()).toMatch(/is not a layer of deployment/);
      const anon = await fetch(`${srv!.url}${TORRENT_ROUTES.announce}?info_hash=${ih}&peer_id=${'%BB'.repeat(20)}&port=6881&left=0`);
      expect(anon.status).toBe(401);
    } finally {
      await ferry(['node', 'set', net.nodes[3].name, '--image', 'bt']);
    }
  });
});

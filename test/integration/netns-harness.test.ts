/**
 * The many-node harness (test/harness/netns.ts) does what the fan-out, SSH and power tests rely on:
 * every node reaches the server, links carry no more than their shaped rate, the server's egress
 * counter matches what it sent, multicast from the server reaches every node, a cable can be pulled
 * and plugged, a node's processes can be killed, and nothing is left behind.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { createNetwork, harnessNamespaces, probe, sweepStale, type Network } from '../harness/netns.js';

const nsExists = (ns: string) => fs.existsSync(path.join('/run/netns', ns));
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const mbit = (bytes: number, ms: number) => (bytes * 8) / (ms / 1000) / 1e6;

describe('netns harness: 4 nodes, one on a slow link', () => {
  let net: Network;

  beforeAll(async () => {
    // The server's link is fast so that each node's own link sets its pace.
    net = await createNetwork({ nodes: 4, rate: '80mbit', serverRate: '1gbit', rates: { 3: '20mbit' } });
  });
  afterAll(async () => {
    await net?.teardown();
  });

  it('gives every endpoint its own namespace, address with broadcast, multicast route and shaped link', async () => {
    expect(new Set(net.endpoints.map((e) => e.ns)).size).toBe(5);
    expect(new Set(net.endpoints.map((e) => e.ip)).size).toBe(5);
    expect(new Set(net.endpoints.map((e) => e.mac)).size).toBe(5);
    for (const ep of net.endpoints) {
      expect(nsExists(ep.ns!)).toBe(true);
      const addr = JSON.parse((await ep.run(['ip', '-j', 'addr', 'show', 'dev', ep.ifname])).stdout) as { address: string; addr_info: { family: string; local: string; broadcast?: string }[] }[];
      expect(addr[0].address).toBe(ep.mac);
      // IPv6 is off: the IPv4 address is the only one.
      expect(addr[0].addr_info).toEqual([expect.objectContaining({ family: 'inet', local: ep.ip, broadcast: ep.ip.replace(/\.\d+$/, '.255') })]);
      expect((await ep.run(['ip', 'route', 'show', '224.0.0.0/4'])).stdout).toContain(`dev ${ep.ifname}`);
      const want = ep.rate === '20mbit' ? '20Mbit' : ep.rate === '1gbit' ? '1Gbit' : '80Mbit';
      expect((await ep.run(['tc', 'qdisc', 'show', 'dev', ep.ifname])).stdout).toContain(`rate ${want}`);
      expect((await run(['tc', '-n', net.switchNs, 'qdisc', 'show', 'dev', ep.port])).stdout).toContain(`rate ${want}`);
    }
  });

  it('every node reaches the server and each other', async () => {
    for (const n of net.nodes) await n.run(['ping', '-c', '1', '-W', '2', net.server.ip]);
    await net.nodes[0].run(['ping', '-c', '1', '-W', '2', net.nodes[3].ip]);
  });

  it('shapes each link: the 20mbit node takes clearly longer; the server egress counter matches the bytes sent', async () => {
    const BYTES = 6 * 1024 * 1024;
    const sinks = net.nodes.map((n) => n.spawn([process.execPath, probe('tcp-sink.mjs'), '5001'], { label: 'tcp-sink' }));
    await Promise.all(sinks.map((s) => s.waitForOutput('listening', 15_000)));
    const before = await net.server.counters();
    const sender = net.server.spawn([process.execPath, probe('tcp-send.mjs'), String(BYTES), ...net.nodes.map((n) => `${n.ip}:5001`)], { label: 'tcp-send' });
    await sender.done;
    const after = await net.server.counters();
    const sent = JSON.parse(sender.stdout) as { sha256: string };
    await Promise.all(sinks.map((s) => s.done));
    const got = sinks.map((s) => JSON.parse(s.stdout.trim().split('\n').pop()!) as { bytes: number; ms: number; sha256: string });
    for (const g of got) expect(g).toMatchObject({ bytes: BYTES, sha256: sent.sha256 });
    const rates = got.map((g) => mbit(g.bytes, g.ms));
    // tbf never lets a link run faster than its rate (plus its 64 KB burst); loose bounds, no tight timing.
    for (const r of rates.slice(0, 3)) expect(r).toBeLessThan(80 * 1.15);
    expect(rates[3]).toBeLessThan(20 * 1.15);
    expect(rates[3]).toBeGreaterThan(20 * 0.5);
    expect(got[3].ms).toBeGreaterThan(2 * Math.max(got[0].ms, got[1].ms, got[2].ms));
    // Egress: payload plus TCP/IP headers (~3-5 %), nothing like a second copy.
    const egress = after.txBytes - before.txBytes;
    expect(egress).toBeGreaterThan(4 * BYTES);
    expect(egress).toBeLessThan(4 * BYTES * 1.1);
    // Each node received what the server sent it, counted on its own side of the link.
    expect((await net.nodes[3].counters()).rxBytes).toBeGreaterThan(BYTES);
  });

  it('UDP multicast from the server reaches every node (udpcast)', async () => {
    const file = path.join(net.server.dir, 'payload');
    fs.writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 0).map((_, i) => (i * 7919) % 251));
    const receivers = net.nodes.map((n) =>
      n.spawn(['udp-receiver', '--interface', n.ifname, '--nokbd', '--portbase', '9000', '--file', path.join(n.dir, 'payload')], { label: 'udp-receiver' }),
    );
    // udpcast paces to the slowest receiver: stay under the 20mbit node's rate.
    const sender = net.server.spawn(['udp-sender', '--interface', net.server.ifname, '--nokbd', '--portbase', '9000', '--min-receivers', '4', '--max-bitrate', '15m', '--file', file], { label: 'udp-sender' });
    await sender.done;
    await Promise.all(receivers.map((r) => r.done));
    for (const n of net.nodes) expect(sha256(path.join(n.dir, 'payload'))).toBe(sha256(file));
  });

  it('cuts and restores a node\'s link, and kills every process of a node', async () => {
    const node = net.nodes[1];
    await node.cut();
    expect(await node.operstate()).toBe('down');
    await expect(node.run(['ping', '-c', '1', '-W', '1', net.server.ip])).rejects.toThrow(/ping/);
    await node.restore();
    await node.run(['ping', '-c', '1', '-W', '2', net.server.ip]);
    // The port keeps its shaping across down/up.
    expect((await run(['tc', '-n', net.switchNs, 'qdisc', 'show', 'dev', node.port])).stdout).toContain('rate 80Mbit');

    // A grandchild too: killAll empties the namespace, whatever the process tree.
    const p = node.spawn(['sh', '-c', 'sleep 300 & sleep 300; wait'], { label: 'sleepers' });
    await net.waitFor(async () => (await node.pids()).length >= 2, { what: 'two sleeps in n1', timeoutMs: 10_000 });
    await node.killAll();
    expect(await node.pids()).toEqual([]);
    expect((await p.exited).signal).toBe('SIGKILL');
    // The other nodes are untouched.
    await net.nodes[2].run(['ping', '-c', '1', '-W', '2', net.server.ip]);
  });
});

describe('netns harness: teardown and the stale sweep', () => {
  it('teardown removes every namespace and process, even with processes still running', async () => {
    const net = await createNetwork({ nodes: 2 });
    // A process that exits without printing what is awaited fails the wait at once, with its output.
    const early = net.nodes[1].spawn(['sh', '-c', 'echo nope; exit 3']);
    const t0 = Date.now();
    await expect(early.waitForOutput('never printed', 60_000)).rejects.toThrow(/exited \(code 3.*\n.*nope/s);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await expect(early.done).rejects.toThrow(/code 3/);
    const p = net.nodes[0].spawn(['sleep', '300']);
    await net.waitFor(async () => (await net.nodes[0].pids()).length === 1, { what: 'sleep in n0', timeoutMs: 10_000 });
    await net.teardown();
    expect((await p.exited).signal).toBe('SIGKILL');
    for (const ns of net.namespaces) expect(nsExists(ns)).toBe(false);
    expect(harnessNamespaces().has(net.id)).toBe(false);
    expect(fs.existsSync(net.dir)).toBe(false);
    await net.teardown(); // idempotent
  });

  it('sweeps namespaces of a crashed run, with their processes, and leaves live runs alone', async () => {
    const net = await createNetwork({ nodes: 1 });
    try {
      // A run whose test process died: its marker names a pid that is gone, a process lingers inside.
      const ns = 'fxh-zzzzz-n0';
      await run(['ip', 'netns', 'add', ns]);
      fs.writeFileSync('/run/ferry-netns/zzzzz', JSON.stringify({ pid: 2 ** 22 + 1, start: '0' }));
      const pid = Number((await run(['ip', 'netns', 'exec', ns, 'sh', '-c', 'sleep 300 >/dev/null 2>&1 </dev/null & echo $!'])).stdout.trim());
      expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
      const deleted = await sweepStale();
      expect(deleted).toContain(ns);
      expect(nsExists(ns)).toBe(false);
      expect(fs.existsSync('/run/ferry-netns/zzzzz')).toBe(false);
      await net.waitFor(() => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), { what: `lingering sleep ${pid} to die`, timeoutMs: 10_000 });
      for (const n of net.namespaces) expect(nsExists(n)).toBe(true);
      await net.nodes[0].run(['ping', '-c', '1', '-W', '2', net.server.ip]);
    } finally {
      await net.teardown();
    }
  });
});

describe('netns harness: the host as the server', () => {
  it('lets nodes reach a server in the test process, and removes the host veth on teardown', async () => {
    const net = await createNetwork({ nodes: 2, server: 'host' });
    const srv = http.createServer((req, res) => res.end(`hello ${req.socket.remoteAddress}`));
    try {
      expect(net.server.ns).toBeNull();
      await new Promise<void>((r) => srv.listen(0, net.server.ip, r));
      const port = (srv.address() as AddressInfo).port;
      for (const n of net.nodes) {
        const r = await n.run(['curl', '-sS', '--max-time', '10', `http://${net.server.ip}:${port}/`]);
        expect(r.stdout).toBe(`hello ${n.ip}`);
      }
      const c = await net.server.counters();
      expect(c.txBytes).toBeGreaterThan(0);
    } finally {
      srv.close();
      await net.teardown();
    }
    expect(fs.existsSync(`/sys/class/net/${net.server.ifname}`)).toBe(false);
  });
});

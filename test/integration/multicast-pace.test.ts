/**
 * The multicast pace rule (issue 13, server/multicast/pace.ts) in network namespaces: 4 nodes
 * armed by one `ferry deploy --transport multicast`, three on 80 Mbit/s links and one on a
 * 20 Mbit/s link (tc tbf), each running the real `ferry install --root`. udpcast paces to the
 * slowest receiver, so without the rule the slow node sets everyone's pace. With it, the slow
 * one is told to leave (udp-sender's Timeout reports name it late while the others are ready),
 * its installer says goodbye for it (udpcast's CMD_DISCONNECT) and finishes over HTTP with the
 * event that says so, and the three others finish by multicast in about the time the three take alone (measured
 * in the same test, without the slow node): bounded at 1.6 times that on this shared machine.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { MULTICAST_ROUTES } from '../../common/protocol.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { createNetwork, type Endpoint, type Network, type NsProcess } from '../harness/netns.js';
import { call, LAYOUT, tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');
const LAYER_BYTES = 24 * 1024 * 1024;

describe('multicast: a slow receiver is told to leave, the others keep their pace', () => {
  let net: Network;
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let srv: RunningServer | undefined;
  let layer: { digest: string; size: number };
  const ferry = (args: string[]) => run([FERRY, ...args, '--data', data], { timeoutMs: 60_000, quiet: true });
  const json = async (args: string[]) => JSON.parse((await ferry([...args, '--json'])).stdout);
  const rootOf = (n: Endpoint, token: string) => join(n.dir, `root-${token.slice(0, 6)}`);
  const layerEnds = (ev: any[]) => ev.filter((e) => e.phase === 'layers' && e.state === 'end' && e.object).map((e) => e.details?.transport);
  const events = async (id: number): Promise<any[]> => (await call(srv!.url, 'GET', `/api/v1/admin/deployments/${id}`, { token: srv!.adminToken })).json.events;

  function install(n: Endpoint, token: string): NsProcess {
    const root = rootOf(n, token);
    fs.mkdirSync(root, { recursive: true });
    return n.spawn(['timeout', '150', FERRY, 'install', '--server', srv!.url, '--token', token, '--root', root, '--no-initramfs'], { label: 'install' });
  }
  /** Install `nodes` from one deploy; each node's seconds from the start to its end. */
  async function batch(nodes: Endpoint[]): Promise<{ armed: { id: number; token: string }[]; secs: number[] }> {
    const armed = (await json(['deploy', ...nodes.map((n) => n.name), '--transport', 'multicast', '--max-wait', '20', '--max-bitrate', '70m'])).deployments as { id: number; token: string }[];
    const t0 = Date.now();
    const secs = await Promise.all(armed.map(async (a, i) => {
      const p = install(nodes[i], a.token);
      const x = await p.exited;
      expect(x.code, p.output.slice(-3000)).toBe(0);
      return (Date.now() - t0) / 1000;
    }));
    return { armed, secs };
  }

  beforeAll(async () => {
    t = tempDir('ferry-mcpace-');
    data = join(t.dir, 'data');
    const tree = join(t.dir, 'tree');
    fs.mkdirSync(join(tree, 'etc'), { recursive: true });
    fs.writeFileSync(join(tree, 'etc', 'hostname'), 'pace\n');
    fs.writeFileSync(join(tree, 'payload.bin'), randomBytes(LAYER_BYTES));
    fs.writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    await ferry(['image', 'import', 'pace', '--dir', tree]);
    layer = (await json(['image', 'show', 'pace'])).layers[0];
    net = await createNetwork({ nodes: 4, rate: '80mbit', rates: { 3: '20mbit' }, server: 'host' });
    for (const n of net.nodes) await ferry(['node', 'add', n.name, '--mac', n.mac, '--image', 'pace', '--layout', join(t.dir, 'layout.xml')]);
    srv = await startServer({ dataDir: data, listen: `${net.server.ip}:0`, multicast: { interface: net.server.ifname } });
  });
  afterAll(async () => {
    await srv?.close();
    await net?.teardown();
    t?.cleanup();
  });

  it('one node on 20 Mbit/s among 4: it finishes over HTTP, the three others by multicast at their own pace', async () => {
    const fast = net.nodes.slice(0, 3);
    const slow = net.nodes[3];
    // The reference: the three fast nodes alone.
    const ref = await batch(fast);
    const refS = Math.max(...ref.secs);
    const { armed, secs } = await batch([...fast, slow]);
    const state = (await call(srv!.url, 'GET', `${MULTICAST_ROUTES.session}?layer=${layer.digest}&deployment=${armed[0].id}`, { token: srv!.adminToken })).json;
    const slowId = armed[3].id;
    expect(state.dropped).toContain(slowId);
    // By the pace rule (udp-sender's own drop is only the backstop now), and only the slow one.
    expect(state.told).toEqual([slowId]);
    const sev = await events(slowId);
    expect(sev.filter((e) => e.state === 'warning' && e.details?.fallback === 'http').map((e) => e.code)).toEqual(['FERRY_E_MULTICAST_DROPPED']);
    expect(layerEnds(sev)).toEqual(['http']);
    for (const a of armed.slice(0, 3)) expect(layerEnds(await events(a.id))).toEqual(['multicast']);
    const others = Math.max(...secs.slice(0, 3));
    console.log(`pace: the three alone ${refS.toFixed(1)} s; with the slow node the three ${others.toFixed(1)} s (${(others / refS).toFixed(2)}x), the slow one ${secs[3].toFixed(1)} s; told to leave: ${JSON.stringify(state.told)}, dropped: ${JSON.stringify(state.dropped)}`);
    expect(others).toBeLessThan(1.6 * refS);
  }, 240_000);
});

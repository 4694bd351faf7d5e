/**
 * The wol power driver: magic packets from the test process (the host, server: 'host') to the
 * broadcast address of a network-namespace pair made by test/harness/netns.ts, captured by a UDP
 * listener inside the node's namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetwork, type Network, type NsProcess } from '../../harness/netns.js';
import { magicPacket } from '../../../server/power/wol.js';
import { powerAction, powerForInstall, type PowerTarget } from '../../../server/power/index.js';

const LISTENER = `const s = require('dgram').createSocket('udp4');
s.bind(9, () => console.log('ready'));
s.on('message', (m, r) => console.log('packet ' + r.address + ' ' + m.toString('hex')));`;

describe('wol power driver: a magic packet across a netns link', () => {
  let net: Network;
  let listener: NsProcess;
  let t: PowerTarget;
  beforeAll(async () => {
    net = await createNetwork({ nodes: 1, rate: '100mbit', server: 'host' });
    const node = net.nodes[0];
    listener = node.spawn([process.execPath, '-e', LISTENER]);
    await listener.waitForOutput(/ready/, 15_000);
    const broadcast = net.server.ip.replace(/\.\d+$/, '.255');
    t = { node: 'n0', driver: 'wol', address: broadcast, macs: [node.mac, '52:54:00:00:00:99'], user: undefined, password: undefined };
  });
  afterAll(async () => {
    await net?.teardown();
  });

  it('wakes: one packet per MAC of the node, each 6 x ff then the MAC 16 times, to port 9', async () => {
    expect((await powerAction(t, 'on')).state).toBe('unknown');
    const packets = () => [...listener.stdout.matchAll(/^packet (\S+) ([0-9a-f]+)$/gm)];
    await net.waitFor(() => packets().length >= 2, { what: 'two magic packets in the node namespace', timeoutMs: 10_000 });
    const got = packets().map((m) => m[2]);
    expect(got).toEqual(t.macs.map((m) => magicPacket(m).toString('hex')));
    expect(got[0]).toBe('ff'.repeat(6) + net.nodes[0].mac.replace(/:/g, '').repeat(16));
    expect(packets()[0][1]).toBe(net.server.ip);
  });

  it('is power-on only: off and cycle are FERRY_E_POWER_UNSUPPORTED; an install only wakes', async () => {
    for (const a of ['off', 'cycle'] as const) expect((await powerAction(t, a).catch((e) => e)).code).toBe('FERRY_E_POWER_UNSUPPORTED');
    const before = listener.stdout.length;
    expect(await powerForInstall(t)).toMatchObject({ pxeOnce: false, action: 'on', state: 'unknown' });
    await net.waitFor(() => listener.stdout.length > before, { what: 'the install\'s magic packet', timeoutMs: 10_000 });
  });
});

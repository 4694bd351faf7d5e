/** The multicast interface checks and the session range, as pure functions (common/netif.ts, server/multicast). */
import { describe, expect, it } from 'vitest';
import { checkBroadcast, parseAddrShow, parseRouteGet } from '../../common/netif.js';
import { parseMulticastConfig, streamHeader } from '../../server/multicast/sessions.js';

// `ip -o -4 addr show dev eth0` from iproute2 and from busybox ip.
const IPROUTE_BRD = '2: eth0    inet 10.1.2.10/24 brd 10.1.2.255 scope global eth0\\       valid_lft forever preferred_lft forever\n';
const IPROUTE_NO_BRD = '2: eth0    inet 10.1.2.10/24 scope global eth0\\       valid_lft forever preferred_lft forever\n';
const BUSYBOX = '2: eth0    inet 192.168.7.3/16 brd 192.168.255.255 scope global eth0\n';

describe('multicast interface checks', () => {
  it('reads the device and source of a route', () => {
    expect(parseRouteGet('10.1.2.1 dev eth0 src 10.1.2.10 uid 0 \\    cache \n')).toEqual({ dev: 'eth0', src: '10.1.2.10' });
    expect(parseRouteGet('local 127.0.0.1 dev lo table local src 127.0.0.1')).toEqual({ dev: 'lo', src: '127.0.0.1' });
    expect(parseRouteGet('RTNETLINK answers: Network is unreachable')).toBeUndefined();
  });

  it('reads addresses with and without a broadcast, from iproute2 and busybox, veth names too', () => {
    expect(parseAddrShow(IPROUTE_BRD)).toEqual([{ ifname: 'eth0', address: '10.1.2.10', prefix: 24, broadcast: '10.1.2.255' }]);
    expect(parseAddrShow(IPROUTE_NO_BRD)).toEqual([{ ifname: 'eth0', address: '10.1.2.10', prefix: 24 }]);
    expect(parseAddrShow(BUSYBOX)[0]).toMatchObject({ address: '192.168.7.3', prefix: 16, broadcast: '192.168.255.255' });
    expect(parseAddrShow('7: p0@if8    inet 10.0.0.1/8 brd 10.255.255.255 scope global p0\n')[0].ifname).toBe('p0');
    expect(parseAddrShow('')).toEqual([]);
  });

  it('passes an address with a broadcast, and names the fix for one without', () => {
    expect(checkBroadcast('eth0', parseAddrShow(IPROUTE_BRD)).address).toBe('10.1.2.10');
    let err: any;
    try {
      checkBroadcast('eth0', parseAddrShow(IPROUTE_NO_BRD));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'FERRY_E_MULTICAST_NO_BROADCAST', details: { interface: 'eth0', address: '10.1.2.10/24' } });
    expect(err.hint).toContain('ip addr add 10.1.2.10/24 brd + dev eth0');
    expect(() => checkBroadcast('eth0', [])).toThrow(expect.objectContaining({ code: 'FERRY_E_MULTICAST_INTERFACE' }));
    // The address the route uses decides; another address with a broadcast does not hide it.
    const two = parseAddrShow(IPROUTE_NO_BRD + '2: eth0    inet 10.9.0.1/24 brd 10.9.0.255 scope global eth0\n');
    expect(() => checkBroadcast('eth0', two, '10.1.2.10')).toThrow(expect.objectContaining({ code: 'FERRY_E_MULTICAST_NO_BROADCAST' }));
    expect(checkBroadcast('eth0', two).address).toBe('10.9.0.1');
  });
});

describe('multicast session range', () => {
  it('takes the defaults and a given range; port bases are even', () => {
    expect(parseMulticastConfig({})).toMatchObject({ portLo: 9200, portHi: 9399, size: 254 });
    expect(parseMulticastConfig({ group: '239.1.2.77/28', ports: '9001-9010' })).toMatchObject({ portLo: 9002, portHi: 9010, size: 14 });
  });

  it('refuses a range outside multicast, bad ports, every problem at once', () => {
    let err: any;
    try {
      parseMulticastConfig({ group: '10.0.0.0/24', ports: '80-90' });
    } catch (e) {
      err = e;
    }
    expect(err.code).toBe('FERRY_E_BAD_VALUE');
    expect(err.details.problems).toHaveLength(2);
    expect(() => parseMulticastConfig({ group: 'nope' })).toThrow(/multicast-group/);
  });

  it('binds the stream header to session, digest and size', () => {
    const d = 'sha256:' + 'a'.repeat(64);
    expect(streamHeader('mc1', d, 42)).toBe(`FERRYMC1 mc1 ${d} 42\n`);
  });
});

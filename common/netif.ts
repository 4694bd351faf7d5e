/**
 * The network interface a multicast session uses, on either side: the one that routes to the
 * peer (`ip -o -4 route get ADDRESS`), or one the operator names; and the check udpcast needs:
 * its IPv4 address must carry a broadcast address. udpcast's sender and receivers find each
 * other through the interface's broadcast address; an address added without one (`ip addr add
 * A/P dev IF`, no `brd +`) makes udp-receiver fail with a bare "Receiver error". Parsing is pure
 * (the text of iproute2 and of busybox `ip`, which print the same -o format); `interfaceFor`
 * runs the two `ip` calls through the command runner.
 */
import { FerryError } from './errors.js';
import { run } from './run.js';

export interface InterfaceAddress {
  ifname: string;
  address: string;
  prefix: number;
  broadcast?: string;
}

/** `ip -o -4 route get A` → the device ("A dev eth0 src 10.0.0.1 uid 0"; "local A dev lo …"). */
export function parseRouteGet(text: string): { dev: string; src?: string } | undefined {
  const dev = /\bdev\s+(\S+)/.exec(text)?.[1];
  if (!dev) return undefined;
  const src = /\bsrc\s+(\S+)/.exec(text)?.[1];
  return { dev, ...(src ? { src } : {}) };
}

/** `ip -o -4 addr show dev IF` → its IPv4 addresses ("2: eth0    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0…"). */
export function parseAddrShow(text: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+inet\s+([0-9.]+)\/(\d+)(.*)$/.exec(line.trim());
    if (!m) continue;
    const brd = /\bbrd\s+([0-9.]+)/.exec(m[4])?.[1];
    out.push({ ifname: m[1], address: m[2], prefix: Number(m[3]), ...(brd ? { broadcast: brd } : {}) });
  }
  return out;
}

/**
 * The address udpcast will use on `ifname`, or the error that says why it cannot: no IPv4
 * address (FERRY_E_MULTICAST_INTERFACE) or none with a broadcast (FERRY_E_MULTICAST_NO_BROADCAST).
 */
export function checkBroadcast(ifname: string, addrs: InterfaceAddress[], preferred?: string): InterfaceAddress {
  if (!addrs.length) {
    throw new FerryError('FERRY_E_MULTICAST_INTERFACE', `interface ${ifname} has no IPv4 address for multicast`, {
      details: { interface: ifname },
      hint: 'give the interface an address (ip addr add A/P brd + dev IF), or name another with --multicast-interface',
    });
  }
  const pick = addrs.find((a) => a.address === preferred) ?? addrs[0];
  if (pick.broadcast) return pick;
  const other = addrs.find((a) => a.broadcast);
  if (other && !preferred) return other;
  throw new FerryError('FERRY_E_MULTICAST_NO_BROADCAST', `interface ${ifname} has ${pick.address}/${pick.prefix} without a broadcast address; udpcast finds its peers through it`, {
    details: { interface: ifname, address: `${pick.address}/${pick.prefix}` },
    hint: `add the address with a broadcast: ip addr del ${pick.address}/${pick.prefix} dev ${ifname} && ip addr add ${pick.address}/${pick.prefix} brd + dev ${ifname} (or fix the DHCP client script); the layers come over HTTP meanwhile`,
  });
}

/** The interface towards `peer` (or `ifname` when given), checked for a broadcast address. */
export async function interfaceFor(peer: string | undefined, ifname?: string): Promise<InterfaceAddress> {
  let dev = ifname;
  let src: string | undefined;
  if (!dev) {
    if (!peer) throw new FerryError('FERRY_E_MULTICAST_INTERFACE', 'no peer address to find the multicast interface by', { hint: 'name the interface with --multicast-interface' });
    const r = parseRouteGet((await run(['ip', '-o', '-4', 'route', 'get', peer], { quiet: true, timeoutMs: 10_000 })).stdout);
    if (!r) throw new FerryError('FERRY_E_MULTICAST_INTERFACE', `no route to ${peer} names an interface`, { details: { peer }, hint: 'check the routes, or name the interface with --multicast-interface' });
    dev = r.dev;
    src = r.src;
  }
  let text: string;
  try {
    text = (await run(['ip', '-o', '-4', 'addr', 'show', 'dev', dev], { quiet: true, timeoutMs: 10_000 })).stdout;
  } catch (e) {
    throw new FerryError('FERRY_E_MULTICAST_INTERFACE', `cannot read the addresses of interface ${dev}: ${(e as Error).message.split('\n')[0]}`, { details: { interface: dev }, hint: 'name an existing interface with --multicast-interface', cause: e });
  }
  return checkBroadcast(dev, parseAddrShow(text), src);
}

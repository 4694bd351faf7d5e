/** HOST[:PORT] power addresses (ipmi, redfish, wol), checked when they are set. */
import { badAddress } from './errors.js';

export interface HostPort {
  host: string;
  port?: number;
}

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\d{1,3}(?:\.\d{1,3}){3})$/;

/** `host`, `host:port`, `[v6]` or `[v6]:port`. */
export function parseHostPort(driver: string, address: string): HostPort {
  let host = address;
  let port: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(address);
  if (v6) {
    host = v6[1];
    port = v6[2];
  } else {
    const i = address.lastIndexOf(':');
    if (i >= 0) {
      host = address.slice(0, i);
      port = address.slice(i + 1);
    }
    if (!HOST_RE.test(host)) throw badAddress(driver, address, 'the host must be a name or an IPv4 address ([IPv6] in brackets)');
  }
  if (port === undefined) return { host };
  const n = Number(port);
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) throw badAddress(driver, address, `the port "${port}" must be a number from 1 to 65535`);
  return { host, port: n };
}

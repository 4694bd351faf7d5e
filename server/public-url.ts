/**
 * The address machines use to reach the server (`ferry serve --public-url`, and the URL
 * `ferry pxe dnsmasq-config` writes into a network's boot configuration): checked where it
 * enters, so a typo is refused at start instead of every node failing its first request.
 */
import { FerryError } from '../common/errors.js';

/** An absolute http(s) URL without credentials, query or fragment, trailing slashes removed; else FERRY_E_BAD_PUBLIC_URL. */
export function checkPublicUrl(s: string): string {
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {
    /* reported below */
  }
  if (!u || !/^https?:$/.test(u.protocol) || !u.hostname || u.username || u.password || u.search || u.hash) {
    throw new FerryError('FERRY_E_BAD_PUBLIC_URL', `--public-url "${s.slice(0, 200)}" is not an http(s) URL without credentials, query or fragment`, {
      details: { publicUrl: s.slice(0, 200) },
      hint: 'give the URL machines reach this server at, e.g. --public-url http://192.0.2.1:8080',
    });
  }
  return s.replace(/\/+$/, '');
}

/** Does the host name this machine only (127.0.0.0/8, ::1, localhost)? */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/**
 * The warning for a boot configuration written for real machines (an interface that is not
 * loopback) that sends them to a loopback server URL, which none of them can reach.
 */
export function loopbackUrlWarning(serverUrl: string, iface: { name: string; internal: boolean }): string | undefined {
  let host: string;
  try {
    host = new URL(serverUrl).hostname;
  } catch {
    return undefined;
  }
  if (iface.internal || !isLoopbackHost(host)) return undefined;
  return `FERRY_W_PUBLIC_URL_LOOPBACK: the server URL ${serverUrl} is a loopback address, which machines on ${iface.name} cannot reach; start the server with --public-url http://ADDRESS:PORT (an address of ${iface.name}) or give --server`;
}

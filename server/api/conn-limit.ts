/**
 * At most MAX_CONNECTIONS_PER_CLIENT open connections per client address. Without it one client
 * holding thousands of half-sent requests (each kept for up to headersTimeout) exhausted the
 * server's file descriptors, and every other client's connection was reset. A connection over
 * the cap is answered 503 and closed at once; the client's others are untouched. Node's
 * server.maxConnections is one global cap, which the same client would fill for everyone.
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import { log } from '../../common/log.js';

/** A node's installer uses up to 8; iPXE, a browser and `ferry monitor` a few more. */
export const MAX_CONNECTIONS_PER_CLIENT = 64;

export function limitConnectionsPerClient(server: Server, max = MAX_CONNECTIONS_PER_CLIENT): { open(address: string): number } {
  const open = new Map<string, number>();
  let lastWarn = 0;
  server.on('connection', (sock: Socket) => {
    const addr = sock.remoteAddress ?? '?';
    const n = (open.get(addr) ?? 0) + 1;
    if (n > max) {
      if (Date.now() - lastWarn > 10_000) {
        lastWarn = Date.now();
        log.warn('refused a connection: too many from one client', { client: addr, max });
      }
      sock.on('error', () => {});
      sock.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nRetry-After: 5\r\n\r\n' +
        JSON.stringify({ error: { code: 'FERRY_E_TOO_MANY_CONNECTIONS', message: `more than ${max} connections from ${addr}`, hint: 'close idle connections; one client needs only a few' } }));
      sock.destroySoon();
      return;
    }
    open.set(addr, n);
    sock.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
  });
  return { open: (address) => open.get(address) ?? 0 };
}

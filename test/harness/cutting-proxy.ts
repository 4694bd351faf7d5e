/**
 * The proxy that cuts connections (issue 12's "transports through a proxy that cuts connections at
 * random points many times in a row"): one home for every transport's test. HTTP installs
 * (test/integration/install.test.ts, layers.test.ts) and the fan-out transports' HTTP traffic
 * (torrent tracker and web seed, multicast control and fallback: test/integration/fanout-cuts.test.ts)
 * go through it.
 *
 * It listens on `listen` (default 127.0.0.1; in the netns harness's host mode the server's bridge
 * address, so nodes in namespaces reach it), forwards to `target` (a URL, or a function read at each
 * connection, so the proxy can exist before the server it fronts and be the server's public URL).
 */
import * as net from 'node:net';

export interface CuttingProxy {
  url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections cut so far. */
  readonly drops: number;
  /** Stop or resume cutting (the connections in flight keep their limit). */
  cutting: boolean;
  close(): Promise<void>;
}

/** A seeded generator in [0, 1) (an LCG: the same seed cuts at the same points). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/**
 * A TCP proxy to `target` that cuts every connection after `dropEvery` bytes went to the client
 * (0: never). Counts connections and cut connections. growing: connection n is cut after
 * n × dropEvery bytes; random: after a random count up to dropEvery; fin: the cut is a FIN to the
 * client (its socket ends, as when a server closes its side, and the response says
 * `Connection: close`) instead of a reset.
 */
export async function droppingProxy(target: string | (() => string), dropEvery: number, o: { growing?: boolean; random?: () => number; fin?: boolean | 'random'; listen?: string } = {}): Promise<CuttingProxy> {
  const state = { connections: 0, drops: 0, cutting: true };
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    state.connections++;
    // growing: connection n is cut after n × dropEvery bytes (a server without Range still progresses).
    const limit = !state.cutting ? 0 : o.growing ? dropEvery * state.connections : o.random ? 1 + Math.floor(o.random() * dropEvery) : dropEvery;
    // 'random': each connection's cut is a FIN or a reset, by the seeded generator.
    const fin = o.fin === 'random' ? (o.random ?? Math.random)() < 0.5 : !!o.fin;
    const u = new URL(typeof target === 'string' ? target : target());
    const up = net.connect(Number(u.port), u.hostname);
    sockets.add(client);
    sockets.add(up);
    let sent = 0;
    let cut = false;
    client.on('data', (d) => up.write(d));
    up.on('data', (d: Buffer) => {
      if (cut) return;
      // fin: the server says it closes after this response (Connection: close), as a server
      // going away or a proxy does; the client must then take the FIN as the end of the message.
      if (fin && sent === 0) d = Buffer.from(d.toString('latin1').replace(/\r\nConnection: keep-alive\r\n/i, '\r\nConnection: close     \r\n'), 'latin1');
      if (limit && sent + d.length >= limit) {
        client.write(d.subarray(0, limit - sent));
        state.drops++;
        if (fin) {
          cut = true;
          up.destroy();
          client.end();
        } else {
          client.destroy();
          up.destroy();
        }
        return;
      }
      sent += d.length;
      client.write(d);
    });
    const end = () => { client.destroy(); up.destroy(); sockets.delete(client); sockets.delete(up); };
    client.on('close', end);
    // After a FIN the client reads what is left and closes its side; until then it stays open.
    up.on('close', () => { if (!cut) end(); });
    client.on('error', end);
    up.on('error', end);
  });
  const host = o.listen ?? '127.0.0.1';
  await new Promise<void>((r) => srv.listen(0, host, r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    get connections() { return state.connections; },
    get drops() { return state.drops; },
    get cutting() { return state.cutting; },
    set cutting(v: boolean) { state.cutting = v; },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
  };
}


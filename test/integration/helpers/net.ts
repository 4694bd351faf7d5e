/**
 * Loopback network helpers for installer tests: a blob server and a slow proxy. The proxy that
 * cuts connections is test/harness/cutting-proxy.ts.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

/** Serves DIR/<digest> at /blobs/<digest> with Range support, checking a bearer token. */
export async function blobServer(dir: string, token = 'tok', o: { noRange?: boolean } = {}): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const srv = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`.trim());
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end('no');
      return;
    }
    const m = /^\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
    const file = m && path.join(dir, m[1]);
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    const size = fs.statSync(file).size;
    const r = o.noRange ? null : /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    const start = r ? Number(r[1]) : 0;
    res.writeHead(r ? 206 : 200, { 'content-length': size - start, ...(r ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}) });
    fs.createReadStream(file, { start }).pipe(res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

/**
 * A TCP proxy whose server-to-client direction runs at `bytesPerSecond` (a slow link): an install
 * through it spends seconds in its layers stage, so a watcher (the web console) sees the stages
 * one by one.
 */
export async function slowProxy(target: string, bytesPerSecond: number): Promise<{ url: string; close(): Promise<void> }> {
  const u = new URL(target);
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const up = net.connect(Number(u.port), u.hostname);
    sockets.add(client);
    sockets.add(up);
    client.on('data', (d) => up.write(d));
    // Each chunk leaves when the link has carried the ones before it; the order is kept.
    let free = Date.now();
    up.on('data', (d: Buffer) => {
      free = Math.max(free, Date.now()) + (d.length * 1000) / bytesPerSecond;
      setTimeout(() => client.writable && client.write(d), free - Date.now());
    });
    up.on('end', () => void setTimeout(() => client.end(), Math.max(0, free - Date.now())));
    client.on('end', () => up.end());
    for (const s of [client, up]) {
      s.on('error', () => {
        client.destroy();
        up.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

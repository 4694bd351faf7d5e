/**
 * serveFile's sender (server/api/files.ts sendRange): files and ranges of several chunks come out
 * byte for byte through its two reused buffers, over a real loopback socket, and a client that
 * goes away mid-transfer ends it without an error escaping.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK, serveFile } from '../../../server/api/files.js';

describe('serveFile over several chunks', () => {
  let dir: string;
  let file: string;
  let bytes: Buffer;
  let server: Server;
  let port: number;
  const done: Promise<void>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-send-'));
    file = join(dir, 'blob');
    bytes = Buffer.alloc(2 * CHUNK + 12_344);
    for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(i, i);
    writeFileSync(file, bytes);
    server = createServer((req, res) => {
      done.push(serveFile(req, res, file, { etag: '"e"', contentType: 'application/octet-stream' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    if (server) await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const fetch = (range?: string, pauseAfter?: number) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = get({ host: '127.0.0.1', port, path: '/', headers: range ? { range } : {} }, (res) => {
        const parts: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          parts.push(c);
          n += c.length;
          if (pauseAfter !== undefined && n >= pauseAfter) {
            req.destroy();
            resolve({ status: res.statusCode!, body: Buffer.concat(parts) });
          }
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts) }));
        res.on('error', reject);
      });
      req.on('error', (e) => (pauseAfter !== undefined ? undefined : reject(e)));
    });
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('sends the whole file and ranges across chunk boundaries byte for byte', async () => {
    const all = await fetch();
    expect(all.status).toBe(200);
    expect(all.body.length).toBe(bytes.length);
    expect(sha(all.body)).toBe(sha(bytes));
    for (const [s, e] of [[CHUNK - 3, CHUNK + 2], [1, 2 * CHUNK + 1], [2 * CHUNK, bytes.length - 1], [0, CHUNK - 1]]) {
      const part = await fetch(`bytes=${s}-${e}`);
      expect(part.status).toBe(206);
      expect(part.body.equals(bytes.subarray(s, e + 1)), `${s}-${e}`).toBe(true);
    }
  });

  it('ends the transfer when the client goes away, and serves the next one', async () => {
    const cut = await fetch(undefined, 10_000);
    expect(cut.body.length).toBeLessThan(bytes.length);
    await Promise.all(done);
    const again = await fetch('bytes=5-9');
    expect(again.body.equals(bytes.subarray(5, 10))).toBe(true);
  });
});

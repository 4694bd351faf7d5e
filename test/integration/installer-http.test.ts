/**
 * The installer's HTTP client (installer/http.ts) against a server that closes its side (FIN)
 * with `Connection: close` while the response body is paused under backpressure: the exact
 * event that made undici 7 throw an uncatchable assertion and kill the installer
 * (nodejs/undici#5360). Every cut must end as a retriable error, and the download resumes.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../../installer/http.js';
import { streamBlob } from '../../installer/transport/http.js';

const BLOB = randomBytes(3 << 20);
const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Answers every request with Connection: close, sends at most `cut` bytes of the body, then FIN. */
async function closingServer(cut: number): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const srv = net.createServer((sock) => {
    let head = '';
    sock.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const range = /\r\nrange: bytes=(\d+)-/i.exec(head);
      requests.push(range ? `range ${range[1]}` : 'full');
      const from = range ? Number(range[1]) : 0;
      const rest = BLOB.subarray(from);
      sock.write(
        (range ? `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${from}-${BLOB.length - 1}/${BLOB.length}\r\n` : 'HTTP/1.1 200 OK\r\n') +
          `Content-Length: ${rest.length}\r\nConnection: close\r\n\r\n`,
      );
      sock.write(rest.subarray(0, cut));
      sock.end();
    });
    sock.on('error', () => {});
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/blob`, requests };
}

const slow = () => new Promise((r) => setTimeout(r, 2));

describe('the installer\'s HTTP client and a server that closes mid-body', () => {
  it('a body cut by a FIN while the reader is slow is a retriable ECONNRESET, not a crash', async () => {
    const s = await closingServer(1 << 20);
    const res = await httpRequest(s.url);
    expect(res.statusCode).toBe(200);
    let n = 0;
    const err = await (async () => {
      for await (const c of res.body) {
        n += c.length;
        await slow();
      }
    })().then(() => undefined, (e: { code?: string }) => e);
    expect(err?.code).toBe('ECONNRESET');
    // What arrived before the cut was read (node:http may drop what it had buffered unread).
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(1 << 20);
  });

  it('streamBlob resumes with Range after every such cut and delivers the exact bytes', { timeout: 30_000 }, async () => {
    const s = await closingServer(512 << 10);
    const h = createHash('sha256');
    const got = await streamBlob(s.url, BLOB.length, async (c) => {
      h.update(c);
      await slow();
    }, { backoff: { baseMs: 5, maxMs: 20, giveUpAfterMs: 20_000 } });
    expect(got).toBe(BLOB.length);
    expect(h.digest('hex')).toBe(createHash('sha256').update(BLOB).digest('hex'));
    expect(s.requests[0]).toBe('full');
    // 3 MiB in pieces of at most 512 KiB: at least 6 requests, each resuming further on.
    expect(s.requests.length).toBeGreaterThanOrEqual(6);
    const offsets = s.requests.slice(1).map((r) => Number(r.replace('range ', '')));
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]);
  });
});

/**
 * Hostile TFTP clients against a real server on loopback: silent clients asking for the
 * longest timeout, one address trying to take every slot, and netascii requests for a
 * large file (which used to be converted whole in memory).
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { startTftpServer, type TftpServer } from '../../../server/boot/tftp.js';

const rrq = (name: string, mode: string, ...opts: string[]) => Buffer.concat([Buffer.from([0, 1]), Buffer.from([name, mode, ...opts].map((p) => p + '\0').join(''), 'latin1')]);

async function client(): Promise<{ sock: Socket; got: Buffer[] }> {
  const sock = createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (b) => got.push(b));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { sock, got };
}

describe('TFTP server under hostile clients', () => {
  let dir: string;
  let srv: TftpServer;
  const big = Buffer.alloc(24 * 1024 * 1024);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-tftp-hostile-'));
    // Line ends everywhere: netascii doubles every other byte.
    for (let i = 0; i < big.length; i++) big[i] = i % 2 ? 0x0a : 0x41;
    writeFileSync(join(dir, 'big.txt'), big);
    writeFileSync(join(dir, 'small.bin'), Buffer.alloc(4000, 1));
    writeFileSync(join(dir, 'text.txt'), 'line one\nCR\ralone\n\n'.repeat(20_000));
    srv = await startTftpServer({ root: dir, host: '127.0.0.1', port: 0, timeoutMs: 300, retries: 2, maxTransfers: 64, maxPerClient: 4 });
  });
  afterAll(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('declines timeout=255 and lets a silent client go after the default timeout', async () => {
    const socks: Socket[] = [];
    try {
      const c = await client();
      socks.push(c.sock);
      c.sock.send(rrq('small.bin', 'octet', 'timeout', '255', 'tsize', '0'), srv.port, '127.0.0.1');
      await waitFor(() => c.got.length > 0, { what: 'an OACK', timeoutMs: 5000 });
      const oack = c.got[0];
      expect(oack.readUInt16BE(0)).toBe(6);
      expect(oack.subarray(2).toString('latin1')).toBe('tsize\x004000\0'); // no timeout acknowledged
      // Never answered: 3 tries of 300 ms, then the slot is free (not 3 × 255 s).
      const t0 = Date.now();
      await waitFor(() => srv.active === 0, { what: 'the silent transfer to be dropped', timeoutMs: 10_000 });
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      for (const s of socks) s.close();
    }
  });

  it('refuses more than maxPerClient transfers from one address, and still serves another address', async () => {
    const socks: Socket[] = [];
    try {
      const clients = await Promise.all(Array.from({ length: 10 }, () => client()));
      for (const c of clients) {
        socks.push(c.sock);
        c.sock.send(rrq('small.bin', 'octet', 'timeout', '5'), srv.port, '127.0.0.1');
      }
      await waitFor(() => clients.every((c) => c.got.length > 0), { what: 'an answer to every request', timeoutMs: 5000 });
      const refused = clients.filter((c) => c.got[0].readUInt16BE(0) === 5);
      expect(refused.length).toBe(6);
      expect(refused[0].got[0].subarray(4).toString('latin1')).toMatch(/too many transfers from this address/);
      expect(srv.active).toBe(4);
      // Another address (127.0.0.2 is loopback too) is not blocked by the first one's slots.
      const r = await run(['curl', '-sS', '--interface', '127.0.0.2', '-o', join(dir, 'other.out'), `tftp://127.0.0.1:${srv.port}/small.bin`], { timeoutMs: 30_000 });
      expect(r.code).toBe(0);
    } finally {
      for (const s of socks) s.close();
      await waitFor(() => srv.active === 0, { what: 'the held transfers to time out', timeoutMs: 60_000 });
    }
  }, 90_000);

  it('streams netascii per block: 4 requests for a 24 MiB file leave memory flat, and the bytes are right', async () => {
    const socks: Socket[] = [];
    try {
      global.gc?.();
      const before = process.memoryUsage().rss;
      const clients = await Promise.all(Array.from({ length: 4 }, () => client()));
      for (const c of clients) {
        socks.push(c.sock);
        c.sock.send(rrq('big.txt', 'netascii', 'tsize', '0', 'blksize', '1428'), srv.port, '127.0.0.1');
      }
      await waitFor(() => clients.every((c) => c.got.length > 0), { what: 'OACKs', timeoutMs: 30_000 });
      for (const c of clients) expect(c.got[0].subarray(2).toString('latin1')).toContain(`tsize\0${big.length * 1.5}\0`);
      const peak = process.memoryUsage().rss;
      // The whole-file conversion took 36 MiB per request (plus a JS array of numbers, far more).
      expect(peak - before).toBeLessThan(60 * 1024 * 1024);
    } finally {
      for (const s of socks) s.close();
      await waitFor(() => srv.active === 0, { what: 'the transfers to time out', timeoutMs: 30_000 });
    }
    // One real client fetches it whole in netascii and gets back the original text.
    const out = join(dir, 'big.out');
    const r = await run(['tftp', '-m', 'netascii', '127.0.0.1', String(srv.port), '-c', 'get', 'text.txt', out], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(join(dir, 'text.txt')))).toBe(true);
  }, 120_000);
});

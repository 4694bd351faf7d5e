/**
 * The TFTP server against real clients: tftp-hpa's `tftp` (plain RFC 1350) and curl
 * (blksize and tsize options), plus raw packets for what the clients hide (OACK,
 * write requests, unknown transfer IDs).
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { startTftpServer, type TftpServer } from '../../../server/boot/tftp.js';

describe('TFTP server', () => {
  let dir: string;
  let root: string;
  let srv: TftpServer;
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-tftp-'));
    root = join(dir, 'root');
    mkdirSync(join(root, 'pxelinux.cfg'), { recursive: true });
    files['undionly.kpxe'] = randomBytes(70_000);
    files['exact.bin'] = randomBytes(512 * 4); // ends with an empty DATA block
    files['big.bin'] = randomBytes(1_500_000);
    files['wrap.bin'] = randomBytes(8 * 65536 + 100); // > 65535 blocks of 8 bytes: block numbers wrap
    files['pxelinux.cfg/default'] = Buffer.from('DEFAULT local\n');
    for (const [n, b] of Object.entries(files)) writeFileSync(join(root, n), b);
    writeFileSync(join(dir, 'secret'), 'outside the TFTP directory\n');
    symlinkSync(join(dir, 'secret'), join(root, 'escape'));
    symlinkSync('undionly.kpxe', join(root, 'inside-link'));
    srv = await startTftpServer({
      root,
      host: '127.0.0.1',
      port: 0,
      timeoutMs: 500,
      virtualFile: (rel) => (rel === 'boot.ipxe' ? Buffer.from('#!ipxe\nchain http://x/boot/ipxe?mac=${netX/mac}\n') : undefined),
    });
  });
  afterAll(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tftpGet = async (name: string) => {
    const out = join(dir, `got-${randomBytes(4).toString('hex')}`);
    const r = await run(['tftp', '-m', 'binary', '127.0.0.1', String(srv.port), '-c', 'get', name, out], { timeoutMs: 60_000, okCodes: [0, 1] });
    let data: Buffer | undefined;
    try {
      data = readFileSync(out);
    } catch {
      data = undefined;
    }
    return { r, data, out };
  };

  it('sends files to tftp-hpa (RFC 1350, 512-byte blocks)', async () => {
    for (const n of ['undionly.kpxe', 'exact.bin', 'pxelinux.cfg/default', 'inside-link']) {
      const { data } = await tftpGet(n);
      expect(data?.equals(n === 'inside-link' ? files['undionly.kpxe'] : files[n]), n).toBe(true);
    }
  });

  it('sends to curl with blksize and tsize, and wraps block numbers past 65535', async () => {
    for (const [n, bs] of [['big.bin', 1428], ['undionly.kpxe', 8192], ['wrap.bin', 8]] as const) {
      const r = await run(['curl', '-sS', '--tftp-blksize', String(bs), '-o', join(dir, 'curl.out'), `tftp://127.0.0.1:${srv.port}/${n}`], { timeoutMs: 120_000 });
      expect(r.code).toBe(0);
      expect(readFileSync(join(dir, 'curl.out')).equals(files[n]), `${n} with blksize ${bs}`).toBe(true);
    }
  });

  it('serves Ferry\'s virtual files first', async () => {
    const { data } = await tftpGet('boot.ipxe');
    expect(data?.toString()).toMatch(/^#!ipxe\nchain /);
  });

  it('refuses paths outside its directory, missing files and writes', async () => {
    const up = await tftpGet('../secret');
    expect(up.r.stdout + up.r.stderr).toMatch(/Access violation|access violation/i);
    expect(up.data === undefined || up.data.length === 0).toBe(true);
    const esc = await tftpGet('escape');
    expect(esc.r.stdout + esc.r.stderr).toMatch(/access violation/i);
    expect(esc.data?.toString() ?? '').not.toContain('outside');
    const abs = await tftpGet(join(dir, 'secret'));
    expect(abs.r.stdout + abs.r.stderr).toMatch(/not found/i);
    const none = await tftpGet('nope');
    expect(none.r.stdout + none.r.stderr).toMatch(/not found/i);
    writeFileSync(join(dir, 'upload'), 'x');
    const put = await run(['tftp', '-m', 'binary', '127.0.0.1', String(srv.port), '-c', 'put', join(dir, 'upload'), 'upload'], { timeoutMs: 30_000, okCodes: [0, 1] });
    expect(put.stdout + put.stderr).toMatch(/read-only/);
    expect(() => readFileSync(join(root, 'upload'))).toThrow();
  });

  it('answers options with an OACK and waits for its ACK (raw packets)', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const packets: { b: Buffer; port: number }[] = [];
    let wake: (() => void) | undefined;
    sock.on('message', (b, rinfo) => {
      packets.push({ b, port: rinfo.port });
      wake?.();
    });
    const next = () =>
      new Promise<{ b: Buffer; port: number }>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no packet from the TFTP server within 5 s')), 5000);
        const check = () => {
          const p = packets.shift();
          if (p) {
            clearTimeout(t);
            wake = undefined;
            resolve(p);
          } else wake = check;
        };
        check();
      });
    try {
      sock.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('undionly.kpxe\0octet\0blksize\x001024\0tsize\x000\0')]), srv.port, '127.0.0.1');
      const oack = await next();
      expect(oack.b.readUInt16BE(0)).toBe(6);
      expect(oack.b.subarray(2).toString('latin1')).toBe(`blksize\x001024\0tsize\0${files['undionly.kpxe'].length}\0`);
      expect(oack.port).not.toBe(srv.port); // a new transfer ID
      // A stranger's packet to the transfer port gets "unknown transfer ID".
      const stranger = createSocket('udp4');
      await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', () => r()));
      const strangerGot = new Promise<Buffer>((r) => stranger.once('message', (b) => r(b)));
      stranger.send(Buffer.from([0, 4, 0, 0]), oack.port, '127.0.0.1');
      expect((await strangerGot).readUInt16BE(2)).toBe(5);
      stranger.close();
      sock.send(Buffer.from([0, 4, 0, 0]), oack.port, '127.0.0.1');
      const d1 = await next();
      expect(d1.b.readUInt16BE(0)).toBe(3);
      expect(d1.b.readUInt16BE(2)).toBe(1);
      expect(d1.b.subarray(4).equals(files['undionly.kpxe'].subarray(0, 1024))).toBe(true);
      // No ACK: the server resends block 1 after its timeout.
      const again = await next();
      expect(again.b.readUInt16BE(2)).toBe(1);
      // An ERROR from the client ends the transfer.
      sock.send(encodeClientError(), oack.port, '127.0.0.1');
      const { waitFor } = await import('../../../common/wait.js');
      await waitFor(() => srv.active === 0, { what: 'the transfer to end', timeoutMs: 5000 });
    } finally {
      sock.close();
    }
  });
});

function encodeClientError(): Buffer {
  return Buffer.concat([Buffer.from([0, 5, 0, 0]), Buffer.from('stop\0')]);
}

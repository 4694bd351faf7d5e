import { describe, expect, it } from 'vitest';
import { encodeData, encodeError, encodeOack, negotiate, parseRequest, resolveRequestPath, toNetascii } from '../../../server/boot/tftp-codec.js';

const rrq = (...parts: string[]) => Buffer.concat([Buffer.from([0, 1]), Buffer.from(parts.map((p) => p + '\0').join(''), 'latin1')]);

describe('TFTP packets', () => {
  it('parses read and write requests with options', () => {
    expect(parseRequest(rrq('pxelinux.cfg/01-aa', 'octet', 'blksize', '1428', 'TSIZE', '0'))).toEqual({
      op: 'read',
      filename: 'pxelinux.cfg/01-aa',
      mode: 'octet',
      options: { blksize: '1428', tsize: '0' },
    });
    const w = Buffer.concat([Buffer.from([0, 2]), Buffer.from('x\0NetASCII\0')]);
    expect(parseRequest(w)).toMatchObject({ op: 'write', mode: 'netascii' });
  });
  it('rejects malformed requests', () => {
    expect(parseRequest(Buffer.from([0, 3, 0, 1]))).toBeUndefined();
    expect(parseRequest(Buffer.concat([Buffer.from([0, 1]), Buffer.from('file\0octet')]))).toBeUndefined();
    expect(parseRequest(rrq('file', 'binary'))).toBeUndefined();
    expect(parseRequest(rrq('', 'octet'))).toBeUndefined();
    expect(parseRequest(rrq('f', 'octet', 'blksize'))).toBeUndefined();
  });
  it('encodes DATA (block numbers wrap at 65536), ERROR and OACK', () => {
    expect(encodeData(1, Buffer.from('ab'))).toEqual(Buffer.from([0, 3, 0, 1, 0x61, 0x62]));
    expect(encodeData(65536 + 2, Buffer.alloc(0))).toEqual(Buffer.from([0, 3, 0, 2]));
    expect(encodeError(2, 'no')).toEqual(Buffer.from([0, 5, 0, 2, 0x6e, 0x6f, 0]));
    expect(encodeOack({ blksize: '1024', tsize: '9' })).toEqual(Buffer.concat([Buffer.from([0, 6]), Buffer.from('blksize\x001024\x00tsize\x009\x00')]));
  });
});

describe('TFTP option negotiation', () => {
  it('accepts blksize, tsize and timeout; ignores the rest', () => {
    expect(negotiate({ blksize: '1428', tsize: '0', timeout: '3', windowsize: '8' }, 12345, { timeoutMs: 2000 })).toEqual({
      blksize: 1428,
      timeoutMs: 3000,
      oack: { blksize: '1428', tsize: '12345', timeout: '3' },
    });
  });
  it('caps blksize and ignores values out of range', () => {
    expect(negotiate({ blksize: '99999' }, 1, { timeoutMs: 2000 }).blksize).toBe(65464);
    expect(negotiate({ blksize: '9000' }, 1, { timeoutMs: 2000, maxBlksize: 1468 }).oack).toEqual({ blksize: '1468' });
    expect(negotiate({ blksize: '4', timeout: '0' }, 1, { timeoutMs: 2000 })).toEqual({ blksize: 512, timeoutMs: 2000, oack: {} });
    expect(negotiate({}, 1, { timeoutMs: 2000 })).toEqual({ blksize: 512, timeoutMs: 2000, oack: {} });
  });
});

describe('TFTP paths', () => {
  it('maps what firmware sends to a path inside the root', () => {
    expect(resolveRequestPath('/srv/tftp', 'pxelinux.cfg/01-aa-bb')).toEqual({ ok: true, rel: 'pxelinux.cfg/01-aa-bb' });
    expect(resolveRequestPath('/srv/tftp', '/boot.ipxe')).toEqual({ ok: true, rel: 'boot.ipxe' });
    expect(resolveRequestPath('/srv/tftp', '\\efi\\ipxe.efi')).toEqual({ ok: true, rel: 'efi/ipxe.efi' });
    expect(resolveRequestPath('/srv/tftp', '/srv/tftp/undionly.kpxe')).toEqual({ ok: true, rel: 'undionly.kpxe' });
    expect(resolveRequestPath('/srv/tftp', '/etc/passwd')).toEqual({ ok: true, rel: 'etc/passwd' });
  });
  it('refuses ".." and empty names', () => {
    expect(resolveRequestPath('/srv/tftp', '../etc/passwd')).toMatchObject({ ok: false });
    expect(resolveRequestPath('/srv/tftp', 'a/../../x')).toMatchObject({ ok: false });
    expect(resolveRequestPath('/srv/tftp', '..\\x')).toMatchObject({ ok: false });
    expect(resolveRequestPath('/srv/tftp', '/')).toMatchObject({ ok: false });
  });
  it('converts to netascii', () => {
    expect(toNetascii(Buffer.from('a\nb\rc'))).toEqual(Buffer.from('a\r\nb\r\0c', 'latin1'));
  });
});

describe('TFTP hardening (pure)', () => {
  it('declines a timeout above the cap (255 s would hold a slot for minutes)', () => {
    expect(negotiate({ timeout: '255' }, 1, { timeoutMs: 2000 })).toEqual({ blksize: 512, timeoutMs: 2000, oack: {} });
    expect(negotiate({ timeout: '6' }, 1, { timeoutMs: 2000 }).oack).toEqual({});
    expect(negotiate({ timeout: '5' }, 1, { timeoutMs: 2000 })).toMatchObject({ timeoutMs: 5000, oack: { timeout: '5' } });
    expect(negotiate({ timeout: '30' }, 1, { timeoutMs: 2000, maxTimeoutS: 300 }).timeoutMs).toBe(30_000);
    expect(negotiate({ timeout: '256' }, 1, { timeoutMs: 2000, maxTimeoutS: 300 }).oack).toEqual({});
  });
  it('converts netascii block by block exactly as the whole-buffer conversion', async () => {
    const { NetasciiReader, netasciiLength } = await import('../../../server/boot/tftp-codec.js');
    // Hostile: all line ends (every byte doubles), CR at block edges, random bytes.
    const inputs = [Buffer.alloc(5000, 0x0a), Buffer.alloc(5000, 0x0d), Buffer.from('a\r\n\r\rb\n'.repeat(700)), Buffer.from(Array.from({ length: 9000 }, (_, i) => (i * 7919) % 256))];
    for (const input of inputs) {
      for (const bs of [8, 511, 512, 1428]) {
        const r = new NetasciiReader(async (p, n) => input.subarray(p, p + n));
        const blocks: Buffer[] = [];
        for (;;) {
          const b = await r.read(bs);
          expect(b.length).toBeLessThanOrEqual(bs);
          blocks.push(b);
          if (b.length < bs) break;
        }
        const whole = toNetascii(input);
        expect(Buffer.concat(blocks).equals(whole)).toBe(true);
        expect(netasciiLength(input)).toBe(whole.length);
      }
    }
  });
});

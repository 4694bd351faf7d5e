import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { paxRecord, planEntry, tarName, ustarHeader } from '../../../layers/writer.js';
import { diffLayerEntries } from '../../../server/store/image-export.js';
import { comparePaths, devMajor, devMinor, parseGetfattr, unescapeGetfattr, type TreeEntry } from '../../../layers/tree.js';

const GOLDEN = join(import.meta.dirname, '..', '..', 'fixtures', 'server', 'tar-headers.golden.txt');

function entry(p: Partial<TreeEntry> & { path: string; type: TreeEntry['type'] }): TreeEntry {
  return { abs: '/nonexistent', mode: 0o644, uid: 0, gid: 0, mtimeNs: 1_000_000_000_000_000_000n, size: 0, blocks: 1 << 20, xattrs: [], ...p };
}

function field(b: Buffer, off: number, len: number): string {
  return b.subarray(off, off + len).toString('latin1').replace(/\0.*$/s, '');
}

function parsePax(body: Buffer): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const sp = body.indexOf(0x20, i);
    const len = Number(body.subarray(i, sp).toString());
    const rec = body.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    out.push([rec.subarray(0, eq).toString(), rec.subarray(eq + 1)]);
    expect(body[i + len - 1]).toBe(0x0a);
    i += len;
  }
  return out;
}

describe('pax records', () => {
  it('count their own length, across digit boundaries', () => {
    for (let n = 0; n < 1200; n += 7) {
      const r = paxRecord('k', 'v'.repeat(n));
      const len = Number(r.subarray(0, r.indexOf(0x20)).toString());
      expect(len).toBe(r.length);
    }
  });
  it('carry binary values unchanged', () => {
    const v = Buffer.from([0, 0xff, 0x0a, 0x80, 0x3d]);
    const r = paxRecord('SCHILY.xattr.security.capability', v);
    expect(parsePax(r)).toEqual([['SCHILY.xattr.security.capability', v]]);
  });
});

describe('ustar headers', () => {
  it('have a valid checksum and fixed fields', () => {
    const h = ustarHeader({ name: 'etc/passwd', mode: 0o4755, uid: 1000, gid: 100, size: 1234, mtime: 1700000000, typeflag: '0' });
    expect(h.length).toBe(512);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    expect(parseInt(field(h, 148, 8), 8)).toBe(sum);
    expect(field(h, 0, 100)).toBe('etc/passwd');
    expect(field(h, 100, 8)).toBe('0004755');
    expect(field(h, 124, 12)).toBe('00000002322');
    expect(field(h, 257, 6)).toBe('ustar');
    expect(field(h, 263, 2)).toBe('00');
    expect(field(h, 265, 32)).toBe('');
  });
});

describe('entry plans', () => {
  it('move long and non-ASCII names, big ids and nanoseconds to pax', () => {
    const long = 'd/'.repeat(60) + 'file';
    const p = planEntry(entry({ path: long, type: 'file', uid: 3_000_000, mtimeNs: 1_700_000_000_123_000_000n, xattrs: [['user.a', Buffer.from([1, 2])]] }));
    expect(p.header.length).toBe(512 * 3);
    expect(p.header[156]).toBe('x'.charCodeAt(0));
    const pax = parsePax(p.header.subarray(512, 1024));
    expect(pax.map(([k, v]) => [k, k.startsWith('SCHILY') ? v.toString('hex') : v.toString()])).toEqual([
      ['path', long],
      ['uid', '3000000'],
      ['mtime', '1700000000.123'],
      ['SCHILY.xattr.user.a', '0102'],
    ]);
    const main = p.header.subarray(1024);
    expect(main[156]).toBe('0'.charCodeAt(0));
    expect(field(main, 108, 8)).toBe('0000000');
    expect(field(main, 136, 12)).toBe(String((1_700_000_000).toString(8)).padStart(11, '0'));
  });

  it('keep mode 0 and write devices, links and directories', () => {
    const zero = planEntry(entry({ path: 'etc/shadow', type: 'file', mode: 0 }));
    expect(field(zero.header, 100, 8)).toBe('0000000');
    const dev = planEntry(entry({ path: 'dev/loop0', type: 'block', mode: 0o660, devmajor: 7, devminor: 300 }));
    expect(field(dev.header, 329, 8)).toBe('0000007');
    expect(field(dev.header, 337, 8)).toBe('0000454');
    const dir = planEntry(entry({ path: 'etc', type: 'dir', mode: 0o755 }));
    expect(field(dir.header, 0, 100)).toBe('etc/');
    const root = planEntry(entry({ path: '.', type: 'dir', mode: 0o755 }));
    expect(field(root.header, 0, 100)).toBe('./');
    const hl = planEntry(entry({ path: 'b', type: 'hardlink', linkname: 'a' }));
    expect(hl.header[156]).toBe('1'.charCodeAt(0));
    expect(field(hl.header, 157, 100)).toBe('a');
  });

  it('match the golden headers', () => {
    const entries = [
      entry({ path: '.', type: 'dir', mode: 0o755 }),
      entry({ path: 'bin/ping', type: 'file', mode: 0o4755, size: 10, xattrs: [['security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex')]] }),
      entry({ path: 'ñandú', type: 'symlink', mode: 0o777, linkname: '日本' }),
      entry({ path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }),
      entry({ path: 'fifo', type: 'fifo', mode: 0o600, uid: 12, gid: 34 }),
    ];
    const text = entries.map((e) => `${e.path}\n${planEntry(e).header.toString('base64')}`).join('\n') + '\n';
    if (process.env.UPDATE_GOLDEN || !existsSync(GOLDEN)) writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });
});

describe('diff layers', () => {
  it('name whiteouts next to the removed entry and sort them with the changes', () => {
    const entries = diffLayerEntries({
      changed: [entry({ path: 'srv', type: 'file' }), entry({ path: 'etc/hostname', type: 'file' })],
      deleted: ['etc/shadow', 'srv', 'var/lib/old'],
    });
    expect(entries.map((e) => tarName(e))).toEqual(['.wh.srv', 'etc/.wh.shadow', 'etc/hostname', 'srv', 'var/lib/.wh.old']);
  });
});

describe('tree helpers', () => {
  it('decode device numbers like glibc', () => {
    const rdev = (300n << 8n) | 70n;
    expect([devMajor(rdev), devMinor(rdev)]).toEqual([300, 70]);
    // minor 70000 spills into the high bits.
    const big = (300n << 8n) | (70000n & 0xffn) | ((70000n & ~0xffn) << 12n);
    expect([devMajor(big), devMinor(big)]).toEqual([300, 70000]);
  });
  it('sorts by bytes', () => {
    expect(['b', 'a/b', 'a-b', 'a', 'ñ', 'z'].sort(comparePaths)).toEqual(['a', 'a-b', 'a/b', 'b', 'z', 'ñ']);
  });
  it('reads getfattr dumps with escaped names and binary values', () => {
    const out = '# file: /t/a b\nuser.e=0s\n\n# file: /t/x\\012y\nuser.q=0saGk=\nuser.h=0x00ff\n\n# file: /t/back\\\\slash\nuser.s="text"\n';
    const m = parseGetfattr(out);
    expect([...m.keys()]).toEqual(['/t/a b', '/t/x\ny', '/t/back\\slash']);
    expect(m.get('/t/x\ny')).toEqual([['user.h', Buffer.from([0, 255])], ['user.q', Buffer.from('hi')]]);
    expect(m.get('/t/a b')).toEqual([['user.e', Buffer.alloc(0)]]);
    expect(m.get('/t/back\\slash')).toEqual([['user.s', Buffer.from('text')]]);
    expect(unescapeGetfattr('\\303\\251')).toBe('é');
  });
});

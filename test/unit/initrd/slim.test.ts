/**
 * Slimming the boot environment (initrd/slim.ts) on bytes made here: an ELF object with named
 * sections, and an ICU common data package (the "CmnD" format Node links in and ICU's .dat files
 * use) with resource-bundle items. The real Node and libicudata are checked by the integration
 * tier (test/integration/boot/initrd-slim.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { CpioEntry } from '../../../initrd/cpio.js';
import { elfSection, filterIcuCommonData, findIcuCommonData, hollowElfSection, keepIcuItem, slimNodeIcu, slimPlan } from '../../../initrd/slim.js';
import { parsePackageList } from '../../../initrd/spec.js';

/** A 64-bit little-endian ELF with sections `.text` and `.rodata` (bytes given) and `.shstrtab`. */
function elf(sections: Record<string, Buffer>): Buffer {
  const names = ['', ...Object.keys(sections), '.shstrtab'];
  const shstr = Buffer.from(names.map((n) => n + '\0').join(''), 'latin1');
  const bodies = [...Object.values(sections), shstr];
  let at = 64;
  const offsets = bodies.map((b) => {
    const o = at;
    at += b.length;
    return o;
  });
  const shoff = at;
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2;
  h[5] = 1;
  h.writeBigUInt64LE(BigInt(shoff), 40);
  h.writeUInt16LE(64, 58);
  h.writeUInt16LE(names.length, 60);
  h.writeUInt16LE(names.length - 1, 62);
  const sh = Buffer.alloc(64 * names.length);
  let nameAt = 1;
  names.forEach((n, i) => {
    if (i === 0) return;
    sh.writeUInt32LE(nameAt, 64 * i);
    nameAt += n.length + 1;
    sh.writeUInt32LE(1, 64 * i + 4);
    sh.writeBigUInt64LE(BigInt(offsets[i - 1]), 64 * i + 24);
    sh.writeBigUInt64LE(BigInt(bodies[i - 1].length), 64 * i + 32);
  });
  return Buffer.concat([h, ...bodies, sh]);
}

/** A UDataHeader of 32 bytes for a format ("CmnD", "ResB", "Nrm2"). */
function header(format: string): Buffer {
  const h = Buffer.alloc(32);
  h.writeUInt16LE(32, 0);
  h[2] = 0xda;
  h[3] = 0x27;
  h.writeUInt16LE(20, 4);
  h[10] = 2;
  h.write(format, 12, 'latin1');
  h[16] = 1;
  return h;
}

/** A resource bundle item of `words` 32-bit words of body, filled with `fill`. */
function resb(words: number, fill: number): Buffer {
  const body = Buffer.alloc(4 * words, fill);
  body.writeUInt32LE(0, 0);
  body.writeUInt32LE(5, 4);
  body.writeUInt32LE(words, 16);
  return Buffer.concat([header('ResB'), body]);
}

/** A common data package of `items` (name → bytes, sorted as ICU sorts them), 16-byte aligned. */
function common(pkg: string, items: [string, Buffer][]): Buffer {
  const names = Buffer.from(items.map(([n]) => `${pkg}/${n}\0`).join(''), 'latin1');
  const tocLen = 4 + 8 * items.length;
  const align = (n: number) => (n + 15) & ~15;
  const toc = Buffer.alloc(tocLen);
  toc.writeUInt32LE(items.length, 0);
  let nameAt = tocLen;
  let at = align(tocLen + names.length);
  const parts: Buffer[] = [];
  items.forEach(([n, b], k) => {
    toc.writeUInt32LE(nameAt, 4 + 8 * k);
    toc.writeUInt32LE(at, 8 + 8 * k);
    nameAt += pkg.length + 1 + n.length + 1;
    parts.push(b, Buffer.alloc(align(b.length) - b.length));
    at = align(at + b.length);
  });
  return Buffer.concat([header('CmnD'), toc, names, Buffer.alloc(align(tocLen + names.length) - tocLen - names.length), ...parts]);
}

const ITEMS: [string, Buffer][] = [
  ['coll/de.res', resb(40, 0x11)],
  ['coll/root.res', resb(30, 0x12)],
  ['de.res', resb(50, 0x13)],
  ['en.res', resb(20, 0x14)],
  ['euc-jp-2007.cnv', Buffer.concat([header('cnvt'), Buffer.alloc(64, 0x15)])],
  ['nfc.nrm', Buffer.concat([header('Nrm2'), Buffer.alloc(48, 0x16)])],
  ['pool.res', resb(10, 0x17)],
  ['res_index.res', resb(8, 0x18)],
  ['root.res', resb(12, 0x19)],
  ['zu_ZA.res', resb(6, 0x1a)],
];

describe('hollowing an ELF section', () => {
  const obj = elf({ '.text': Buffer.alloc(32, 0xcc), '.rodata': Buffer.alloc(100, 0x5a) });

  it('zero-fills exactly that section and keeps the file\'s size and every other byte', () => {
    const s = elfSection(obj, '.rodata')!;
    expect(s.size).toBe(100);
    const out = hollowElfSection(obj, '.rodata', 'libx.so');
    expect(out.length).toBe(obj.length);
    expect(out.subarray(s.offset, s.offset + s.size).every((b) => b === 0)).toBe(true);
    const t = elfSection(obj, '.text')!;
    expect(out.subarray(t.offset, t.offset + t.size)).toEqual(obj.subarray(t.offset, t.offset + t.size));
    // Only the section changed.
    let changed = 0;
    for (let i = 0; i < obj.length; i++) if (obj[i] !== out[i]) changed++;
    expect(changed).toBe(100);
    // The input is left as it was.
    expect(obj.subarray(s.offset, s.offset + 4).toString('hex')).toBe('5a5a5a5a');
  });

  it('refuses a section the file does not have, and a file that is not ELF', () => {
    expect(() => hollowElfSection(obj, '.data', 'libx.so')).toThrow(expect.objectContaining({ code: 'FERRY_E_INITRD_SLIM', message: expect.stringContaining('libx.so has no ELF section .data') }));
    expect(elfSection(Buffer.from('#!/bin/sh\n'.padEnd(80)), '.rodata')).toBeUndefined();
  });
});

describe('ICU common data', () => {
  const data = common('icudt78l', ITEMS);
  // As Node links it: inside an executable, other bytes before and after.
  const exe = Buffer.concat([Buffer.alloc(100, 0xaa), data, Buffer.alloc(50, 0xbb)]);

  it('is found inside an executable with its exact extent, to the end of the last item', () => {
    const d = findIcuCommonData(exe)!;
    expect(d.name).toBe('icudt78l');
    expect(d.offset).toBe(100);
    expect(d.lastKnown).toBe(true);
    // The package's length less the last item's alignment padding.
    const last = ITEMS[ITEMS.length - 1][1];
    expect(d.length).toBe(data.length - ((16 - (last.length % 16)) % 16));
    expect(d.items.map((i) => i.name)).toEqual(ITEMS.map(([n]) => `icudt78l/${n}`));
    expect(findIcuCommonData(Buffer.alloc(4096, 0x43))).toBeUndefined();
  });

  it('keeps root and English, the shared bundles and the core data; not other locales, character sets, dictionaries', () => {
    const kept = ITEMS.map(([n]) => n).filter((n) => keepIcuItem(`icudt78l/${n}`));
    expect(kept).toEqual(['coll/root.res', 'en.res', 'nfc.nrm', 'pool.res', 'res_index.res', 'root.res']);
    expect(keepIcuItem('icudt78l/brkitr/thaidict.dict')).toBe(false);
    expect(keepIcuItem('icudt78l/brkitr/line_cj.brk')).toBe(false);
    expect(keepIcuItem('icudt78l/brkitr/word.brk')).toBe(true);
    expect(keepIcuItem('icudt78l/translit/root.res')).toBe(false);
    expect(keepIcuItem('icudt78l/zoneinfo64.res')).toBe(true);
    expect(keepIcuItem('icudt78l/supplementalData.res')).toBe(true);
    expect(keepIcuItem('icudt78l/zh_Hant_HK.res')).toBe(false);
  });

  it('filters into a package that reads back with the same bytes for each kept item', () => {
    const d = findIcuCommonData(exe)!;
    const out = filterIcuCommonData(exe, d);
    const back = findIcuCommonData(out)!;
    expect(back.offset).toBe(0);
    expect(back.items.map((i) => i.name)).toEqual(['coll/root.res', 'en.res', 'nfc.nrm', 'pool.res', 'res_index.res', 'root.res'].map((n) => `icudt78l/${n}`));
    for (const it of back.items.slice(0, -1)) {
      const orig = ITEMS.find(([n]) => `icudt78l/${n}` === it.name)![1];
      // Items are 16-byte aligned: an item's extent is its bytes and its padding.
      expect(out.subarray(it.offset + 32, it.offset + 32 + orig.length)).toEqual(orig);
      expect(it.offset % 16).toBe(0);
    }
  });

  it('moves out of an executable: the linked copy zero-filled but for a one-item package, the rest of the file as it was', () => {
    const r = slimNodeIcu(exe, 'node');
    expect(r.name).toBe('icudt78l');
    expect(r.exe.length).toBe(exe.length);
    expect(r.exe.subarray(0, 100)).toEqual(exe.subarray(0, 100));
    expect(r.exe.subarray(exe.length - 50)).toEqual(exe.subarray(exe.length - 50));
    const stub = findIcuCommonData(r.exe)!;
    expect(stub.offset).toBe(100);
    expect(stub.items.map((i) => i.name)).toEqual(['icudt78l/zu_ZA.res']);
    // Past the stub package, the old data is zeros.
    expect(r.exe.subarray(100 + stub.length + 16, 100 + r.removed).every((b) => b === 0)).toBe(true);
    expect(findIcuCommonData(r.dat)!.items.length).toBe(6);
    expect(() => slimNodeIcu(Buffer.alloc(1000), 'node')).toThrow(expect.objectContaining({ code: 'FERRY_E_INITRD_SLIM' }));
  });

  it('refuses to keep a last item whose length it cannot know', () => {
    const odd = common('icudt78l', [['en.res', resb(6, 1)], ['zz.icu', Buffer.concat([header('Xxxx'), Buffer.alloc(16, 2)])]]);
    const d = findIcuCommonData(odd)!;
    expect(d.lastKnown).toBe(false);
    expect(() => filterIcuCommonData(odd, d, () => true)).toThrow(expect.objectContaining({ code: 'FERRY_E_INITRD_SLIM' }));
    expect(findIcuCommonData(filterIcuCommonData(odd, d, (n) => n.endsWith('en.res')))!.items.length).toBe(1);
  });
});

describe('slimming a planned archive', () => {
  const lib = elf({ '.rodata': Buffer.alloc(64, 0x33) });
  const exe = Buffer.concat([Buffer.alloc(64, 0x7f), common('icudt78l', ITEMS), Buffer.alloc(64, 0x7e)]);
  const host: Record<string, Buffer> = { '/h/installer': exe, '/h/libicudata.so.72.1': lib };
  const plan = () => {
    const entries: CpioEntry[] = [
      { path: 'usr', kind: 'dir', mode: 0o755 },
      { path: 'usr/share', kind: 'dir', mode: 0o755 },
      { path: 'usr/bin/ferry-installer', kind: 'file', mode: 0o755, source: '/h/installer' },
      { path: 'usr/lib/x86_64-linux-gnu/libicudata.so.72.1', kind: 'file', mode: 0o644, source: '/h/libicudata.so.72.1' },
    ];
    return { entries, origin: new Map([['usr/bin/ferry-installer', 'ferry-installer'], ['usr/lib/x86_64-linux-gnu/libicudata.so.72.1', 'libicu72']]) };
  };
  const spec = parsePackageList('kernel linux-image-amd64\nhollow /usr/lib/x86_64-linux-gnu/libicudata.so.72.1 .rodata\n');

  it('replaces the installer and the hollowed library by their slim bytes and adds the ICU file', () => {
    const p = plan();
    const log = slimPlan(p, spec.hollow, (f) => host[f]);
    const by = new Map(p.entries.map((e) => [e.path, e]));
    expect(by.get('usr/bin/ferry-installer')!.source).toBeUndefined();
    expect(findIcuCommonData(by.get('usr/bin/ferry-installer')!.data!)!.items.length).toBe(1);
    expect(findIcuCommonData(by.get('usr/share/ferry/icu/icudt78l.dat')!.data!)!.items.length).toBe(6);
    expect(p.origin.get('usr/share/ferry/icu/icudt78l.dat')).toBe('ferry-installer');
    expect(by.get('usr/share/ferry/icu')!.kind).toBe('dir');
    const s = elfSection(lib, '.rodata')!;
    expect(by.get('usr/lib/x86_64-linux-gnu/libicudata.so.72.1')!.data!.subarray(s.offset, s.offset + s.size).every((b) => b === 0)).toBe(true);
    expect(log).toEqual([expect.stringMatching(/^installer: its ICU data .* in \/usr\/share\/ferry\/icu\/icudt78l\.dat$/), expect.stringMatching(/libicudata\.so\.72\.1: \.rodata \(0\.0 MiB\) zero-filled \(libicu72\)/)]);
  });

  it('carries an installer without ICU data as it is, and refuses a hollow line for a file it does not carry', () => {
    const p = plan();
    const log = slimPlan(p, [], () => Buffer.alloc(256));
    expect(log).toEqual(['installer: no linked ICU data, carried as it is']);
    expect(p.entries.find((e) => e.path === 'usr/bin/ferry-installer')!.source).toBe('/h/installer');
    const other = parsePackageList('kernel linux-image-amd64\nhollow /usr/lib/libnothere.so.1 .rodata\n');
    expect(() => slimPlan(plan(), other.hollow, (f) => host[f])).toThrow(expect.objectContaining({ code: 'FERRY_E_INITRD_SLIM', message: expect.stringContaining('line 2') }));
  });

  it('parses hollow lines and says how to write a bad one', () => {
    expect(spec.hollow).toEqual([{ path: '/usr/lib/x86_64-linux-gnu/libicudata.so.72.1', section: '.rodata', line: 2 }]);
    expect(() => parsePackageList('kernel linux-image-amd64\nhollow libicudata.so .rodata\n')).toThrow(/hollow \/PATH \.SECTION/);
    expect(() => parsePackageList('kernel linux-image-amd64\nhollow /a .rodata\nhollow /a .data\n')).toThrow(/hollowed twice/);
  });
});

/**
 * What the boot environment carries twice or never reads, made to cost nothing compressed.
 * Pure functions on the bytes of host files (initrd/build.ts reads and applies them).
 *
 * Two copies of the Unicode data (ICU) were 20 of the 60 MB of the compressed boot environment:
 *  - Node's own, linked into the installer executable (full ICU, 30+ MB). `slimNodeIcu` cuts it
 *    out: the executable keeps its layout with the data zero-filled but for a valid package of
 *    one item (ICU accepts it, finds nothing else in it and loads its data file), and a filtered copy (the root and English locales,
 *    collation, normalization, time zones: what the installer's Intl, localeCompare and
 *    normalize use; no legacy character sets, transliterators, line-break or CJK/Thai word
 *    dictionaries) goes beside it as a file that Node loads through NODE_ICU_DATA (the init
 *    script exports it). Other locales fall back to root.
 *  - Debian's libicudata, which aria2 brings through libxml2 (libxml2 → libicuuc → libicudata).
 *    aria2 reads no XML on Ferry's code paths (torrents are bencoded; no metalink, no XML-RPC),
 *    and libxml2 uses ICU only for encodings it has no built-in or iconv converter for.
 *    `hollowElfSection` zero-fills the library's data section (packages.txt `hollow` lines):
 *    the loader still finds the library and its one symbol, and ICU reports "invalid data"
 *    if anything ever asks it for a converter.
 * Zeros compress to nothing; the files keep their unpacked size in RAM (as before).
 */
import { FerryError } from '../common/errors.js';
import type { CpioEntry } from './cpio.js';
import { mergedUsr } from './plan.js';
import type { PackageSpec } from './spec.js';

/** The ELF section `name`'s file range, or undefined (no such section, not a 64-bit LE ELF). */
export function elfSection(elf: Buffer, name: string): { offset: number; size: number } | undefined {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return undefined;
  const shoff = Number(elf.readBigUInt64LE(40));
  const shentsize = elf.readUInt16LE(58);
  const shnum = elf.readUInt16LE(60);
  const shstrndx = elf.readUInt16LE(62);
  if (!shoff || shoff + shentsize * shnum > elf.length || shstrndx >= shnum) return undefined;
  const sh = (i: number) => shoff + i * shentsize;
  const strOff = Number(elf.readBigUInt64LE(sh(shstrndx) + 24));
  for (let i = 0; i < shnum; i++) {
    const nameOff = strOff + elf.readUInt32LE(sh(i));
    const end = elf.indexOf(0, nameOff);
    if (elf.toString('latin1', nameOff, end) !== name) continue;
    const type = elf.readUInt32LE(sh(i) + 4);
    const offset = Number(elf.readBigUInt64LE(sh(i) + 24));
    const size = Number(elf.readBigUInt64LE(sh(i) + 32));
    // SHT_NOBITS (8) has no bytes in the file.
    if (type === 8 || offset + size > elf.length) return undefined;
    return { offset, size };
  }
  return undefined;
}

/** A copy of `elf` with the section `name` zero-filled. Throws FERRY_E_INITRD_SLIM when there is no such section. */
export function hollowElfSection(elf: Buffer, name: string, what: string): Buffer {
  const s = elfSection(elf, name);
  if (!s) {
    throw new FerryError('FERRY_E_INITRD_SLIM', `${what} has no ELF section ${name} to hollow`, {
      details: { file: what, section: name },
      hint: 'the package changed: check the `hollow` line of initrd/packages.txt against `readelf -S` of the file',
    });
  }
  const out = Buffer.from(elf);
  out.fill(0, s.offset, s.offset + s.size);
  return out;
}

/** ICU common data ("CmnD" package, little-endian): where it is in a buffer and what it holds. */
export interface IcuCommonData {
  /** Offset of its header in the buffer. */
  offset: number;
  /** Its length: the header, the table of contents, the names and every item. */
  length: number;
  /** The package name, "icudt78l". */
  name: string;
  items: { name: string; offset: number; length: number }[];
  /** Whether the last item's length is known (a resource bundle); else it counts as 0 bytes. */
  lastKnown: boolean;
}

/**
 * The header of an ICU data package: headerSize (u16), magic 0xda27, UDataInfo (size u16,
 * reserved u16, isBigEndian, charsetFamily, sizeofUChar, reserved, dataFormat "CmnD", …).
 */
function isCommonHeader(b: Buffer, h: number): boolean {
  return h >= 0 && h + 32 <= b.length && b[h + 2] === 0xda && b[h + 3] === 0x27 && b[h + 8] === 0 && b[h + 10] === 2 && b.toString('latin1', h + 12, h + 16) === 'CmnD';
}

/** Find the ICU common data linked into an executable (or a .dat file's own bytes); undefined when there is none. */
export function findIcuCommonData(b: Buffer): IcuCommonData | undefined {
  let i = -1;
  while ((i = b.indexOf('CmnD', i + 1, 'latin1')) >= 0) {
    const h = i - 12;
    if (!isCommonHeader(b, h)) continue;
    const hs = b.readUInt16LE(h);
    const base = h + hs;
    const count = b.readUInt32LE(base);
    if (count === 0 || base + 4 + 8 * count > b.length) continue;
    const toc: { nameOff: number; dataOff: number }[] = [];
    for (let k = 0; k < count; k++) toc.push({ nameOff: b.readUInt32LE(base + 4 + 8 * k), dataOff: b.readUInt32LE(base + 8 + 8 * k) });
    const str = (o: number) => b.toString('latin1', base + o, b.indexOf(0, base + o));
    const items = toc.map((t, k) => ({ name: str(t.nameOff), offset: t.dataOff, length: (k + 1 < count ? toc[k + 1].dataOff : t.dataOff) - t.dataOff }));
    const last = items[items.length - 1];
    const lastLength = itemLength(b, base + last.offset);
    // Without the last item's length the data's end is unknown: take it as ending where that item starts.
    last.length = lastLength ?? 0;
    const slash = items[0].name.indexOf('/');
    if (slash < 0) continue;
    return { offset: h, length: hs + last.offset + last.length, name: items[0].name.slice(0, slash), items, lastKnown: lastLength !== undefined };
  }
  return undefined;
}

/**
 * The length of the last item, which the table of contents does not give: known for a resource
 * bundle ("ResB": its indexes give the bundle's top in 32-bit units), which the last item of
 * ICU's data is (its names sort with a locale, "zu.res", last). Undefined for other formats.
 */
function itemLength(b: Buffer, at: number): number | undefined {
  if (at + 32 > b.length || b[at + 2] !== 0xda || b[at + 3] !== 0x27 || b.toString('latin1', at + 12, at + 16) !== 'ResB') return undefined;
  const hs = b.readUInt16LE(at);
  // body: the root resource, then indexes[0] = how many indexes, indexes[3] = the bundle's top.
  if (at + hs + 20 > b.length || (b.readUInt32LE(at + hs + 4) & 0xff) < 4) return undefined;
  const len = hs + 4 * b.readUInt32LE(at + hs + 16);
  return at + len <= b.length ? len : undefined;
}

/** The locale-named resource bundles ("de.res", "coll/fr_CA.res", "zh_Hant_HK.res"), not the shared ones. */
const LOCALE_RES = /^(?:[a-z]{2,3}|[a-z]{2,3}_[A-Za-z0-9_]+)\.res$/;
/** The locales kept: root (every lookup's last fallback) and English (the installer's LANG is C). */
const KEEP_LOCALES = /^(?:root|en|en_US|en_US_POSIX|en_001)\.res$/;

/** Whether the filtered data keeps an item ("icudt78l/coll/de.res" → no). */
export function keepIcuItem(name: string): boolean {
  const rel = name.slice(name.indexOf('/') + 1);
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  // Dictionaries for word breaks in CJK, Thai, Lao, Khmer, Burmese, and the line-break rules:
  // the installer breaks no text into lines or words.
  if (base.endsWith('.dict') || /^line.*\.brk$/.test(base)) return false;
  // Legacy character sets (TextDecoder of anything but UTF-8/16 and latin1 is not used), the
  // transliterators and the character names (neither is reachable from JavaScript).
  if (base.endsWith('.cnv') || rel.startsWith('translit/') || base === 'unames.icu') return false;
  if (base === 'res_index.res' || base === 'pool.res') return true;
  if (LOCALE_RES.test(base)) return KEEP_LOCALES.test(base);
  return true;
}

/**
 * A new common data package with only the items `keep` says yes to: the same header, a table
 * of contents, the names, and each item at a 16-byte boundary (ICU's own alignment).
 */
export function filterIcuCommonData(b: Buffer, d: IcuCommonData, keep: (name: string) => boolean = keepIcuItem): Buffer {
  const hs = b.readUInt16LE(d.offset);
  const base = d.offset + hs;
  const kept = d.items.filter((it) => keep(it.name));
  const last = d.items[d.items.length - 1];
  if (!d.lastKnown && kept.includes(last)) {
    throw new FerryError('FERRY_E_INITRD_SLIM', `the ICU data ${d.name} ends with ${last.name}, whose length is unknown, and the filter keeps it`, {
      details: { item: last.name },
      hint: 'a Ferry bug with this Node\'s ICU data: report it (initrd/slim.ts)',
    });
  }
  const names = Buffer.concat(kept.map((it) => Buffer.from(it.name + '\0', 'latin1')));
  const tocLen = 4 + 8 * kept.length;
  const align = (n: number) => (n + 15) & ~15;
  let at = align(tocLen + names.length);
  const toc = Buffer.alloc(tocLen);
  toc.writeUInt32LE(kept.length, 0);
  let nameAt = tocLen;
  const bodies: Buffer[] = [];
  kept.forEach((it, k) => {
    toc.writeUInt32LE(nameAt, 4 + 8 * k);
    toc.writeUInt32LE(at, 8 + 8 * k);
    nameAt += Buffer.byteLength(it.name, 'latin1') + 1;
    const body = b.subarray(base + it.offset, base + it.offset + it.length);
    bodies.push(body, Buffer.alloc(align(body.length) - body.length));
    at = align(at + body.length);
  });
  const head = Buffer.concat([b.subarray(d.offset, base), toc, names]);
  return Buffer.concat([head, Buffer.alloc(align(tocLen + names.length) - (tocLen + names.length)), ...bodies]);
}

/**
 * The installer executable without its linked ICU data, and that data filtered, to be carried
 * as NODE_ICU_DATA/<name>.dat. Throws FERRY_E_INITRD_SLIM when the executable has no ICU data.
 */
export function slimNodeIcu(exe: Buffer, what: string): { exe: Buffer; dat: Buffer; name: string; removed: number } {
  const d = findIcuCommonData(exe);
  if (!d) {
    throw new FerryError('FERRY_E_INITRD_SLIM', `${what} holds no ICU data to move out`, {
      details: { file: what },
      hint: 'the installer was built from a Node without full ICU: nothing to slim; build it from the Node that `make deps` installs',
    });
  }
  const dat = filterIcuCommonData(exe, d);
  // ICU must still accept the linked-in data (an invalid one fails ICU's start, and with it
  // Node's) but find nothing in it, so that it goes on to NODE_ICU_DATA's file: a package of
  // one tiny item, the last, which the filtered file has too.
  const last = d.items[d.items.length - 1].name;
  const stub = filterIcuCommonData(exe, d, (n) => n === last);
  const out = Buffer.from(exe);
  out.fill(0, d.offset, d.offset + d.length);
  stub.copy(out, d.offset);
  return { exe: out, dat, name: d.name, removed: d.length };
}

/** The installer's place in the archive, and where its ICU data goes (the init script's NODE_ICU_DATA). */
export const INSTALLER_PATH = 'usr/bin/ferry-installer';
export const ICU_DIR = 'usr/share/ferry/icu';

/**
 * Apply the slimming to a planned archive: the installer's ICU data moved out into ICU_DIR,
 * each `hollow` file's section zero-filled. Entries become bytes (`data`) instead of host files;
 * `read` reads a host file. Returns lines for the build log. An installer without linked ICU
 * data (a test's stand-in) is carried as it is.
 */
export function slimPlan(
  plan: { entries: CpioEntry[]; origin: Map<string, string> },
  hollow: PackageSpec['hollow'],
  read: (host: string) => Buffer,
): string[] {
  const log: string[] = [];
  const at = new Map(plan.entries.map((e, i) => [e.path, i]));
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const inst = at.get(INSTALLER_PATH);
  if (inst !== undefined && plan.entries[inst].source) {
    const exe = read(plan.entries[inst].source!);
    if (findIcuCommonData(exe)) {
      const r = slimNodeIcu(exe, plan.entries[inst].source!);
      plan.entries[inst] = { ...plan.entries[inst], source: undefined, data: r.exe };
      for (const d of ['usr/share/ferry', ICU_DIR]) {
        if (!at.has(d)) {
          plan.entries.push({ path: d, kind: 'dir', mode: 0o755 });
          plan.origin.set(d, 'dirs');
        }
      }
      const dat = `${ICU_DIR}/${r.name}.dat`;
      plan.entries.push({ path: dat, kind: 'file', mode: 0o644, data: r.dat });
      plan.origin.set(dat, 'ferry-installer');
      log.push(`installer: its ICU data (${mib(r.removed)}) zero-filled, ${mib(r.dat.length)} of it (root and English locales) in /${dat}`);
    } else log.push('installer: no linked ICU data, carried as it is');
  }
  for (const h of hollow) {
    const p = mergedUsr(h.path);
    const i = at.get(p);
    const e = i === undefined ? undefined : plan.entries[i];
    if (!e || e.kind !== 'file' || !e.source) {
      throw new FerryError('FERRY_E_INITRD_SLIM', `initrd/packages.txt line ${h.line}: "hollow ${h.path}" names a file the boot environment does not carry`, {
        details: { path: h.path, line: h.line },
        hint: 'the package or its version changed (a new soname?): correct or remove the line',
      });
    }
    const out = hollowElfSection(read(e.source), h.section, h.path);
    const s = elfSection(out, h.section)!;
    plan.entries[i!] = { ...e, source: undefined, data: out };
    log.push(`${h.path}: ${h.section} (${mib(s.size)}) zero-filled (${plan.origin.get(p)})`);
  }
  return log;
}

/**
 * The tar header codec the reader (tar.ts) decodes with: header fields (NUL-terminated strings,
 * octal and GNU base-256 numbers), the checksum, the end-of-archive block, PAX records (values
 * binary-safe) and PAX times, and the entry model they produce.
 */
import { FerryError } from '../common/errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  path: string;
  type: EntryType;
  mode: number; // permission and special bits (07777)
  uid: number;
  gid: number;
  /** Seconds since the epoch, with the fraction PAX may carry. */
  mtime: number;
  /** Bytes of file content in the archive (for a sparse file: the stored data, not the holes). */
  size: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
  /** Present for sparse files: the apparent size and where each stored segment goes. */
  sparse?: { realSize: number; map: Array<[offset: number, length: number]> };
}


/** Tar's record unit: headers and padded data are whole blocks. */
export const BLOCK = 512;
/** The largest pax, global pax or GNU long name/link header read. */
export const MAX_META = 1 << 20;
export const META_NAMES: Record<string, string> = { x: 'pax header', g: 'global pax header', L: 'GNU long name', K: 'GNU long link name' };

export function corrupt(message: string, details: Record<string, unknown> = {}): FerryError {
  return new FerryError('FERRY_E_LAYER_CORRUPT', `the layer is not a valid tar stream: ${message}`, {
    details,
    hint: 'the stored blob is damaged or not a tar: run ferry image verify, and import the image again from its source (ferry image import NAME --dir DIR)',
  });
}

export function str(b: Buffer, start: number, end: number): string {
  let e = start;
  while (e < end && b[e] !== 0) e++;
  return b.toString('utf8', start, e);
}

export function num(b: Buffer, start: number, end: number): number {
  if (b[start] & 0x80) {
    // GNU base-256: big-endian two's complement, first byte's top bit is the marker.
    let v = b[start] & 0x3f;
    const neg = (b[start] & 0x40) !== 0;
    for (let i = start + 1; i < end; i++) v = v * 256 + b[i];
    return neg ? v - 2 ** (6 + 8 * (end - start - 1)) : v;
  }
  let v = 0;
  let i = start;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  for (; i < end; i++) {
    const c = b[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw corrupt(`bad octal number in header field at offset ${start}`, { field: b.toString('latin1', start, end) });
    v = v * 8 + (c - 0x30);
  }
  return v;
}

export function checksumOk(h: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const want = num(h, 148, 156);
  return want === unsigned || want === signed;
}

export function isZero(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

/** PAX records: "LEN key=value\n", values may be binary (xattrs). */
export function parsePax(buf: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break;
    let sp = i;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    const len = parseInt(buf.toString('latin1', i, sp), 10);
    if (!Number.isFinite(len) || len <= 0 || i + len > buf.length) throw corrupt('bad PAX extended header record', { at: i });
    const rec = buf.subarray(sp + 1, i + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw corrupt('PAX record without "="', { at: i });
    out.push([rec.toString('utf8', 0, eq), rec.subarray(eq + 1)]);
    i += len;
  }
  return out;
}

export const TYPES: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo', D: 'dir',
};


/**
 * A pax time (`SEC.FRACTION`) as seconds for utimes(2) through Node, which takes a double and
 * keeps microseconds (truncating). A double near 2^31 s is only good to about 240 ns, so
 * `Number('1796245145.255314999')` can land just above or below the microsecond boundary and
 * the file gets the next or previous microsecond; the middle of the intended microsecond is
 * safe from that rounding, so every time is kept exactly to the microsecond.
 */
export function paxTime(v: string): number {
  const m = /^(\d+)(?:\.(\d*))?$/.exec(v);
  if (!m) return Number(v);
  const us = Number(((m[2] ?? '') + '000000').slice(0, 6));
  return Number(m[1]) + (us + 0.5) / 1e6;
}

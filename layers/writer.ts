/**
 * The layer writer: a POSIX (pax) tar stream with fixed headers, as GNU tar reads it.
 *
 * Why not tar-stream's pack: its pax encoder builds records from JavaScript strings
 * (binary xattr values such as security.capability come out re-encoded as UTF-8), a
 * `pax-header` entry cannot carry a body, and a mode of 0 is replaced by 0644. The
 * header format itself is small, so this module writes it directly; tar-stream is
 * still used to read layers (server/store/layers.ts).
 *
 * Conventions, all as GNU tar 1.34 writes and reads them:
 * - ustar headers with numeric owners only (empty uname/gname), mode & 07777;
 * - pax records for what ustar cannot hold: path/linkpath (long or non-ASCII),
 *   uid/gid/size beyond the octal fields, mtime with nanoseconds;
 * - extended attributes as `SCHILY.xattr.NAME=<raw bytes>` (`tar --xattrs`);
 * - sparse files in the PAX 1.0 sparse format (GNU.sparse.major=1, minor=0,
 *   GNU.sparse.name, GNU.sparse.realsize; the data starts with the decimal map);
 * - whiteouts are ordinary empty files named `.wh.NAME` / `.wh..wh..opq` (OCI).
 * Every header field is a function of the entry alone, so the same tree gives the
 * same bytes.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { FerryError } from '../common/errors.js';
import { sparseMap, type TreeEntry } from './tree.js';

const BLOCK = 512;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** One pax record: "LEN key=value\n" where LEN counts the whole record. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
  let len = body.length + String(body.length).length;
  if (String(len).length > String(body.length).length) len = body.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(buf: Buffer, off: number, width: number, value: number): void {
  // width includes the terminating NUL, as GNU tar writes numeric fields.
  buf.write(value.toString(8).padStart(width - 1, '0'), off, width - 1, 'ascii');
  buf[off + width - 1] = 0;
}

export interface UstarFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

/** A 512-byte ustar header. Fields must already fit (the caller moves the rest to pax). */
export function ustarHeader(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'utf8');
  octal(b, 100, 8, f.mode & 0o7777);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtime);
  b.fill(0x20, 148, 156);
  b.write(f.typeflag, 156, 1, 'ascii');
  if (f.linkname) b.write(f.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  octal(b, 329, 8, f.devmajor ?? 0);
  octal(b, 337, 8, f.devminor ?? 0);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

function fitsUstar(s: string, max = 100): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(s) && Buffer.byteLength(s) <= max;
}

/** A stand-in ustar name for an entry whose real name travels in a pax record. */
function placeholder(prefix: string, name: string): string {
  return `${prefix}/${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

function mtimeRecord(ns: bigint): string {
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  const sec = a / 1_000_000_000n;
  const frac = (a % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${sec}${frac ? '.' + frac : ''}`;
}

const TYPEFLAG: Record<string, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** What one entry looks like in the archive: header blocks, then how to produce its data. */
export interface EntryPlan {
  header: Buffer;
  /** Data bytes after the header (before padding). */
  dataSize: number;
  sparse?: { map: [number, number][]; mapBlock: Buffer };
}

/** The name an entry has inside a layer: `./` for the root, `dir/` for directories. */
export function tarName(e: { path: string; type: string }): string {
  if (e.path === '.') return './';
  return e.type === 'dir' ? e.path + '/' : e.path;
}

export function planEntry(e: TreeEntry, opts: { sparse?: boolean } = {}): EntryPlan {
  const name = tarName(e);
  const records: Buffer[] = [];
  let sparse: EntryPlan['sparse'];
  let dataSize = e.type === 'file' ? e.size : 0;
  if (e.type === 'file' && opts.sparse !== false && e.size > 0 && e.blocks * 512 < e.size) {
    const map = sparseMap(e.abs, e.size);
    if (map) {
      const text = [String(map.length), ...map.flatMap(([o, l]) => [String(o), String(l)])].join('\n') + '\n';
      const padded = Buffer.alloc(Math.ceil(Buffer.byteLength(text) / BLOCK) * BLOCK);
      padded.write(text, 0, 'ascii');
      sparse = { map, mapBlock: padded };
      dataSize = padded.length + map.reduce((s, r) => s + r[1], 0);
    }
  }
  let hdrName = name;
  if (sparse) {
    records.push(paxRecord('GNU.sparse.major', '1'), paxRecord('GNU.sparse.minor', '0'), paxRecord('GNU.sparse.name', name), paxRecord('GNU.sparse.realsize', String(e.size)));
    hdrName = fitsUstar(name, 80) ? `GNUSparseFile.0/${name.split('/').pop()}` : placeholder('GNUSparseFile.0', name);
    if (!fitsUstar(hdrName)) hdrName = placeholder('GNUSparseFile.0', name);
  } else if (!fitsUstar(name)) {
    records.unshift(paxRecord('path', name));
    hdrName = placeholder('PaxPath', name) + (e.type === 'dir' ? '/' : '');
  }
  let linkname = e.linkname;
  if (linkname !== undefined && !fitsUstar(linkname)) {
    records.push(paxRecord('linkpath', linkname));
    linkname = placeholder('PaxLink', linkname);
  }
  let uid = e.uid, gid = e.gid, size = dataSize;
  if (uid > MAX_OCTAL_7) {
    records.push(paxRecord('uid', String(uid)));
    uid = 0;
  }
  if (gid > MAX_OCTAL_7) {
    records.push(paxRecord('gid', String(gid)));
    gid = 0;
  }
  if (size > MAX_OCTAL_11) {
    records.push(paxRecord('size', String(size)));
    size = 0;
  }
  const sec = e.mtimeNs / 1_000_000_000n;
  let mtime = Number(sec);
  if (e.mtimeNs % 1_000_000_000n !== 0n || e.mtimeNs < 0n || mtime > MAX_OCTAL_11) {
    records.push(paxRecord('mtime', mtimeRecord(e.mtimeNs)));
    if (e.mtimeNs < 0n || mtime > MAX_OCTAL_11) mtime = 0;
  }
  for (const [k, v] of e.xattrs) records.push(paxRecord(`SCHILY.xattr.${k}`, v));

  const main = ustarHeader({
    name: hdrName,
    mode: e.mode,
    uid,
    gid,
    size: e.type === 'file' ? size : 0,
    mtime,
    typeflag: TYPEFLAG[e.type],
    linkname,
    devmajor: e.devmajor,
    devminor: e.devminor,
  });
  if (records.length === 0) return { header: main, dataSize, sparse };
  const pax = Buffer.concat(records);
  const paxHdr = ustarHeader({ name: placeholder('PaxHeaders', name), mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime, typeflag: 'x' });
  return { header: Buffer.concat([paxHdr, pad(pax), main]), dataSize, sparse };
}

function pad(b: Buffer): Buffer {
  const rem = b.length % BLOCK;
  return rem === 0 ? b : Buffer.concat([b, Buffer.alloc(BLOCK - rem)]);
}

/** An empty regular file entry: OCI whiteouts. */
export function whiteoutEntry(path: string, mtimeNs = 0n): TreeEntry {
  return { path, abs: '', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs, size: 0, blocks: 0, xattrs: [] };
}

const CHUNK = 1 << 20;

/**
 * File contents by synchronous reads: an import reads tens of thousands of small files,
 * and a thread-pool round trip per open/read/close made that 3-6 times slower than GNU
 * tar (MACHINE-NOTES: synchronous calls are the fast way in Node). The generator still
 * yields between chunks, so the compressor's pipe keeps its backpressure.
 */
function* fileData(abs: string, regions: [number, number][], expected: number): Generator<Buffer> {
  const fd = openSync(abs, 'r');
  try {
    for (const [off, len] of regions) {
      let pos = off;
      const end = off + len;
      while (pos < end) {
        const want = Math.min(CHUNK, end - pos);
        const buf = Buffer.allocUnsafe(want);
        const n = readSync(fd, buf, 0, want, pos);
        if (n === 0) {
          throw new FerryError('FERRY_E_TREE_CHANGED', `${abs} shrank while it was being stored (expected ${expected} bytes)`, {
            details: { path: abs, expected },
            hint: 'stop whatever writes into the tree, then import again',
          });
        }
        pos += n;
        yield n === want ? buf : buf.subarray(0, n);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Small entries are gathered into one buffer so the consumer sees few, large chunks. */
const BATCH = 1 << 20;

/** The whole archive as a stream of buffers, ending with the two zero blocks. */
export async function* tarStream(entries: Iterable<TreeEntry>, opts: { sparse?: boolean } = {}): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingSize = 0;
  const take = () => {
    const b = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingSize);
    pending = [];
    pendingSize = 0;
    return b;
  };
  const push = (b: Buffer) => {
    pending.push(b);
    pendingSize += b.length;
  };
  for (const e of entries) {
    const plan = planEntry(e, opts);
    push(plan.header);
    if (e.type === 'file' && plan.dataSize > 0) {
      if (plan.sparse) push(plan.sparse.mapBlock);
      const regions: [number, number][] = plan.sparse ? plan.sparse.map.filter((r) => r[1] > 0) : [[0, e.size]];
      for (const chunk of fileData(e.abs, regions, e.size)) {
        push(chunk);
        if (pendingSize >= BATCH) yield take();
      }
      const rem = plan.dataSize % BLOCK;
      if (rem) push(Buffer.alloc(BLOCK - rem));
    }
    if (pendingSize >= BATCH) yield take();
  }
  push(Buffer.alloc(BLOCK * 2));
  yield take();
}

/**
 * Reading a directory tree with every attribute a layer must keep: type, numeric
 * owner, all mode bits, nanosecond mtime, symlink targets, hardlinks (by inode),
 * device numbers and extended attributes. Entries come back sorted by path bytes so
 * the same tree always gives the same layer.
 *
 * Node has no xattr API; one `getfattr -R` run dumps the whole tree's attributes
 * (every namespace, including security.capability) instead of a process per file.
 */
import { lstatSync, readdirSync, readlinkSync, openSync, readSync, closeSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.js';
import { run } from '../common/run.js';
import { parseGetfattr } from './getfattr.js';

export { parseGetfattr, unescapeGetfattr } from './getfattr.js';

export type EntryType = 'dir' | 'file' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TreeEntry {
  /** Path relative to the root, '/'-separated; '.' is the root itself. */
  path: string;
  abs: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  /** Bytes of a regular file (0 for others). */
  size: number;
  /** 512-byte blocks allocated (to find sparse files). */
  blocks: number;
  /** Symlink target, or for a hardlink the path of the entry it links to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Sorted by name. */
  xattrs: [string, Buffer][];
  /** dev:ino when the inode has several names, else undefined. */
  inode?: string;
}

export interface TreeScan {
  root: string;
  entries: TreeEntry[];
  /** Entries that cannot be stored (sockets), named so the operator knows. */
  skipped: { path: string; reason: string }[];
  /** Bytes of regular-file content (each inode once): the size of the uncompressed layer, roughly. */
  contentBytes: number;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFIFO = 0o010000, S_IFSOCK = 0o140000;

/** Linux's dev_t encoding (glibc major()/minor()). */
export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** Byte-wise comparison of UTF-8 paths, as the sort order of layers. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export async function readXattrs(root: string): Promise<Map<string, [string, Buffer][]>> {
  const r = await run(['getfattr', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', root], { quiet: true });
  return parseGetfattr(r.stdout);
}

function typeOf(st: BigIntStats): EntryType | 'socket' | undefined {
  switch (Number(st.mode) & S_IFMT) {
    case S_IFDIR: return 'dir';
    case S_IFREG: return 'file';
    case S_IFLNK: return 'symlink';
    case S_IFCHR: return 'char';
    case S_IFBLK: return 'block';
    case S_IFIFO: return 'fifo';
    case S_IFSOCK: return 'socket';
  }
  return undefined;
}

/** Read a whole tree. Hardlinks after the first name of an inode become `hardlink` entries. */
export async function scanTree(root: string): Promise<TreeScan> {
  let rootSt: BigIntStats;
  try {
    rootSt = lstatSync(root, { bigint: true });
  } catch (e) {
    throw new FerryError('FERRY_E_SOURCE_MISSING', `the directory ${root} cannot be read: ${(e as Error).message}`, {
      details: { path: root },
      hint: 'give an existing directory with --dir',
    });
  }
  if (typeOf(rootSt) !== 'dir') {
    throw new FerryError('FERRY_E_SOURCE_MISSING', `${root} is not a directory`, { details: { path: root }, hint: 'give a directory with --dir' });
  }
  const xattrs = await readXattrs(root);
  const entries: TreeEntry[] = [];
  const skipped: TreeScan['skipped'] = [];
  const firstName = new Map<string, string>();
  let contentBytes = 0;

  const visit = (abs: string, rel: string, st: BigIntStats) => {
    const t = typeOf(st);
    if (t === 'socket' || t === undefined) {
      skipped.push({ path: rel, reason: t === 'socket' ? 'sockets cannot be stored in a layer (they are created by the program that listens)' : 'unknown file type' });
      return;
    }
    const e: TreeEntry = {
      path: rel,
      abs,
      type: t,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      size: t === 'file' ? Number(st.size) : 0,
      blocks: Number(st.blocks),
      xattrs: xattrs.get(abs) ?? [],
    };
    if (t === 'symlink') {
      e.linkname = readlinkRaw(abs);
    } else if (t === 'char' || t === 'block') {
      e.devmajor = devMajor(st.rdev);
      e.devminor = devMinor(st.rdev);
    }
    if (t !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      e.inode = key;
      const first = firstName.get(key);
      if (first !== undefined) {
        e.type = 'hardlink';
        e.linkname = first;
        e.size = 0;
      } else firstName.set(key, rel);
    }
    if (e.type === 'file') contentBytes += e.size;
    entries.push(e);
    if (t === 'dir') {
      let names: Buffer[];
      try {
        names = readdirSync(abs, { encoding: 'buffer' }) as Buffer[];
      } catch (err) {
        throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read the directory ${abs}: ${(err as Error).message}`, { details: { path: abs }, hint: 'run as root so every file can be read' });
      }
      const decoded = names.map((b) => {
        const s = b.toString('utf8');
        if (!Buffer.from(s, 'utf8').equals(b)) {
          throw new FerryError('FERRY_E_NAME_NOT_UTF8', `the name ${JSON.stringify(b.toString('latin1'))} in ${abs} is not valid UTF-8`, {
            details: { dir: abs, nameHex: b.toString('hex') },
            hint: 'rename the file to a UTF-8 name (convmv can do this); layers store names as UTF-8',
          });
        }
        return s;
      });
      decoded.sort(comparePaths);
      for (const name of decoded) {
        const childAbs = join(abs, name);
        visit(childAbs, rel === '.' ? name : `${rel}/${name}`, lstatSync(childAbs, { bigint: true }));
      }
    }
  };
  visit(root.replace(/\/+$/, '') || '/', '.', rootSt);
  // Children were visited in sorted order per directory; a global byte sort keeps the
  // order identical to what a reader sees even when names contain bytes below '/'.
  entries.sort((a, b) => (a.path === '.' ? -1 : b.path === '.' ? 1 : comparePaths(a.path, b.path)));
  // After the global sort the first name of a hardlinked inode may have changed.
  relinkHardlinks(entries);
  return { root, entries, skipped, contentBytes };
}

/** Make the first entry (in layer order) of each multiply-linked inode the file, the rest links to it. */
export function relinkHardlinks(entries: TreeEntry[]): void {
  const first = new Map<string, TreeEntry>();
  for (const e of entries) {
    if (!e.inode) continue;
    const f = first.get(e.inode);
    if (!f) {
      if (e.type === 'hardlink') {
        // This name now comes first: it carries the content.
        const st = lstatSync(e.abs, { bigint: true });
        e.type = typeOf(st) as EntryType;
        e.size = e.type === 'file' ? Number(st.size) : 0;
        e.linkname = e.type === 'symlink' ? readlinkRaw(e.abs) : undefined;
      }
      first.set(e.inode, e);
    } else {
      if (e.type !== 'hardlink') {
        e.type = 'hardlink';
        e.size = 0;
      }
      e.linkname = f.path;
    }
  }
}

function readlinkRaw(abs: string): string {
  // A Buffer result keeps non-UTF-8 targets detectable.
  const b = readlinkSync(abs, { encoding: 'buffer' }) as Buffer;
  const s = b.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(b)) {
    throw new FerryError('FERRY_E_NAME_NOT_UTF8', `the symlink ${abs} points to a target that is not valid UTF-8`, {
      details: { path: abs, targetHex: b.toString('hex') },
      hint: 'point the link at a UTF-8 path; layers store names as UTF-8',
    });
  }
  return s;
}

/**
 * The data regions of a file that has holes: [offset, length] pairs in 4 KiB steps,
 * found by reading (Node has no SEEK_DATA). Zero-filled blocks count as holes, as GNU
 * tar's --sparse does on file systems without SEEK_HOLE. Returns undefined when the
 * file has no hole worth recording.
 */
export function sparseMap(abs: string, size: number): [number, number][] | undefined {
  const BLOCK = 4096;
  const CHUNK = 1 << 20;
  const buf = Buffer.allocUnsafe(CHUNK);
  const zero = Buffer.alloc(BLOCK);
  const regions: [number, number][] = [];
  const fd = openSync(abs, 'r');
  try {
    let pos = 0;
    let start = -1;
    while (pos < size) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, size - pos), pos);
      if (n <= 0) break;
      for (let i = 0; i < n; i += BLOCK) {
        const len = Math.min(BLOCK, n - i);
        const isZero = len === BLOCK ? buf.subarray(i, i + BLOCK).equals(zero) : buf.subarray(i, i + len).every((x) => x === 0);
        const off = pos + i;
        if (!isZero && start < 0) start = off;
        if (isZero && start >= 0) {
          regions.push([start, off - start]);
          start = -1;
        }
      }
      pos += n;
    }
    if (start >= 0) regions.push([start, size - start]);
  } finally {
    closeSync(fd);
  }
  const data = regions.reduce((s, r) => s + r[1], 0);
  if (data === size) return undefined;
  // A file ending in a hole gets a zero-length region at its end, as GNU tar writes it,
  // so a reader knows the real size from the map alone.
  const last = regions[regions.length - 1];
  if (!last || last[0] + last[1] < size) regions.push([size, 0]);
  return regions;
}

export { S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO };

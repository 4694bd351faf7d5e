/**
 * The initramfs archive: cpio "newc" (the format the kernel unpacks), written so
 * that the same entries always give the same bytes: entries in byte order of their
 * paths (a parent before its children), inode numbers counted in that order, owner
 * root, one fixed mtime (SOURCE_DATE_EPOCH), no device numbers of the build host.
 */
export type EntryKind = 'dir' | 'file' | 'symlink' | 'char';

export interface CpioEntry {
  /** Path inside the archive, relative, without a leading "/" ("usr/bin/busybox"). */
  path: string;
  kind: EntryKind;
  /** Permission bits (0o755…). */
  mode: number;
  /** For files: the content (a host file to read, or the bytes). */
  source?: string;
  data?: Buffer;
  /** For symlinks. */
  target?: string;
  /** For character devices. */
  major?: number;
  minor?: number;
}

const TYPE_BITS: Record<EntryKind, number> = { dir: 0o040000, file: 0o100000, symlink: 0o120000, char: 0o020000 };

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

/** One newc header plus the name and its padding. */
export function newcHeader(f: { ino: number; mode: number; nlink: number; mtime: number; size: number; rmajor?: number; rminor?: number; name: string }): Buffer {
  const name = Buffer.from(f.name + '\0', 'utf8');
  const fields = [f.ino, f.mode, 0, 0, f.nlink, f.mtime, f.size, 0, 0, f.rmajor ?? 0, f.rminor ?? 0, name.length, 0];
  const head = Buffer.from('070701' + fields.map(hex8).join(''), 'latin1');
  return Buffer.concat([head, name, pad4(head.length + name.length)]);
}

/** Byte order of UTF-8 paths: parents sort before their children. */
export function sortEntries(entries: CpioEntry[]): CpioEntry[] {
  const seen = new Map<string, CpioEntry>();
  for (const e of entries) {
    if (!e.path || e.path.startsWith('/') || e.path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw new RangeError(`bad archive path "${e.path}"`);
    }
    seen.set(e.path, e);
  }
  return [...seen.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/**
 * Write the archive through `write` (awaited for back-pressure). `content` gives a
 * file entry's bytes (reads `source`). Returns the archive's length.
 */
export async function writeCpio(
  entries: CpioEntry[],
  opts: { mtime: number; write: (b: Buffer) => Promise<void> | void; content: (e: CpioEntry) => Buffer | Promise<Buffer> },
): Promise<number> {
  let total = 0;
  const out = async (b: Buffer) => {
    total += b.length;
    if (b.length) await opts.write(b);
  };
  let ino = 0;
  for (const e of sortEntries(entries)) {
    ino++;
    const mode = TYPE_BITS[e.kind] | (e.mode & 0o7777);
    let body: Buffer = Buffer.alloc(0);
    if (e.kind === 'file') body = e.data ?? (await opts.content(e));
    else if (e.kind === 'symlink') body = Buffer.from(e.target ?? '', 'utf8');
    await out(
      newcHeader({ ino, mode, nlink: e.kind === 'dir' ? 2 : 1, mtime: opts.mtime, size: body.length, rmajor: e.major, rminor: e.minor, name: e.path }),
    );
    await out(body);
    await out(pad4(body.length));
  }
  await out(newcHeader({ ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, name: 'TRAILER!!!' }));
  return total;
}

/**
 * Where a file's data is in an ISO 9660 image, read from the image itself (a file or a block
 * device: a restore medium on a stick). The boot environment has no xorriso, and the installer
 * needs the byte offset of the medium's records area (ferry/records.bin) to write a failed
 * install's record onto a stick; `ferry media records DEV` reads it back the same way. Only the
 * primary volume descriptor's directory tree is read (names compared without their `;1`
 * version and case-insensitively, as mkisofs-style ISO names are upper case); bounded: at most
 * 64 descriptors, directories of at most 1 MiB.
 */
export type ReadAt = (offset: number, length: number) => Buffer;

const SECTOR = 2048;
const MAX_DIR_BYTES = 1 << 20;

interface DirEntry {
  name: string;
  lba: number;
  size: number;
  dir: boolean;
}

function rootRecord(read: ReadAt): { lba: number; size: number; block: number } | undefined {
  for (let s = 16; s < 16 + 64; s++) {
    const d = read(s * SECTOR, SECTOR);
    if (d.length < SECTOR || d.toString('latin1', 1, 6) !== 'CD001') return undefined;
    if (d[0] === 255) return undefined;
    if (d[0] === 1) {
      const block = d.readUInt16LE(128) || SECTOR;
      return { lba: d.readUInt32LE(156 + 2), size: d.readUInt32LE(156 + 10), block };
    }
  }
  return undefined;
}

function readDir(read: ReadAt, lba: number, size: number, block: number): DirEntry[] {
  if (size > MAX_DIR_BYTES) return [];
  const b = read(lba * block, size);
  const out: DirEntry[] = [];
  let i = 0;
  while (i < b.length) {
    const len = b[i];
    if (len === 0) {
      // Records never cross a sector: the rest of this one is padding.
      i = (Math.floor(i / block) + 1) * block;
      continue;
    }
    if (len < 34 || i + len > b.length) break;
    const nameLen = b[i + 32];
    const raw = b.toString('latin1', i + 33, i + 33 + nameLen);
    if (raw !== '\0' && raw !== '\x01') {
      out.push({ name: raw.split(';')[0].replace(/\.$/, '').toLowerCase(), lba: b.readUInt32LE(i + 2), size: b.readUInt32LE(i + 10), dir: (b[i + 25] & 2) !== 0 });
    }
    i += len;
  }
  return out;
}

/** The byte offset and size of PATH's data (`ferry/records.bin`), or undefined when it is not there. */
export function isoFileExtent(read: ReadAt, path: string): { offset: number; size: number } | undefined {
  const root = rootRecord(read);
  if (!root) return undefined;
  let cur = { lba: root.lba, size: root.size };
  const parts = path.split('/').filter(Boolean);
  for (const [k, part] of parts.entries()) {
    const e = readDir(read, cur.lba, cur.size, root.block).find((x) => x.name === part.toLowerCase());
    if (!e || e.dir !== (k < parts.length - 1)) return undefined;
    cur = { lba: e.lba, size: e.size };
  }
  return { offset: cur.lba * root.block, size: cur.size };
}

/**
 * Write a whole disk image (a restore medium's ISO) byte for byte onto a block device, as `dd`
 * would, after the one in-use check every destructive command runs (installer/disk/in-use.ts):
 * a mounted disk, one holding the running system, a swap, an array or a loop device on it is
 * refused before the first byte. The target must be a whole disk at least as large as the image.
 * The bytes are flushed (fsync) before the write counts as done.
 */
import { closeSync, createReadStream, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { FerryError } from '../../common/errors.js';
import { discoverDisks } from './discover.js';
import { refuseDisksInUse } from './in-use.js';

export interface WriteImageResult {
  disk: string;
  bytes: number;
  seconds: number;
}

export async function writeImageToDisk(image: string, disk: string, o: { onBytes?: (n: number, total: number) => void } = {}): Promise<WriteImageResult> {
  const t0 = Date.now();
  const size = statSync(image).size;
  const found = await discoverDisks({ only: [disk] });
  const d = found.find((x) => x.path === disk) ?? found[0];
  if (!d || !['disk', 'loop'].includes(d.type)) {
    throw new FerryError('FERRY_E_DISK_NOT_FOUND', `${disk} is not a whole disk${d ? ` (lsblk says ${d.type})` : ''}`, { details: { disk }, hint: 'name the whole stick (lsblk -d), not a partition' });
  }
  refuseDisksInUse([d]);
  if (d.size < size) {
    throw new FerryError('FERRY_E_DISK_TOO_SMALL', `${disk} holds ${d.size} bytes; the medium ${image} needs ${size}`, { details: { disk, availableBytes: d.size, requiredBytes: size }, hint: 'use a larger stick' });
  }
  const fd = openSync(d.path, 'r+');
  let written = 0;
  try {
    for await (const chunk of createReadStream(image, { highWaterMark: 4 << 20 })) {
      const b = chunk as Buffer;
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off, written + off);
      written += b.length;
      o.onBytes?.(written, size);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { disk: d.path, bytes: written, seconds: (Date.now() - t0) / 1000 };
}

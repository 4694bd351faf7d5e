/**
 * The one disk in-use check: before a disk is written, it must be writable, nothing may be
 * mounted from it (lsblk sees mounts anywhere in the tree below it, arrays and volumes
 * included), and the running system may not mount or swap on it (/proc/self/mounts and
 * /proc/swaps, which also see what lsblk misses without udev). Used by the install stage and
 * by `ferry layout apply` alike.
 */
import { readFileSync } from 'node:fs';
import { FerryError } from '../../common/errors.js';
import type { BlockDevice } from '../../layout/types.js';

export interface DiskUse {
  disk: string;
  device: string;
  use: string;
}

/** Pure: the disks of `disks` that the running system uses, from /proc/mounts and /proc/swaps text. */
export function disksInUse(disks: string[], mounts: string, swaps: string): DiskUse[] {
  const used: DiskUse[] = [];
  const devs = [
    ...mounts.split('\n').map((l) => l.split(/\s+/)).filter((f) => f[0]?.startsWith('/dev/')).map((f) => ({ device: f[0], use: `mounted on ${f[1]}` })),
    ...swaps.split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter((d) => d?.startsWith('/dev/')).map((d) => ({ device: d, use: 'active swap' })),
  ];
  for (const disk of disks) {
    const re = new RegExp(`^${disk.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(p?[0-9]+)?$`);
    for (const d of devs) if (re.test(d.device)) used.push({ disk, ...d });
  }
  return used;
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Refuse disks that are read-only, have file systems mounted from them (lsblk) or that the
 * running system mounts or swaps on. `found` is what discovery reported for these disks.
 */
export function refuseDisksInUse(found: BlockDevice[], proc: { mounts?: string; swaps?: string } = {}): void {
  for (const d of found) {
    if (d.readOnly) throw new FerryError('FERRY_E_DISK_IN_USE', `${d.path} is read-only`, { details: { device: d.path } });
    if (d.mountpoints.length > 0) {
      throw new FerryError('FERRY_E_DISK_MOUNTED', `${d.path} is in use: ${d.mountpoints.join(', ')} ${d.mountpoints.length === 1 ? 'is' : 'are'} mounted from it`, {
        details: { device: d.path, mountpoints: d.mountpoints },
        hint: 'unmount them (and swapoff) first; Ferry never writes to a disk with mounted file systems, --yes or not',
      });
    }
  }
  const busy = disksInUse(found.map((d) => d.path), proc.mounts ?? readOr('/proc/self/mounts'), proc.swaps ?? readOr('/proc/swaps'));
  if (busy.length) {
    throw new FerryError('FERRY_E_DISK_IN_USE', `refusing to install onto a disk the running system uses: ${busy.map((b) => `${b.device} (${b.use})`).join(', ')}`, {
      details: { busy }, hint: 'choose another disk (--disk), or unmount it and swapoff first; Ferry never overwrites the disk it runs from',
    });
  }
}

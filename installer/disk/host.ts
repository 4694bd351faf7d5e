/**
 * The machine a disk plan runs on, as applying sees it: the command runner and the few things
 * it reads back (device nodes, the kernel's partition geometry, mounts, discovery). Passed in,
 * so the unit tier runs apply with a recording fake (test/harness/fake-disk-host.ts) and
 * checks its order, its failure handling and its teardown without touching a disk.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { linuxView, type SystemView } from './in-use.js';
import { resolve } from 'node:path';
import { run, type Runner } from '../../common/run.js';
import { baseName } from '../../layout/names.js';
import type { BlockDevice } from '../../layout/types.js';
import { discoverDisks } from './discover.js';

export interface DiskHost {
  run: Runner;
  /** The disks as they are now (lsblk). */
  discover(only: string[]): Promise<BlockDevice[]>;
  /** A block device node exists at this path. */
  isBlockDevice(path: string): boolean;
  /** The kernel's start and size of a partition in bytes, undefined when it cannot tell (no sysfs). */
  partitionGeometry(device: string): { start: number; size: number } | undefined;
  /** Something is mounted on this directory. */
  isMountpoint(dir: string): boolean;
  /** Make a mount point (and its parents). */
  mkdir(dir: string): void;
  /** What the in-use check reads (/proc mounts and swaps, sysfs holders, loop devices, O_EXCL opens). */
  system(): SystemView;
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** This machine. */
export const systemHost: DiskHost = {
  run,
  discover: (only) => discoverDisks({ only }),
  isBlockDevice(p) {
    try {
      return statSync(p).isBlockDevice();
    } catch {
      return false;
    }
  },
  partitionGeometry(dev) {
    // sysfs counts 512-byte units whatever the sector size.
    try {
      const base = `/sys/class/block/${baseName(dev)}`;
      return { start: Number(readFileSync(`${base}/start`, 'utf8')) * 512, size: Number(readFileSync(`${base}/size`, 'utf8')) * 512 };
    } catch {
      return undefined;
    }
  },
  isMountpoint(p) {
    const target = resolve(p).replace(/ /g, '\\040');
    return readOr('/proc/self/mountinfo').split('\n').some((l) => l.split(' ')[4] === target);
  },
  mkdir(p) {
    if (!existsSync(p)) mkdirSync(p, { recursive: true });
  },
  system: () => linuxView,
};

/**
 * The one disk in-use check, node side: before a disk is written, probe everything that says
 * it is used (the running system's mounts and swaps, arrays and volumes built on it, loop
 * devices reading it, the running root, and any program holding it open with O_EXCL) and hand
 * the findings to the pure decision in layout/preflight.ts, which the server runs too.
 * Used by the install stage (before the first write) and by `ferry layout apply` alike.
 */
import { closeSync, constants, openSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type Problem } from '../../common/errors.js';
import { baseName } from '../../layout/names.js';
import { diskUseProblems, refuseProblems, type DiskProbe, type PlannedDiskFacts } from '../../layout/preflight.js';
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
    ...mounts.split('\n').map((l) => l.split(/\s+/)).filter((f) => f[0]?.startsWith('/dev/')).map((f) => ({ device: f[0], use: `mounted on ${unescapeMount(f[1] ?? '')}` })),
    ...swaps.split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter((d) => d?.startsWith('/dev/')).map((d) => ({ device: d, use: 'active swap' })),
  ];
  for (const disk of disks) {
    const re = diskRe(disk);
    for (const d of devs) if (re.test(d.device)) used.push({ disk, ...d });
  }
  return used;
}

function diskRe(disk: string): RegExp {
  return new RegExp(`^${disk.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(p?[0-9]+)?$`);
}

/** /proc/mounts writes spaces and other separators in octal (`\040`). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** What the probe reads of the running system; the real one reads /proc, /sys and /dev. */
export interface SystemView {
  mounts(): string;
  swaps(): string;
  /** Every loop device with its backing file. */
  loops(): { loop: string; backing: string }[];
  /** Names of the devices built directly on block device NAME (sysfs holders). */
  holders(name: string): string[];
  /** Open DEV with O_EXCL and close it: undefined when that worked, else the errno code. */
  tryExclusive(dev: string): string | undefined;
  /** Names of the block devices under the running root file system (through dm and md). */
  rootDevices(): string[];
  /** `MAJ:MIN` of a block device path; undefined for anything else. */
  devNumber(path: string): string | undefined;
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
function listOr(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
/** glibc's dev_t layout (gnu_dev_major/minor). */
function majMin(dev: number): string {
  const b = BigInt(dev);
  const major = ((b >> 8n) & 0xfffn) | ((b >> 32n) & ~0xfffn);
  const minor = (b & 0xffn) | ((b >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** Block device names a sysfs device stands on: itself, its disk, and its slaves, recursively. */
function underneath(sysPath: string, seen = new Set<string>()): string[] {
  const name = basename(sysPath);
  if (seen.has(name)) return [];
  seen.add(name);
  const out = [name];
  // A partition's sysfs directory sits inside its disk's.
  if (listOr(sysPath).includes('partition')) out.push(basename(dirname(sysPath)));
  for (const s of listOr(`${sysPath}/slaves`)) {
    try {
      out.push(...underneath(realpathSync(`${sysPath}/slaves/${s}`), seen));
    } catch {
      /* a slave vanished */
    }
  }
  return out;
}

export const linuxView: SystemView = {
  mounts: () => readOr('/proc/self/mounts'),
  swaps: () => readOr('/proc/swaps'),
  loops: () => listOr('/sys/block').filter((n) => n.startsWith('loop')).flatMap((loop) => {
    const backing = readOr(`/sys/block/${loop}/loop/backing_file`).trim();
    return backing ? [{ loop: `/dev/${loop}`, backing }] : [];
  }),
  holders: (name) => listOr(`/sys/class/block/${name}/holders`),
  tryExclusive(dev) {
    try {
      // O_EXCL without O_CREAT on a block device: Linux grants it only when nobody else
      // (a mounted file system, an array, a VM, another installer) holds the device exclusively.
      closeSync(openSync(dev, constants.O_RDONLY | constants.O_EXCL));
      return undefined;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? String(e);
    }
  },
  rootDevices() {
    try {
      const dev = majMin(statSync('/').dev);
      return underneath(realpathSync(`/sys/dev/block/${dev}`));
    } catch {
      // A root that is no block device (the boot environment's rootfs, an overlay) is on no disk.
      return [];
    }
  },
  devNumber(p) {
    try {
      const s = statSync(p);
      return s.isBlockDevice() ? majMin(s.rdev) : undefined;
    } catch {
      return undefined;
    }
  },
};

/** The topmost devices above NAME (a volume before the array under it). */
function topHolders(sys: SystemView, name: string, seen = new Set<string>()): string[] {
  const direct = sys.holders(name);
  if (!direct.length) return [];
  const out: string[] = [];
  for (const h of direct) {
    if (seen.has(h)) continue;
    seen.add(h);
    const above = topHolders(sys, h, seen);
    out.push(...(above.length ? above : [h]));
  }
  return [...new Set(out)];
}

/** Probe the disks found by discovery: everything layout/preflight.ts decides on. */
export function probeDisks(found: BlockDevice[], sys: SystemView = linuxView): DiskProbe[] {
  const mounts = sys.mounts();
  const swaps = sys.swaps();
  const loops = sys.loops();
  const root = new Set(sys.rootDevices());
  return found.map((d) => {
    const devs = [d.path, ...d.partitions];
    const numbers = new Map(devs.map((x) => [sys.devNumber(x), x] as const).filter(([n]) => n !== undefined));
    const mine = (dev: string) => diskRe(d.path).test(dev) || devs.includes(dev) || numbers.has(sys.devNumber(dev));
    const probe: DiskProbe = { path: d.path, present: true, size: d.size, sectorSize: d.sectorSize, readOnly: d.readOnly, mounts: [], swaps: [], holders: [], loops: [], exclusive: [] };
    const seenMp = new Set<string>();
    for (const l of mounts.split('\n')) {
      const f = l.split(' ');
      if (f.length < 2 || !f[0].startsWith('/dev/') || !mine(f[0])) continue;
      const mp = unescapeMount(f[1]);
      if (!seenMp.has(mp)) probe.mounts.push({ device: f[0], mountpoint: mp });
      seenMp.add(mp);
    }
    // lsblk sees mounts of what is built on the disk (an array, a volume) that /proc names otherwise.
    for (const mp of d.mountpoints) if (!seenMp.has(mp)) {
      probe.mounts.push({ device: d.path, mountpoint: mp });
      seenMp.add(mp);
    }
    probe.swaps = swaps.split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter((x) => x?.startsWith('/dev/') && mine(x));
    probe.loops = loops.filter((l) => l.loop !== d.path && (devs.includes(l.backing) || (sys.devNumber(l.backing) !== undefined && numbers.has(sys.devNumber(l.backing)))));
    const held = new Set<string>();
    for (const x of devs) {
      const tops = topHolders(sys, baseName(x));
      if (tops.length) held.add(x);
      for (const h of tops) {
        if (probe.holders.some((p) => p.device === `/dev/${h}`)) continue;
        const err = sys.tryExclusive(`/dev/${h}`);
        probe.holders.push({ device: `/dev/${h}`, busy: err === 'EBUSY' ? 'it is open (mounted, or used by another program)' : undefined });
      }
    }
    // Without sysfs holders, lsblk's tree still names what is built on the disk.
    if (!held.size) for (const h of d.holders) {
      held.add(d.path);
      probe.holders.push({ device: h, busy: sys.tryExclusive(h) === 'EBUSY' ? 'it is open (mounted, or used by another program)' : undefined });
    }
    // An exclusive open fails for a mounted or swapped device, and for a disk whose partition is
    // claimed: those already have their reason. What is left is another program's O_EXCL.
    if (!probe.mounts.length && !probe.swaps.length) {
      for (const x of devs) {
        if (held.has(x) || (x === d.path && held.size)) continue;
        const err = sys.tryExclusive(x);
        if (err === 'EBUSY') probe.exclusive.push({ device: x, error: err });
      }
    }
    const r = devs.map(baseName).find((n) => root.has(n));
    if (r) probe.root = `/dev/${r}`;
    return probe;
  });
}

/** The plan's disks: every problem found before the first write (none: the list is empty). */
export function preflightProblems(plan: { disks: PlannedDiskFacts[] }, found: BlockDevice[], sys: SystemView = linuxView): Problem[] {
  const mine = plan.disks.map((pd) => found.find((d) => d.path === pd.path)).filter((d) => d !== undefined);
  return diskUseProblems(plan, probeDisks(mine, sys));
}

/**
 * Refuse disks that are read-only, mounted or swapped on (lsblk and /proc), hold the running
 * root, have busy arrays or volumes on them, back a loop device, or are held open with O_EXCL.
 * `found` is what discovery reported for these disks. Idle arrays and volumes pass: applying a
 * plan releases them (they are what an earlier install left).
 */
export function refuseDisksInUse(found: BlockDevice[], sys: SystemView = linuxView): void {
  const plan = { disks: found.map((d) => ({ path: d.path, layoutDev: d.path, size: d.size, sectorSize: d.sectorSize })) };
  refuseProblems(`refusing to write ${found.map((d) => d.path).join(', ')}`, diskUseProblems(plan, probeDisks(found, sys)));
}

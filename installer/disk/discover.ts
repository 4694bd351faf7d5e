/**
 * Block device discovery: what disks this machine has and whether each is free to use.
 * `lsblk -J -b -O` gives the whole tree (partitions, and arrays and volumes built on them as
 * children), so mounts and holders anywhere below a disk are seen from the disk.
 */
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';
import type { BlockDevice } from '../../layout/types.js';
import { diskByIdNames, diskByPathNames, vpdSerial, type SysfsReader } from './sysfs-names.js';

export interface LsblkNode {
  name: string;
  kname?: string;
  path?: string;
  type: string;
  size: number | string | null;
  'log-sec'?: number | string | null;
  'phy-sec'?: number | string | null;
  ro?: boolean | string | null;
  rm?: boolean | string | null;
  serial?: string | null;
  wwn?: string | null;
  model?: string | null;
  pttype?: string | null;
  fstype?: string | null;
  label?: string | null;
  uuid?: string | null;
  partuuid?: string | null;
  partlabel?: string | null;
  partflags?: string | null;
  parttype?: string | null;
  start?: number | string | null;
  mountpoint?: string | null;
  mountpoints?: (string | null)[];
  children?: LsblkNode[];
}

const num = (v: unknown): number => (v === null || v === undefined || v === '' ? 0 : Number(v));
const bool = (v: unknown): boolean => v === true || v === '1' || v === 1;
const str = (v: string | null | undefined): string | undefined => (v === null || v === undefined || v.trim() === '' ? undefined : v.trim());

function mountsOf(n: LsblkNode): string[] {
  const own = (n.mountpoints ?? [n.mountpoint ?? null]).filter((m): m is string => !!m);
  return [...own, ...(n.children ?? []).flatMap(mountsOf)];
}

/** Devices built on n, the ones built on top first (a volume before the array under it). */
function holdersOf(n: LsblkNode): string[] {
  const out: string[] = [];
  for (const c of n.children ?? []) {
    out.push(...holdersOf(c));
    if (c.type !== 'part') out.push(c.path ?? `/dev/${c.name}`);
  }
  return [...new Set(out)];
}

/** Pure: lsblk's JSON → block devices (top-level disks and loop devices). */
export function parseLsblk(json: string, byPath: Map<string, string[]> = new Map()): BlockDevice[] {
  const doc = JSON.parse(json) as { blockdevices: LsblkNode[] };
  return doc.blockdevices.map((n) => {
    const path = n.path ?? `/dev/${n.name}`;
    return {
      path,
      name: n.name,
      type: n.type,
      size: num(n.size),
      sectorSize: num(n['log-sec']) || 512,
      physicalSectorSize: num(n['phy-sec']) || 512,
      removable: bool(n.rm),
      readOnly: bool(n.ro),
      serial: str(n.serial),
      wwn: str(n.wwn),
      model: str(n.model),
      byPath: byPath.get(path),
      pttype: str(n.pttype),
      fstype: str(n.fstype),
      mountpoints: mountsOf(n),
      holders: holdersOf(n),
      partitions: (n.children ?? []).filter((c) => c.type === 'part').map((c) => c.path ?? `/dev/${c.name}`),
    };
  });
}

/** /dev/disk/by-path (or by-id) links, by the device they point at (absent without udev). */
function readLinks(dir = '/dev/disk/by-path'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const target = resolve(dir, readlinkSync(`${dir}/${n}`));
      out.set(target, [...(out.get(target) ?? []), n]);
    } catch {
      /* a dangling link names nothing */
    }
  }
  return out;
}

/** The live sysfs, for the pure name functions of sysfs-names.ts. */
export const liveSysfs: SysfsReader = {
  realpath(p) {
    try {
      return realpathSync(p);
    } catch {
      return undefined;
    }
  },
  read(p) {
    try {
      return readFileSync(p);
    } catch {
      return undefined;
    }
  },
  list(d) {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  },
};

/**
 * lsblk takes serial, WWN and model from udev's database; without udev (the boot environment)
 * they come from sysfs: virtio-blk and NVMe publish them as attributes, SCSI/ATA in VPD pages.
 * The /dev/disk/by-id and by-path names udev would make are computed from sysfs too, and
 * joined with udev's own links where they exist.
 */
export function fillFromSysfs(d: BlockDevice, sys: SysfsReader = liveSysfs): BlockDevice {
  const base = `/sys/block/${d.name}`;
  const read = (p: string) => sys.read(p)?.toString('utf8').replace(/\0/g, '').trim() || undefined;
  d.serial ??= read(`${base}/serial`) ?? read(`${base}/device/serial`) ?? vpdSerial(sys.read(`${base}/device/vpd_pg80`));
  d.wwn ??= read(`${base}/wwid`) ?? read(`${base}/device/wwid`);
  d.model ??= read(`${base}/device/model`);
  const join = (a: string[] | undefined, b: string[]) => {
    const all = [...new Set([...(a ?? []), ...b])];
    return all.length ? all : undefined;
  };
  d.byId = join(d.byId, diskByIdNames(d.name, sys));
  d.byPath = join(d.byPath, diskByPathNames(d.name, sys));
  return d;
}

/** Device kinds an install may target by default: not partitions, ROMs, RAM disks or loops. */
function eligibleByDefault(d: BlockDevice): boolean {
  return d.type === 'disk' && !d.readOnly && d.size > 0 && !/^(ram|zram|sr|fd)/.test(d.name) && !/boot[0-9]$|rpmb$/.test(d.name);
}

/**
 * The disks a layout may be installed onto. With `only`, exactly those devices in that order
 * (loop devices included); otherwise every writable disk that nothing is mounted from.
 */
export async function discoverDisks(opts: { only?: string[] } = {}): Promise<BlockDevice[]> {
  const argv = ['lsblk', '-J', '-b', '-O'];
  if (opts.only?.length) argv.push(...opts.only);
  let out: string;
  try {
    out = (await run(argv, { quiet: true })).stdout;
  } catch (e) {
    if (opts.only?.length && e instanceof FerryError && e.code === 'FERRY_E_COMMAND_FAILED') {
      throw new FerryError('FERRY_E_DISK_NOT_FOUND', `not a block device: ${opts.only.join(', ')} (lsblk: ${String((e.details.stderrTail as string) ?? '').trim()})`, {
        details: { devices: opts.only },
        hint: 'name whole disks such as /dev/vda, /dev/nvme0n1 or a loop device from losetup',
      });
    }
    throw e;
  }
  const ids = readLinks('/dev/disk/by-id');
  const all = parseLsblk(out, readLinks('/dev/disk/by-path')).map((d) => fillFromSysfs({ ...d, ...(ids.get(d.path) ? { byId: ids.get(d.path) } : {}) }));
  if (opts.only?.length) {
    const found: BlockDevice[] = [];
    for (const want of opts.only) {
      const d = all.find((x) => x.path === want || x.path === resolve(want) || `/dev/${x.name}` === want || x.name === basename(want));
      if (!d) throw new FerryError('FERRY_E_DISK_NOT_FOUND', `${want} is not a disk lsblk knows`, { details: { device: want }, hint: 'name whole disks, not partitions' });
      if (d.type === 'part') throw new FerryError('FERRY_E_DISK_NOT_FOUND', `${want} is a partition; give the whole disk`, { details: { device: want } });
      found.push(d);
    }
    return found;
  }
  return all.filter((d) => eligibleByDefault(d) && d.mountpoints.length === 0);
}

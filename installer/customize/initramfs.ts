/**
 * Whether this machine needs its initramfs regenerated. Rebuilding is most of an install's time
 * (update-initramfs under emulation: minutes), and an image's own initramfs usually already
 * serves the machine. So the installer reads the image's initramfs (a cpio listing; compressed
 * archives and early microcode archives prepended, as lsinitramfs reads them) and compares it
 * with what this machine and this layout need to mount the root: the modules of the disk
 * controllers holding the root's devices (from sysfs, as the boot environment loaded them), the
 * root file system's module, md and device-mapper where the layout uses RAID or LVM, and the
 * tools their hooks run (mdadm, lvm). Anything missing, unreadable or uncertain: rebuild.
 *
 * `decideInitramfs` is pure (unit-tested on real Debian listings, test/fixtures/initramfs/);
 * `readInitramfsListing` parses bytes; `machineModules` and `gatherInitramfs` read the system.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { DiskPlan } from '../disk/index.js';
import type { TargetView } from './plan.js';

export type Compression = 'gzip' | 'zstd' | 'xz' | 'lzma' | 'lz4' | 'bzip2';

export interface InitramfsDecision {
  action: 'keep' | 'rebuild';
  /** For the customize stage's events: "kept: has virtio_blk, ext4" / "rebuild: missing nvme". */
  reason: string;
}

/** What this machine and layout need in the initramfs to mount the root. */
export interface MachineNeeds {
  /** Kernel modules (as sysfs names them: underscores), e.g. virtio_blk, ahci, sd_mod, ext4, raid1, dm_mod. */
  modules: string[];
  /** Programs the initramfs hooks must carry: mdadm, lvm. */
  tools: string[];
  /** Something about the layout that requires a rebuild regardless (the new mdadm.conf). */
  rebuildBecause?: string;
}

/** One installed kernel and what is known of its initramfs. */
export interface KernelInitramfs {
  version: string;
  /** Paths in the initramfs (without a leading "/" or "./"); undefined when there is none. */
  listing?: string[];
  /** Why the listing could not be read (compression without a reader, a corrupt archive). */
  unreadable?: string;
  /** Modules built into this kernel (modules.builtin), which need no .ko in the initramfs. */
  builtin?: string[];
}

const modName = (m: string) => m.replace(/-/g, '_');

/** The module names a listing carries (kernel/.../virtio_blk.ko, .ko.xz, .ko.zst, .ko.gz). */
export function listedModules(listing: string[]): Set<string> {
  const out = new Set<string>();
  for (const p of listing) {
    const m = /(?:^|\/)lib\/modules\/[^/]+\/.*\/([^/]+)\.ko(?:\.(?:xz|zst|gz))?$/.exec(p);
    if (m) out.add(modName(m[1]));
  }
  return out;
}

function hasTool(listing: Set<string>, tool: string): boolean {
  return ['usr/sbin', 'sbin', 'usr/bin', 'bin'].some((d) => listing.has(`${d}/${tool}`));
}

/**
 * Pure: keep or rebuild. `force` is a reason to rebuild given by the operator or the image
 * (a kernel argument, a customization that changes what the initramfs contains).
 */
export function decideInitramfs(kernels: KernelInitramfs[], needs: MachineNeeds, force?: string): InitramfsDecision {
  if (force) return { action: 'rebuild', reason: `rebuild: ${force}` };
  if (needs.rebuildBecause) return { action: 'rebuild', reason: `rebuild: ${needs.rebuildBecause}` };
  if (!kernels.length) return { action: 'rebuild', reason: 'rebuild: no kernel found under /lib/modules' };
  const kept: string[] = [];
  const problems: string[] = [];
  const wanted = [...new Set(needs.modules.map(modName))];
  for (const k of kernels) {
    if (k.unreadable) {
      problems.push(`cannot read the initramfs of ${k.version} (${k.unreadable})`);
      continue;
    }
    if (!k.listing) {
      problems.push(`no initramfs for kernel ${k.version}`);
      continue;
    }
    const paths = new Set(k.listing.map((p) => p.replace(/^\.?\//, '')));
    const mods = listedModules(k.listing);
    const builtin = new Set((k.builtin ?? []).map(modName));
    const missing = wanted.filter((m) => !mods.has(m) && !builtin.has(m));
    const missingTools = needs.tools.filter((t) => !hasTool(paths, t));
    if (missing.length || missingTools.length) {
      const what = [...missing, ...missingTools.map((t) => `the ${t} tool`)].join(', ');
      problems.push(`missing ${what}${kernels.length > 1 ? ` (${k.version})` : ''}`);
      continue;
    }
    if (!kept.length) kept.push(...wanted.map((m) => (builtin.has(m) && !mods.has(m) ? `${m} (built in)` : m)), ...needs.tools);
  }
  if (problems.length) return { action: 'rebuild', reason: `rebuild: ${problems.join('; ')}` };
  if (!wanted.length && !needs.tools.length) return { action: 'rebuild', reason: 'rebuild: the root device\'s drivers are unknown' };
  return { action: 'keep', reason: `kept: has ${kept.join(', ')}` };
}

// ------------------------------------------------------------------------------------------
// Reading an initramfs: cpio newc archives, one after another, each optionally compressed.

const NEWC = ['070701', '070702'];

export function detectCompression(b: Buffer): Compression | undefined {
  if (b.length >= 2 && b[0] === 0x1f && (b[1] === 0x8b || b[1] === 0x9e)) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 4 && (b.readUInt32LE(0) === 0x184c2102 || b.readUInt32LE(0) === 0x184d2204)) return 'lz4';
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (b.length >= 3 && b[0] === 0x5d && b[1] === 0x00 && b[2] === 0x00) return 'lzma';
  return undefined;
}

/** Decompresses one stream to its end; throws when it cannot. */
export type Decompress = (format: Compression, data: Buffer) => Buffer;

/** gzip in-process; the others with the boot environment's tools (zstd is there; xz, lz4 when installed). */
export const decompressWithTools: Decompress = (format, data) => {
  if (format === 'gzip') return gunzipSync(data);
  const tool = { zstd: 'zstd', xz: 'xz', lzma: 'xz', lz4: 'lz4', bzip2: 'bzip2' }[format];
  const r = spawnSync(tool, ['-dc'], { input: data, maxBuffer: 1 << 30, timeout: 120_000 });
  if (r.error) throw new Error(`${tool}: ${(r.error as Error).message}`);
  // Trailing padding after the stream makes some tools complain while the output is complete.
  if (r.status !== 0 && !r.stdout?.length) throw new Error(`${tool} -dc exited ${r.status}: ${r.stderr.toString().trim().slice(0, 200)}`);
  return r.stdout;
};

/** Parses newc cpio archives from `off`; returns the names and where the last TRAILER!!! ended. */
function readCpio(b: Buffer, off: number, names: string[]): number {
  for (;;) {
    if (off + 110 > b.length) throw new Error(`cpio header cut at offset ${off}`);
    const magic = b.toString('latin1', off, off + 6);
    if (!NEWC.includes(magic)) throw new Error(`not a newc cpio header at offset ${off}`);
    const field = (i: number) => parseInt(b.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    if (!Number.isFinite(fileSize) || !Number.isFinite(nameSize) || nameSize < 1) throw new Error(`bad cpio header at offset ${off}`);
    const name = b.toString('utf8', off + 110, off + 110 + nameSize - 1);
    off = align4(off + 110 + nameSize);
    off = align4(off + fileSize);
    if (off > b.length) throw new Error(`cpio entry ${name} cut`);
    if (name === 'TRAILER!!!') return off;
    names.push(name.replace(/^\.?\//, ''));
  }
}

const align4 = (n: number) => (n + 3) & ~3;

/**
 * Every path in an initramfs file, as lsinitramfs lists them: uncompressed cpio archives (early
 * microcode) followed by zero padding and more archives, the last one usually compressed.
 */
export function readInitramfsListing(b: Buffer, decompress: Decompress = decompressWithTools): string[] {
  const names: string[] = [];
  let off = 0;
  while (off < b.length) {
    while (off < b.length && b[off] === 0) off++;
    if (off >= b.length) break;
    const rest = b.subarray(off);
    if (NEWC.includes(rest.toString('latin1', 0, 6))) {
      off = readCpio(b, off, names);
      continue;
    }
    const fmt = detectCompression(rest);
    if (!fmt) throw new Error(`unknown data at offset ${off} (neither cpio nor a known compression)`);
    const inner = decompress(fmt, rest);
    // The compressed archive runs to the end of the file (as the kernel and unmkinitramfs treat it).
    const sub = readInitramfsListing(inner, decompress);
    names.push(...sub);
    break;
  }
  return names;
}

// ------------------------------------------------------------------------------------------
// The machine: sysfs, as the boot environment loaded the drivers.

function readlinkBase(p: string): string | undefined {
  try {
    return path.basename(fs.realpathSync(p));
  } catch {
    return undefined;
  }
}

/**
 * The kernel modules under the block device `dev` (/dev/vda2, /dev/md0, /dev/mapper/vg-root):
 * partitions lead to their disk, md and dm devices to their slaves, and each disk's device
 * directory and every parent up to /sys/devices contribute the module of their bound driver
 * (virtio_blk and virtio_pci; sd_mod, ahci; nvme). Built-in drivers have no module and add none.
 */
export function machineModules(dev: string, sys = '/sys', seen = new Set<string>()): string[] {
  const name = readlinkBase(dev) ?? path.basename(dev);
  if (seen.has(name)) return [];
  seen.add(name);
  let blk = path.join(sys, 'class/block', name);
  if (!fs.existsSync(blk)) return [];
  blk = fs.realpathSync(blk);
  if (fs.existsSync(path.join(blk, 'partition'))) blk = path.dirname(blk);
  const out: string[] = [];
  const slaves = path.join(blk, 'slaves');
  const slaveNames = fs.existsSync(slaves) ? fs.readdirSync(slaves) : [];
  for (const s of slaveNames) out.push(...machineModules(`/dev/${s}`, sys, seen));
  let d: string | undefined;
  try {
    d = fs.realpathSync(path.join(blk, 'device'));
  } catch {
    d = undefined;
  }
  const top = path.join(fs.realpathSync(sys), 'devices');
  while (d && d.startsWith(top + '/')) {
    const mod = readlinkBase(path.join(d, 'driver', 'module'));
    if (mod) out.push(mod);
    d = path.dirname(d);
  }
  return [...new Set(out)];
}

const RAID_MODULES: Record<string, string[]> = {
  '0': ['md_mod', 'raid0'], '1': ['md_mod', 'raid1'], '4': ['md_mod', 'raid456'], '5': ['md_mod', 'raid456'],
  '6': ['md_mod', 'raid456'], '10': ['md_mod', 'raid10'], linear: ['md_mod', 'linear'],
};

/** What mounting the root needs, from the disk plan and the machine's sysfs. */
export function machineNeeds(plan: Pick<DiskPlan, 'filesystems' | 'raids' | 'volumeGroups' | 'mdadmConf'>, sys = '/sys'): MachineNeeds {
  const roots = plan.filesystems.filter((f) => f.mountpoint === '/' || f.mountpoint === '/usr');
  const modules: string[] = [];
  const unknown: string[] = [];
  for (const f of roots) {
    const found = machineModules(f.device, sys);
    if (!found.length) unknown.push(f.device);
    modules.push(...found, f.fstabType);
  }
  const tools: string[] = [];
  for (const r of plan.raids) modules.push(...(RAID_MODULES[String(r.level).replace(/^raid/, '')] ?? ['md_mod']));
  if (plan.raids.length) tools.push('mdadm');
  if (plan.volumeGroups.length) {
    modules.push('dm_mod');
    tools.push('lvm');
  }
  // The initramfs assembles the arrays from its copy of mdadm.conf: the plan writes a new one.
  const rebuildBecause = plan.mdadmConf
    ? 'the layout writes a new mdadm.conf the initramfs must carry'
    : unknown.length
      ? `no driver module of ${unknown.join(', ')} found in sysfs (built in, or not a kernel block device), so what the initramfs must carry is unknown`
      : undefined;
  return { modules: [...new Set(modules.map(modName))], tools, rebuildBecause };
}

/** The installed kernels and their initramfs listings, read from the target. */
export function targetKernels(view: TargetView, readFile: (p: string) => Buffer | undefined, decompress: Decompress = decompressWithTools): KernelInitramfs[] {
  const dirs = new Set([...view.list('/lib/modules'), ...view.list('/usr/lib/modules')]);
  const out: KernelInitramfs[] = [];
  for (const version of [...dirs].sort()) {
    const base = view.exists(`/usr/lib/modules/${version}`) ? `/usr/lib/modules/${version}` : `/lib/modules/${version}`;
    if (!view.exists(`${base}/modules.dep`) && !view.exists(`/boot/vmlinuz-${version}`)) continue;
    const builtin = (view.readText(`${base}/modules.builtin`) ?? '').split('\n').filter(Boolean).map((l) => path.basename(l).replace(/\.ko$/, ''));
    const bytes = readFile(`/boot/initrd.img-${version}`) ?? readFile(`/boot/initramfs-${version}.img`);
    if (!bytes) {
      out.push({ version, builtin });
      continue;
    }
    try {
      out.push({ version, builtin, listing: readInitramfsListing(bytes, decompress) });
    } catch (e) {
      out.push({ version, builtin, unreadable: (e as Error).message });
    }
  }
  return out;
}

/** Paths whose change the initramfs must carry (initramfs-tools and dracut copy them in). */
const INITRAMFS_INPUTS = [/^\/etc\/initramfs-tools(\/|$)/, /^\/etc\/dracut\.conf/, /^\/etc\/modules$/, /^\/etc\/modprobe\.d\//, /^\/etc\/crypttab$/, /^\/etc\/mdadm\//, /^\/etc\/lvm\//, /^\/etc\/udev\/rules\.d\//];

/**
 * Pure: a reason the image's own customizations ask for a rebuild, or undefined. A script may
 * install packages or drivers; file, regexp and template items that write an initramfs input.
 */
export function imageAsksRebuild(items: readonly { kind: string; path?: string }[]): string | undefined {
  for (const it of items) {
    if (it.kind === 'script') return 'the image runs a customization script (it may change what the initramfs carries)';
    const p = it.path ? '/' + it.path.split('/').filter((c) => c && c !== '.').join('/') : undefined;
    if (p && INITRAMFS_INPUTS.some((re) => re.test(p))) return `the image's customization writes ${p}, which the initramfs carries`;
  }
  return undefined;
}

/**
 * Partition placement on one disk (exact bytes, 1 MiB alignment, adaptive sizes) and the parted
 * command line that writes it.
 */
import { alignDown, formatBytes, MiB } from '../common/units.js';
import { partitionDevice } from './names.js';
import { distribute, toWant, type SizeContext, type Want } from './sizes.js';
import { type DiskTarget, type LayoutDisk, type LayoutPart, type PlannedDisk } from './types.js';
import { err, warn, type Ctx } from './plan-context.js';

/** Flags parted 3.5 accepts per label type (measured with `parted set`). */
export const LABEL_FLAGS: Record<'msdos' | 'gpt', Set<string>> = {
  msdos: new Set(['boot', 'lba', 'lvm', 'raid', 'hidden', 'esp', 'swap', 'prep', 'palo', 'irst', 'diag']),
  gpt: new Set(['boot', 'lvm', 'raid', 'hidden', 'esp', 'swap', 'legacy_boot', 'bios_grub', 'msftdata', 'msftres', 'irst', 'diag', 'prep', 'hp-service', 'atvrecv', 'chromeos_kernel', 'bls_boot', 'linux-home']),
};

export interface PartUse {
  fsType?: string;
  raid?: string;
  pv?: string;
}

export function planPartitions(c: Ctx, ld: LayoutDisk, t: DiskTarget, uses: Map<string, PartUse>): PlannedDisk {
  const S = BigInt(t.sectorSize);
  const size = BigInt(Math.floor(t.size));
  const start0 = MiB;
  // GPT keeps a backup header and 16 KiB of entries in the last sectors.
  const end = ld.label === 'gpt' ? alignDown(size - (S + 16384n), MiB) : alignDown(size, MiB);
  const planned: PlannedDisk = { path: t.path, layoutDev: ld.dev, size: t.size, sectorSize: t.sectorSize, label: ld.label, partitions: [], unallocated: 0 };
  if (t.sectorSize !== 512 && t.sectorSize !== 4096) err(c, 'FERRY_E_DISK_SECTOR', ld.where, `${t.path} has ${t.sectorSize}-byte sectors; Ferry plans for 512 or 4096`);
  if (end <= start0) {
    err(c, 'FERRY_E_LAYOUT_TOO_BIG', ld.where, `disk ${t.path} (${t.size} bytes) is too small to hold a partition table and any partition`, 'use a bigger disk');
    return planned;
  }
  const avail = (end - start0) / MiB;
  const sc: SizeContext = { percentBase: end - start0, sectorSize: S, unit: MiB };
  const top = ld.parts.filter((p) => p.type !== 'logical');
  const logicals = ld.parts.filter((p) => p.type === 'logical');
  const innerWants = logicals.map((p) => toWant(p.size, sc));
  const wants: Want[] = top.map((p) => {
    if (p.type !== 'extended') return toWant(p.size, sc);
    // One MiB before every logical partition holds its EBR (and keeps the logical aligned).
    const n = BigInt(logicals.length);
    const innerMin = innerWants.reduce((a, w) => a + w.min, 0n) + n;
    const innerWant = innerWants.reduce((a, w) => a + w.want, 0n) + n;
    if (p.size.size.kind === 'fill') return { want: innerWant, min: innerMin, max: undefined, weight: p.size.weight ?? 1 };
    const w = toWant({ size: p.size.size, text: p.size.text }, sc);
    return { want: w.want, min: w.want, max: w.want, weight: 1 };
  });
  const d = distribute(wants, avail);
  if (!d.ok) {
    err(c, 'FERRY_E_LAYOUT_TOO_BIG', ld.where, `the partitions of ${ld.dev} need at least ${d.required * MiB} bytes (${formatBytes(d.required * MiB)}) but ${t.path} has ${d.available * MiB} bytes (${formatBytes(d.available * MiB)}) available after alignment and the partition table`, 'use a bigger disk, smaller sizes, or min_size on partitions that may shrink');
    return planned;
  }
  const parts: { lp: LayoutPart; start: bigint; size: bigint }[] = [];
  let cursor = start0;
  top.forEach((p, i) => {
    const sz = d.sizes[i] * MiB;
    parts.push({ lp: p, start: cursor, size: sz });
    if (p.type === 'extended') {
      const n = BigInt(logicals.length);
      const inner = distribute(innerWants, d.sizes[i] - n);
      if (!inner.ok) {
        err(c, 'FERRY_E_LAYOUT_TOO_BIG', p.where, `the logical partitions need at least ${(inner.required + n) * MiB} bytes with their boot records, but the extended partition ${p.num} of ${ld.dev} has ${sz} bytes`, 'make the extended partition bigger or "*"');
      } else {
        let ic = cursor;
        logicals.forEach((lp, k) => {
          ic += MiB;
          const lsz = inner.sizes[k] * MiB;
          parts.push({ lp, start: ic, size: lsz });
          ic += lsz;
        });
      }
    }
    cursor += sz;
  });
  planned.unallocated = Number(size - cursor);
  // parted gives primary/extended partitions the lowest free number, so creating them in
  // `num` order keeps the layout's numbers; logical numbers follow their order on disk.
  const numbered = [...parts.filter((p) => p.lp.type !== 'logical')].sort((a, b) => a.lp.num - b.lp.num);
  const numberOf = new Map<LayoutPart, number>();
  numbered.forEach((p, i) => numberOf.set(p.lp, i + 1));
  parts.filter((p) => p.lp.type === 'logical').forEach((p, i) => numberOf.set(p.lp, 5 + i));
  for (const p of [...numbered, ...parts.filter((x) => x.lp.type === 'logical')]) {
    const number = numberOf.get(p.lp)!;
    const layoutDevice = partitionDevice(ld.dev, p.lp.num);
    if (number !== p.lp.num) {
      warn(c, 'FERRY_W_PLAN_RENUMBERED', p.lp.where, `partition num ${p.lp.num} of ${ld.dev} becomes number ${number} on disk (${p.lp.type === 'logical' ? 'logical partitions are numbered in disk order' : 'parted numbers partitions without gaps'}); references to ${layoutDevice} are rewritten`);
    }
    const use = uses.get(layoutDevice) ?? {};
    const flags: string[] = [];
    for (const f of p.lp.flags) {
      if (!LABEL_FLAGS[ld.label].has(f)) warn(c, 'FERRY_W_PLAN_FLAG', p.lp.where, `flag "${f}" does not exist on ${ld.label} disks; not set`);
      else if (!flags.includes(f)) flags.push(f);
    }
    // Mark members so that tools (and people) recognise them.
    if (use.raid && !flags.includes('raid')) flags.push('raid');
    if (use.pv && !flags.includes('lvm')) flags.push('lvm');
    const endSector = (p.start + p.size) / S - 1n;
    if (ld.label === 'msdos' && endSector >= 2n ** 32n) {
      err(c, 'FERRY_E_DISK_LABEL_LIMIT', p.lp.where, `partition ${p.lp.num} ends at sector ${endSector}: an msdos label addresses at most 2^32 sectors (${formatBytes(2n ** 32n * S)} here)`, 'use label_type="gpt"');
    }
    planned.partitions.push({
      number, layoutNum: p.lp.num, device: partitionDevice(t.path, number), layoutDevice, type: p.lp.type,
      start: Number(p.start), size: Number(p.size), startSector: Number(p.start / S), endSector: Number(endSector),
      name: p.lp.name, flags,
    });
  }
  return planned;
}

/** parted's file-system-type hint: it sets the partition type (msdos id / GPT GUID). */
export function partedFsType(fs: string | undefined): string[] {
  if (fs === 'swap') return ['linux-swap'];
  if (fs === 'fat32' || fs === 'vfat') return ['fat32'];
  if (fs === 'fat16' || fs === 'fat12' || fs === 'msdos') return ['fat16'];
  return [];
}

export function partedArgv(pd: PlannedDisk, uses: Map<string, PartUse>): string[] {
  const argv = ['parted', '-s', '-a', 'none', pd.path, 'unit', 's', 'mklabel', pd.label];
  // Primary and extended in number order (parted assigns the lowest free number), then logicals.
  const order = [...pd.partitions].sort((a, b) => (a.type === 'logical' ? 1 : 0) - (b.type === 'logical' ? 1 : 0) || a.number - b.number);
  for (const p of order) {
    const first = pd.label === 'gpt' ? p.name ?? 'primary' : p.type;
    const fsType = p.type === 'extended' ? [] : partedFsType(uses.get(p.layoutDevice)?.fsType);
    argv.push('mkpart', first, ...fsType, `${p.startSector}s`, `${p.endSector}s`);
  }
  for (const p of pd.partitions) for (const f of p.flags) argv.push('set', String(p.number), f, 'on');
  return argv;
}

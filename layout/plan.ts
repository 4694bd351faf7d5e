/**
 * Layout + the disks at hand → DiskPlan. Pure: no I/O, no clock, no randomness; the same
 * inputs give the same plan, byte for byte (UUIDs come from the seed).
 *
 * Placement follows SystemImager v5: partitions in document order, one `*` per disk (and one
 * inside the extended partition) wherever it stands; extended/logical on msdos. Ferry adds
 * exact byte arithmetic with 1 MiB alignment, adaptive sizes (sizes.ts), device names derived
 * for the disk actually used, and every reference rewritten to those names.
 */
import { ValidationError } from '../common/errors.js';
import { alignDown, formatBytes, MiB } from '../common/units.js';
import { partitionDevice, lvDevice, splitLvDevice, splitPartitionDevice } from './names.js';
import { distribute, toWant, type SizeContext } from './sizes.js';
import { FAT_UUID_RE, mdadmUuid, seededGuid, seededLvmUuid, seededMbrId, seededUuid, seededVolumeId, UUID_RE } from './uuid.js';
import { MKFS_TYPES, type BootloaderRequest, type DiskPlan, type DiskTarget, type Layout, type PlanOptions, type PlanStep, type PlannedDisk, type PlannedFilesystem, type PlannedLv, type PlannedMount, type PlannedRaid, type PlannedVolumeGroup } from './types.js';
import { FAT, FS_MIN_BYTES, FS_MODULES, fstabType, LABEL_MAX, mkfsArgv } from './filesystems.js';
import { mapDisks } from './mapping.js';
import { fstabField } from './values.js';
import { foreignDevices } from './owned.js';
import { identitySteps } from './plan-steps.js';
import { partedArgv, planPartitions, type PartUse } from './partitions.js';
import { err, warn, type Ctx } from './plan-context.js';
import { MD_DATA_OFFSET, RAID_MODULE, raidSize } from './raid.js';
import { LVM_ENV, mountSteps, releaseSteps, rescanStep, teardownSteps } from './plan-steps.js';

export { mapDisks } from './mapping.js';

/** LVM puts the first extent 1 MiB into a PV with --dataalignment 1m. */
const LVM_PE_START = MiB;

/** Plan `layout` onto `disks`. Throws a ValidationError listing every problem when it cannot. */
export function planDisks(layout: Layout, disks: DiskTarget[], opts: PlanOptions = {}): DiskPlan {
  const seed = opts.seed ?? layout.digest;
  const c: Ctx = { layout, seed, problems: [], warnings: [...layout.warnings] };
  const diskDevs = layout.disks.map((d) => d.dev);
  const vgNames = layout.volumeGroups.map((v) => v.name);

  // What each layout device is used for (decides flags and parted's type hints).
  const uses = new Map<string, PartUse>();
  const use = (dev: string) => uses.get(dev) ?? (uses.set(dev, {}), uses.get(dev)!);
  for (const f of layout.filesystems) if (f.realDev) use(f.realDev).fsType = f.fs;
  for (const a of layout.raids) for (const m of [...a.devices, ...a.spares]) use(m).raid = a.name;
  for (const d of layout.disks) for (const p of d.parts) if (p.lvmGroup) use(partitionDevice(d.dev, p.num)).pv = p.lvmGroup;

  const assignment = mapDisks(layout, disks, opts.map, c, opts.chosenDisks);
  const planned: PlannedDisk[] = [];
  const deviceMap: Record<string, string> = {};
  for (const ld of layout.disks) {
    const t = assignment.get(ld.dev);
    if (!t) continue;
    const pd = planPartitions(c, ld, t, uses);
    // The table's own identity, seeded like the file systems' (parted cannot set it; sfdisk does).
    pd.diskId = pd.label === 'gpt' ? seededGuid(seed, `disk:${ld.dev}`) : seededMbrId(seed, `disk:${ld.dev}`);
    if (pd.label === 'gpt') for (const p of pd.partitions) p.partUuid = seededGuid(seed, `part:${p.layoutDevice}`);
    planned.push(pd);
    deviceMap[ld.dev] = pd.path;
    for (const p of pd.partitions) deviceMap[p.layoutDevice] = p.device;
  }
  const partByLayout = new Map(planned.flatMap((d) => d.partitions.map((p) => [p.layoutDevice, p] as const)));
  const sizeOf = new Map<string, bigint>();
  for (const d of planned) {
    sizeOf.set(d.layoutDev, BigInt(d.size));
    for (const p of d.partitions) sizeOf.set(p.layoutDevice, BigInt(p.size));
  }

  // RAID arrays: an explicit data offset and component size make their size exact.
  const raids: PlannedRaid[] = [];
  for (const a of layout.raids) {
    const members = a.devices.map((m) => deviceMap[m]).filter((x): x is string => !!x);
    const spares = a.spares.map((m) => deviceMap[m]).filter((x): x is string => !!x);
    if (members.length !== a.devices.length) continue; // a disk is missing: already reported
    const memberSizes = [...a.devices, ...a.spares].map((m) => sizeOf.get(m) ?? 0n);
    const smallest = memberSizes.reduce((x, y) => (y < x ? y : x));
    const chunk = BigInt(a.chunkKiB ?? 512) * 1024n;
    const align = a.level === 'raid1' || a.level === 'linear' ? MiB : chunk > MiB ? chunk : MiB;
    const comp = alignDown(smallest - MD_DATA_OFFSET, align);
    if (comp <= 0n) {
      err(c, 'FERRY_E_LAYOUT_TOO_BIG', a.where, `the members of ${a.name} are too small (${smallest} bytes) for RAID metadata and data`);
      continue;
    }
    const device = a.name;
    const uuid = seededUuid(seed, `md:${a.name}`);
    raids.push({ device, layoutName: a.name, level: a.level, members, spares, uuid, size: Number(raidSize(a.level, members.length, comp)), componentKiB: Number(comp / 1024n) });
    deviceMap[a.name] = device;
    sizeOf.set(a.name, raidSize(a.level, members.length, comp));
  }

  // Volume groups and logical volumes, in whole extents.
  const vgs: PlannedVolumeGroup[] = [];
  for (const v of layout.volumeGroups) {
    const pvLayout = [
      ...layout.disks.flatMap((d) => d.parts.filter((p) => p.lvmGroup === v.name).map((p) => partitionDevice(d.dev, p.num))),
      ...layout.raids.filter((a) => a.lvmGroup === v.name).map((a) => a.name),
    ];
    const pvs = pvLayout.map((x) => deviceMap[x]).filter((x): x is string => !!x);
    if (pvs.length !== pvLayout.length) continue;
    const E = BigInt(v.extentSize);
    const extents = pvLayout.reduce((a, x) => {
      const s = sizeOf.get(x) ?? 0n;
      return a + (s > LVM_PE_START ? (s - LVM_PE_START) / E : 0n);
    }, 0n);
    const sc: SizeContext = { percentBase: extents * E, sectorSize: 512n, unit: E };
    const wants = v.lvs.map((l) => toWant(l.size, sc));
    const dist = distribute(wants, extents);
    const pvg: PlannedVolumeGroup = { name: v.name, pvs, pvUuids: pvLayout.map((x) => seededLvmUuid(seed, `pv:${x}`)), extentSize: v.extentSize, extents: Number(extents), lvs: [] };
    if (!dist.ok) {
      err(c, 'FERRY_E_LAYOUT_TOO_BIG', v.where, `the logical volumes of ${v.name} need at least ${dist.required * E} bytes (${formatBytes(dist.required * E)}) but the group has ${extents * E} bytes (${formatBytes(extents * E)}) on ${pvs.join(', ')}`, 'use bigger physical volumes, smaller volumes, or min_size on volumes that may shrink');
    } else {
      v.lvs.forEach((l, i) => {
        const lv: PlannedLv = { name: l.name, vg: v.name, device: lvDevice(v.name, l.name), layoutDevice: `/dev/${v.name}/${l.name}`, extents: Number(dist.sizes[i]), size: Number(dist.sizes[i] * E) };
        pvg.lvs.push(lv);
        deviceMap[lv.layoutDevice] = lv.device;
        deviceMap[`/dev/mapper/${lv.device.slice('/dev/mapper/'.length)}`] = lv.device;
        sizeOf.set(lv.layoutDevice, dist.sizes[i] * E);
      });
    }
    vgs.push(pvg);
  }

  // File systems.
  const filesystems: PlannedFilesystem[] = [];
  const fsOrder = layout.filesystems.map((f, i) => ({ f, i })).sort((a, b) => (a.f.line ?? Infinity) - (b.f.line ?? Infinity) || a.i - b.i);
  const fstabLines: string[] = [
    `# /etc/fstab: written by Ferry from layout ${layout.file ?? ''} (sha256 ${layout.digest.slice(0, 16)}...)`.replace('layout  (', 'layout ('),
    '# <file system> <mount point> <type> <options> <dump> <pass>',
  ];
  for (const { f } of fsOrder) {
    if (f.comment !== undefined && !f.realDev) {
      // The parser refuses control characters; a comment stays one line whatever it holds.
      fstabLines.push((f.comment.startsWith('#') ? f.comment : `# ${f.comment}`).replace(/[\r\n]/g, ' '));
      continue;
    }
    const layoutDev = canonicalDevice(f.realDev, diskDevs, vgNames);
    const device = deviceMap[layoutDev];
    const ours = device !== undefined;
    const mkfs = ours && (MKFS_TYPES as readonly string[]).includes(f.fs);
    let uuid: string | undefined;
    if (mkfs) {
      if (f.uuid) {
        const ok = FAT.has(f.fs) ? FAT_UUID_RE.test(f.uuid.toUpperCase()) : UUID_RE.test(f.uuid);
        if (!ok) err(c, 'FERRY_E_LAYOUT_UUID', f.where, `UUID=${f.uuid} is not a valid ${FAT.has(f.fs) ? 'FAT volume id (XXXX-XXXX)' : 'UUID'} for ${f.fs}`);
        else if (f.fs === 'jfs') warn(c, 'FERRY_W_PLAN_UUID', f.where, `mkfs.jfs cannot set a UUID; UUID=${f.uuid} is not used`);
        else uuid = FAT.has(f.fs) ? f.uuid.toUpperCase() : f.uuid;
      } else if (f.fs !== 'jfs') {
        uuid = FAT.has(f.fs) ? seededVolumeId(seed, `fs:${layoutDev}`).replace(/^(.{4})/, '$1-') : seededUuid(seed, `fs:${layoutDev}`);
      }
      if (f.label !== undefined && f.label.length > (LABEL_MAX[f.fs] ?? 16)) {
        err(c, 'FERRY_E_LAYOUT_LABEL', f.where, `label "${f.label}" is ${f.label.length} characters; ${f.fs} allows ${LABEL_MAX[f.fs] ?? 16}`, 'shorten the label');
      }
      const size = sizeOf.get(layoutDev);
      const min = FS_MIN_BYTES[f.fs];
      if (size !== undefined && min !== undefined && size < BigInt(min)) {
        err(c, 'FERRY_E_FS_TOO_SMALL', f.where, `${f.fs} on ${layoutDev} (${device}) needs at least ${min} bytes (${formatBytes(min)}) but the device has ${size} bytes (${formatBytes(size)})`, 'make the partition or volume bigger, or choose another file system');
      }
    }
    const isSwap = f.fs === 'swap';
    const mountpoint = isSwap ? 'none' : f.mp;
    const pf: PlannedFilesystem = {
      device: device ?? f.realDev, layoutDevice: f.realDev, fs: f.fs, fstabType: fstabType(f.fs),
      uuid, label: f.label, mountpoint, options: f.options, dump: f.dump, pass: f.pass,
      format: mkfs && f.format, mount: mkfs && f.format && !isSwap && mountpoint.startsWith('/'),
      size: sizeOf.has(layoutDev) ? Number(sizeOf.get(layoutDev)) : undefined,
    };
    if (ours && !f.format) warn(c, 'FERRY_W_PLAN_NOT_FORMATTED', f.where, `${f.realDev} has format="no": it is not formatted or mounted, yet its disk is repartitioned`);
    filesystems.push(pf);
    // fstab names file systems by what survives a change of disk names.
    let spec: string;
    if (f.mountDev && /^(LABEL|UUID)=/.test(f.mountDev)) spec = f.mountDev;
    else if (pf.format && uuid) spec = `UUID=${uuid}`;
    else if (pf.format && f.label) spec = `LABEL=${f.label}`;
    else spec = device ?? f.realDev;
    // fstab's own escaping: a mount point or a source with a space stays one field.
    fstabLines.push([spec, mountpoint, pf.fstabType, f.options || 'defaults', String(f.dump), String(f.pass)].map(fstabField).join('\t'));
  }

  // Bootloader request with resolved devices.
  const bootloader: BootloaderRequest = { mode: undefined, targets: [] };
  const b = layout.bootloader;
  const espPart = planned.flatMap((d) => d.partitions).find((p) => p.flags.includes('esp') || (p.flags.includes('boot') && planned.find((d) => d.partitions.includes(p))!.label === 'gpt'));
  if (b) {
    bootloader.flavor = b.flavor;
    bootloader.mode = b.flavor === 'none' || b.installType === 'none' ? 'none' : b.installType === 'efi' ? 'uefi' : b.installType === 'legacy' ? 'bios' : undefined;
    bootloader.targets = b.targets.map((t) => deviceMap[t.dev] ?? t.dev);
    bootloader.defaultEntry = b.defaultEntry;
    bootloader.timeout = b.timeout;
  }
  if (espPart) {
    const fs = filesystems.find((f) => f.device === espPart.device);
    bootloader.esp = { device: espPart.device, mountpoint: fs?.mountpoint };
  }
  // No <bootloader> (SystemImager's own generated layouts have none): BIOS boot code goes onto
  // the one disk holding /boot, else /, and the plan says so. A root on an array or a volume
  // group spanning disks is ambiguous: no target, and a BIOS install asks for one.
  if (!b) {
    const bootFs = filesystems.find((f) => f.mountpoint === '/boot' && f.format) ?? filesystems.find((f) => f.mountpoint === '/' && f.format);
    const holder = bootFs && planned.find((d) => d.partitions.some((p) => p.device === bootFs.device));
    if (holder) {
      bootloader.targets = [holder.path];
      warn(c, 'FERRY_W_PLAN_BOOTLOADER_DISK', undefined, `the layout has no <bootloader>: a BIOS bootloader goes onto ${holder.path} (layout ${holder.layoutDev}), the disk holding ${bootFs.mountpoint}`);
    }
  }
  if (bootloader.mode === 'uefi' && !bootloader.esp) warn(c, 'FERRY_W_PLAN_NO_ESP', b?.where, 'the bootloader is EFI but no partition has the esp flag');
  if (bootloader.mode === 'bios') {
    for (const t of bootloader.targets) {
      const pd = planned.find((d) => d.path === t);
      if (pd?.label === 'gpt' && !pd.partitions.some((p) => p.flags.includes('bios_grub'))) {
        warn(c, 'FERRY_W_PLAN_BIOS_GPT', b?.where, `BIOS boot from gpt disk ${t} needs a small partition with flags="bios_grub" for grub; the layout has none`);
      }
    }
  }
  const root = filesystems.find((f) => f.mountpoint === '/' && f.format);
  if (root) bootloader.rootDevice = root.device;
  // The kernel command line names the root by this (a logical volume keeps its stable name).
  if (root?.uuid && !root.device.startsWith('/dev/mapper/')) bootloader.rootUuid = root.uuid;

  if (c.problems.length > 0) {
    throw new ValidationError('FERRY_E_PLAN_INVALID', `layout ${layout.file ?? ''} cannot be planned onto ${disks.map((d) => d.path).join(', ') || 'no disks'}`.replace('layout  ', 'layout '), [...c.problems, ...c.warnings], layout.file);
  }

  // Kernel modules the plan needs; a kernel with them built in makes modprobe fail harmlessly.
  const modules: string[] = [];
  const need = (m: string) => {
    if (!modules.includes(m)) modules.push(m);
  };
  if (raids.length) need('md_mod');
  for (const r of raids) need(RAID_MODULE[r.level]);
  if (vgs.length) need('dm_mod');
  for (const f of filesystems) if (f.format) for (const m of FS_MODULES[f.fs] ?? []) need(m);

  const steps: PlanStep[] = releaseSteps(planned.map((d) => disks.find((t) => t.path === d.path)).filter((t): t is DiskTarget => t !== undefined));
  for (const m of modules) steps.push({ kind: 'modprobe', argv: ['modprobe', m], mayFail: true, comment: `kernel module ${m} (may be built in)` });
  for (const d of planned) steps.push({ kind: 'wipe', argv: ['wipefs', '-a', '-f', d.path], device: d.path, comment: `clear old signatures and partition tables on ${d.path} (layout ${d.layoutDev})` });
  for (const d of planned) {
    steps.push({ kind: 'partition', argv: partedArgv(d, uses), device: d.path, comment: `${d.label} label and ${d.partitions.length} partition(s) on ${d.path}` });
    steps.push(...identitySteps(d));
    steps.push(rescanStep(d));
  }
  // Old file systems at the same offsets would confuse blkid and mdadm.
  for (const d of planned) for (const p of d.partitions) if (p.type !== 'extended') steps.push({ kind: 'wipe', argv: ['wipefs', '-a', '-f', p.device], device: p.device });
  for (const r of raids) {
    const chunk = layout.raids.find((a) => a.name === r.layoutName)!.chunkKiB;
    const algo = layout.raids.find((a) => a.name === r.layoutName)!.layoutAlgorithm;
    const argv = [
      'mdadm', '--create', r.device, '--run', '--metadata=1.2', `--level=${r.level}`, `--raid-devices=${r.members.length}`,
      ...(r.spares.length ? [`--spare-devices=${r.spares.length}`] : []),
      `--uuid=${mdadmUuid(r.uuid)}`, `--data-offset=${Number(MD_DATA_OFFSET / 1024n)}K`,
      ...(r.level !== 'linear' ? [`--size=${r.componentKiB}K`] : []),
      ...(chunk && r.level !== 'raid1' && r.level !== 'linear' ? [`--chunk=${chunk}K`] : []),
      ...(algo && (r.level === 'raid5' || r.level === 'raid6' || r.level === 'raid4') ? [`--layout=${algo}`] : []),
      ...r.members, ...r.spares,
    ];
    steps.push({ kind: 'raid', argv, device: r.device, waitFor: [r.device], comment: `${r.level} array ${r.layoutName} of ${r.size} bytes` });
    steps.push({ kind: 'wipe', argv: ['wipefs', '-a', '-f', r.device], device: r.device });
  }
  const lvmEnv = LVM_ENV;
  for (const v of vgs) {
    // A seeded PV UUID (lvm asks for a metadata backup to restore with --uuid unless told there is none).
    v.pvs.forEach((pv, i) => steps.push({ kind: 'lvm', argv: ['pvcreate', '-ff', '-y', '--dataalignment', '1m', '--uuid', v.pvUuids[i], '--norestorefile', pv], device: pv, env: lvmEnv, comment: `PV UUID ${v.pvUuids[i]} (seeded)` }));
    steps.push({ kind: 'lvm', argv: ['vgcreate', '-y', '--physicalextentsize', `${v.extentSize / 1024}k`, v.name, ...v.pvs], env: lvmEnv, comment: `${v.extents} extents of ${v.extentSize} bytes` });
    for (const lv of v.lvs) {
      const lo = layout.volumeGroups.find((x) => x.name === v.name)!.lvs.find((x) => x.name === lv.name)!.options;
      steps.push({ kind: 'lvm', argv: ['lvcreate', '-y', '-W', 'y', '-Z', 'y', '-n', lv.name, '-l', String(lv.extents), ...lo, v.name], device: lv.device, env: lvmEnv, waitFor: [lv.device], comment: `${lv.size} bytes` });
    }
  }
  for (const f of filesystems) {
    if (!f.format) continue;
    const lf = layout.filesystems.find((x) => x.realDev === f.layoutDevice)!;
    steps.push({ kind: 'mkfs', argv: mkfsArgv(f.fs, f.device, f.uuid, f.label, lf.mkfsOpts), device: f.device, comment: `${f.fs} for ${f.mountpoint}` });
  }

  const mounts: PlannedMount[] = filesystems
    .filter((f) => f.mount)
    .map((f) => ({ device: f.device, mountpoint: f.mountpoint.length > 1 ? f.mountpoint.replace(/\/+$/, '') : f.mountpoint, fstype: f.fstabType }))
    .sort((a, b) => depth(a.mountpoint) - depth(b.mountpoint) || a.mountpoint.localeCompare(b.mountpoint));
  steps.push(...mountSteps(mounts));

  const mdadmConf = raids.length
    ? raids.map((r) => `ARRAY ${r.device} metadata=1.2 UUID=${mdadmUuid(r.uuid)}`).join('\n') + '\n'
    : undefined;

  const plan: DiskPlan = {
    seed, layoutDigest: layout.digest, disks: planned, raids, volumeGroups: vgs, filesystems, modules, steps,
    commands: steps.map((s) => s.argv), teardown: teardownSteps(steps), mounts, fstab: fstabLines.join('\n') + '\n', mdadmConf, bootloader, deviceMap,
    warnings: c.warnings,
  };
  // The last line of defence: whatever the layout said, no command names a disk the plan does not own.
  const foreign = foreignDevices(plan);
  if (foreign.length) {
    throw new ValidationError('FERRY_E_PLAN_FOREIGN_DEVICE', `layout ${layout.file ?? ''} plans commands on devices it does not own`.replace('layout  ', 'layout '),
      foreign.map((f) => ({ severity: 'error' as const, code: 'FERRY_E_PLAN_FOREIGN_DEVICE', message: `${f.argv[0]} would name ${f.device}, which is none of the plan's disks (${plan.disks.map((d) => d.path).join(', ')}), partitions, arrays or volumes: ${f.argv.join(' ')}` })), layout.file);
  }
  return plan;
}

function depth(mp: string): number {
  return mp === '/' ? 0 : mp.split('/').filter(Boolean).length;
}

/** The layout's name for a device, with `/dev/mapper/vg-lv` turned into `/dev/vg/lv`. */
function canonicalDevice(dev: string, disks: string[], vgs: string[]): string {
  if (splitPartitionDevice(dev, disks)) return dev;
  const lv = splitLvDevice(dev, vgs);
  if (lv) return `/dev/${lv.vg}/${lv.lv}`;
  return dev;
}


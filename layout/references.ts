/**
 * Cross-reference validation of a read layout: every name used is defined, every device is
 * used once, RAID members and volume group members exist, file systems sit on real devices.
 * Needs no disk sizes; whether a layout fits is decided when it is planned onto disks.
 */
import { partitionDevice, splitLvDevice, splitPartitionDevice } from './names.js';
import { RAID_MIN_MEMBERS, type Reader } from './reader.js';
import { FSTAB_ONLY_TYPES, MKFS_TYPES, type Layout, type LayoutFs, type Where } from './types.js';

/** Cross-references: every name used must be defined, every device used once. */
export function checkReferences(r: Reader, l: Layout): void {
  const diskDevs = l.disks.map((d) => d.dev);
  const dupDisk = new Set<string>();
  for (const d of l.disks) {
    if (dupDisk.has(d.dev)) r.error('FERRY_E_LAYOUT_DUP', d.where, `disk ${d.dev} is described twice`);
    dupDisk.add(d.dev);
  }
  const partOf = (dev: string) => {
    const s = splitPartitionDevice(dev, diskDevs);
    if (!s) return undefined;
    const d = l.disks.find((x) => x.dev === s.disk)!;
    return { disk: d, part: d.parts.find((p) => p.num === s.num), num: s.num };
  };
  const raidNames = new Set<string>();
  for (const a of l.raids) {
    if (raidNames.has(a.name)) r.error('FERRY_E_LAYOUT_DUP', a.where, `RAID array ${a.name} is defined twice`);
    raidNames.add(a.name);
  }
  const vgNames = new Set(l.volumeGroups.map((v) => v.name));
  const seenVg = new Set<string>();
  for (const v of l.volumeGroups) {
    if (seenVg.has(v.name)) r.error('FERRY_E_LAYOUT_DUP', v.where, `volume group ${v.name} is defined twice`);
    seenVg.add(v.name);
  }

  /** What each device is used for: one use per device. */
  const uses = new Map<string, string>();
  const use = (dev: string, what: string, at: Where) => {
    const prev = uses.get(dev);
    if (prev) r.error('FERRY_E_LAYOUT_CONFLICT', at, `${dev} is used as ${what} but is already ${prev}`, 'use each partition, array or volume for one thing only');
    else uses.set(dev, what);
  };

  for (const d of l.disks) {
    for (const p of d.parts) {
      if (p.raidDev !== undefined && !raidNames.has(p.raidDev)) {
        r.error('FERRY_E_LAYOUT_REF', p.where, `partition ${p.num} of ${d.dev} names RAID array ${p.raidDev}, which no <raid> defines`, `add ${p.raidDev} to the <raid> section, or correct raid_dev`);
      }
      if (p.lvmGroup !== undefined && !vgNames.has(p.lvmGroup)) {
        r.error('FERRY_E_LAYOUT_REF', p.where, `partition ${p.num} of ${d.dev} names volume group ${p.lvmGroup}, which no <lvm_group> defines`, `add <lvm_group name="${p.lvmGroup}"> to <lvm>, or correct lvm_group`);
      }
      if (p.raidDev !== undefined && p.lvmGroup !== undefined) {
        r.error('FERRY_E_LAYOUT_CONFLICT', p.where, `partition ${p.num} of ${d.dev} is both a member of ${p.raidDev} and a physical volume of ${p.lvmGroup}`, 'put lvm_group on the <raid_disk> instead');
      }
      if (p.type === 'extended' && (p.raidDev || p.lvmGroup)) r.error('FERRY_E_LAYOUT_CONFLICT', p.where, 'an extended partition only holds logical partitions; it cannot be a RAID member or physical volume');
    }
  }
  // RAID members: partitions naming the array, plus explicit `devices`.
  for (const a of l.raids) {
    const members = new Set(a.devices);
    for (const d of l.disks) for (const p of d.parts) if (p.raidDev === a.name) members.add(partitionDevice(d.dev, p.num));
    a.devices = [...members];
    for (const m of [...a.devices, ...a.spares]) {
      const po = partOf(m);
      if (po && !po.part) r.error('FERRY_E_LAYOUT_REF', a.where, `RAID array ${a.name} uses ${m}, but ${po.disk.dev} has no partition ${po.num}`);
      else if (!po && !diskDevs.includes(m)) r.error('FERRY_E_LAYOUT_REF', a.where, `RAID array ${a.name} uses ${m}, which is neither a disk nor a partition of this layout`);
      else if (po?.part && po.part.raidDev !== undefined && po.part.raidDev !== a.name) r.error('FERRY_E_LAYOUT_CONFLICT', a.where, `${m} is listed in ${a.name} but its raid_dev says ${po.part.raidDev}`);
      if (po?.part?.type === 'extended') r.error('FERRY_E_LAYOUT_CONFLICT', a.where, `${m} is an extended partition; it cannot be a RAID member`);
    }
    for (const m of a.devices) use(m, `a member of ${a.name}`, a.where);
    for (const m of a.spares) use(m, `a spare of ${a.name}`, a.where);
    const need = RAID_MIN_MEMBERS[a.level];
    if (a.devices.length < need) r.error('FERRY_E_LAYOUT_RAID', a.where, `${a.level} array ${a.name} has ${a.devices.length} member(s); it needs at least ${need}`, 'add members with raid_dev on partitions or devices="…"');
    if (a.raidDevices !== undefined && a.raidDevices !== a.devices.length) r.error('FERRY_E_LAYOUT_RAID', a.where, `raid_devices="${a.raidDevices}" but ${a.name} has ${a.devices.length} member(s): ${a.devices.join(' ') || 'none'}`);
    if (a.spareDevices !== undefined && a.spareDevices !== a.spares.length) r.error('FERRY_E_LAYOUT_RAID', a.where, `spare_devices="${a.spareDevices}" but ${a.name} lists ${a.spares.length} spare(s)`);
    if (a.lvmGroup !== undefined && !vgNames.has(a.lvmGroup)) r.error('FERRY_E_LAYOUT_REF', a.where, `RAID array ${a.name} names volume group ${a.lvmGroup}, which no <lvm_group> defines`);
  }
  for (const d of l.disks) {
    for (const p of d.parts) {
      if (p.lvmGroup) use(partitionDevice(d.dev, p.num), `a physical volume of ${p.lvmGroup}`, p.where);
    }
  }
  for (const a of l.raids) if (a.lvmGroup) use(a.name, `a physical volume of ${a.lvmGroup}`, a.where);
  for (const v of l.volumeGroups) {
    const pvs = l.disks.flatMap((d) => d.parts.filter((p) => p.lvmGroup === v.name)).length + l.raids.filter((a) => a.lvmGroup === v.name).length;
    if (pvs === 0) r.error('FERRY_E_LAYOUT_REF', v.where, `volume group ${v.name} has no physical volumes`, `set lvm_group="${v.name}" on a partition or a RAID array`);
    if (v.lvs.length === 0) r.warn('FERRY_W_LAYOUT_EMPTY', v.where, `volume group ${v.name} has no logical volumes`);
  }

  // File systems.
  const mps = new Map<string, LayoutFs>();
  const lvExists = (dev: string) => {
    const s = splitLvDevice(dev, [...vgNames]);
    if (!s) return undefined;
    return { ...s, lv: l.volumeGroups.find((v) => v.name === s.vg)!.lvs.find((x) => x.name === s.lv) };
  };
  for (const f of l.filesystems) {
    if (f.comment !== undefined && !f.realDev) continue;
    const po = partOf(f.realDev);
    const lv = lvExists(f.realDev);
    const isRaid = raidNames.has(f.realDev);
    const isDisk = diskDevs.includes(f.realDev);
    const layoutDevice = (po && po.part) || (lv && lv.lv) || isRaid || isDisk;
    if (po && !po.part) {
      r.error('FERRY_E_LAYOUT_REF', f.where, `${f.realDev} (for ${f.mp}) is partition ${po.num} of ${po.disk.dev}, which the layout does not define`, `add <part num="${po.num}"> to ${po.disk.dev} or correct real_dev`);
      continue;
    }
    if (lv && !lv.lv) {
      r.error('FERRY_E_LAYOUT_REF', f.where, `${f.realDev} (for ${f.mp}) names a logical volume of ${lv.vg} that the layout does not define, which the layout does not define`);
      continue;
    }
    if (!layoutDevice && /^\/dev\/md([0-9]+|\/.+)$/.test(f.realDev)) {
      r.error('FERRY_E_LAYOUT_REF', f.where, `${f.realDev} (for ${f.mp}) is a RAID array that no <raid> defines`);
      continue;
    }
    const mkfsable = (MKFS_TYPES as readonly string[]).includes(f.fs);
    const fstabOnly = (FSTAB_ONLY_TYPES as readonly string[]).includes(f.fs);
    if (layoutDevice) {
      if (!mkfsable && f.format) {
        r.error('FERRY_E_LAYOUT_FS_UNKNOWN', f.where, `file system "${f.fs}" on ${f.realDev} is not one Ferry can make`, `use one of ${MKFS_TYPES.join(', ')} (or format="no")`);
      }
      if (po?.part?.type === 'extended') r.error('FERRY_E_LAYOUT_CONFLICT', f.where, `${f.realDev} is an extended partition; it cannot hold a file system`);
      use(f.realDev, `the ${f.fs} file system for ${f.mp}`, f.where);
      if (f.fs === 'swap' && f.mp !== 'swap' && f.mp !== 'none') r.warn('FERRY_W_LAYOUT_DEFAULT', f.where, `swap on ${f.realDev} has mount point "${f.mp}"; fstab gets none`);
    } else if (!fstabOnly && !mkfsable) {
      r.warn('FERRY_W_LAYOUT_FSTAB_ONLY', f.where, `"${f.fs}" on ${f.realDev} is not a file system Ferry knows; the line is copied into fstab as it is`);
    } else if (mkfsable && f.realDev.startsWith('/dev/') && f.format) {
      r.warn('FERRY_W_LAYOUT_FSTAB_ONLY', f.where, `${f.realDev} is not a device of this layout; it is not formatted, only written to fstab`);
    }
    if (f.mp.startsWith('/')) {
      const norm = f.mp.length > 1 ? f.mp.replace(/\/+$/, '') : f.mp;
      const prev = mps.get(norm);
      if (prev) r.error('FERRY_E_LAYOUT_DUP_MOUNT', f.where, `mount point ${norm} is used twice (${prev.realDev} at line ${prev.where.line} and ${f.realDev})`, 'give each file system its own mount point');
      else mps.set(norm, f);
    }
  }

  if (l.bootloader) {
    for (const t of l.bootloader.targets) {
      const po = partOf(t.dev);
      const ok = diskDevs.includes(t.dev) || (po && po.part) || raidNames.has(t.dev);
      if (!ok) r.error('FERRY_E_LAYOUT_REF', t.where, `bootloader target ${t.dev} is not a disk, partition or array of this layout`, 'name one of the layout\'s disks (BIOS) or its EFI system partition (UEFI)');
    }
  }
}


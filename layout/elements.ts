/**
 * The readers of a layout's elements (`disk`/`part`, `raid`/`raid_disk`, `lvm_group`/`lv`,
 * `fsinfo`, `bootloader`/`target`): each checks its attributes and values and returns the
 * element's model, or undefined when it cannot be read. parse.ts walks the document and calls
 * them; cross-references between elements are checked in references.ts.
 */
import { normaliseUnit } from '../common/units.js';
import { parseHwHints } from './mapping.js';
import type { Reader } from './reader.js';
import type { XmlElement } from './xml.js';
import { devicePathProblem, fsTypeProblem, gptNameProblem, lvOptionProblems, mkfsOptionProblems, mountOptionsProblem, mountPointProblem } from './values.js';
import type {
  AdaptiveSize, LayoutBootloader, LayoutDisk, LayoutFs, LayoutLv, LayoutPart, LayoutRaid, LayoutVolumeGroup, PartType, RaidLevel,
} from './types.js';

const RAID_LEVELS: Record<string, RaidLevel> = {
  linear: 'linear', raid0: 'raid0', '0': 'raid0', stripe: 'raid0', raid1: 'raid1', '1': 'raid1', mirror: 'raid1',
  raid4: 'raid4', '4': 'raid4', raid5: 'raid5', '5': 'raid5', raid6: 'raid6', '6': 'raid6', raid10: 'raid10', '10': 'raid10',
};
const KNOWN_FLAGS = new Set([
  'boot', 'esp', 'bios_grub', 'lvm', 'raid', 'swap', 'hidden', 'lba', 'legacy_boot', 'msftdata', 'msftres',
  'diag', 'prep', 'irst', 'palo', 'root', 'hp-service', 'atvrecv', 'chromeos_kernel', 'bls_boot', 'linux-home',
]);
const BOOTLOADERS = new Set(['grub', 'grub2', 'syslinux', 'extlinux', 'systemd-boot', 'refind', 'clover', 'none']);

/** The attributes each element takes: SystemImager's (autoinstallscript.conf(5)) and Ferry's. */
export const ATTRIBUTES = {
  config: [],
  disk: ['dev', 'label_type', 'unit_of_measurement', 'serial', 'wwn', 'by_path', 'model', 'min_size', 'hw'],
  part: ['num', 'size', 'p_type', 'p_name', 'flags', 'lvm_group', 'raid_dev', 'id', 'min_size', 'max_size', 'weight'],
  raid: ['name', 'raid_level', 'level', 'devices', 'spares', 'raid_devices', 'spare_devices', 'chunk_size', 'layout', 'lvm_group', 'rounding', 'persistence'],
  lvm: ['version'],
  lvm_group: ['name', 'max_log_vols', 'max_phys_vols', 'phys_extent_size', 'phys_exent_size'],
  lv: ['name', 'size', 'lv_options', 'min_size', 'max_size', 'weight'],
  fsinfo: ['line', 'comment', 'real_dev', 'mount_dev', 'mp', 'fs', 'mkfs_opts', 'options', 'dump', 'pass', 'format', 'label'],
  bootloader: ['flavor', 'install_type', 'default_entry', 'timeout'],
  target: ['dev', 'path'],
  boel: ['devstyle'],
} as const satisfies Record<string, readonly string[]>;


/** Report a value rule's problem (from values.ts) as a layout error at the attribute. */
function check(r: Reader, el: XmlElement, attr: string, problem: string | undefined, hint?: string): boolean {
  if (problem) r.error('FERRY_E_LAYOUT_VALUE', r.where(el, attr), problem, hint);
  return !problem;
}

const UNREADABLE: AdaptiveSize = { size: { kind: 'bytes', bytes: 0n }, text: '' };

function isFill(s: AdaptiveSize | undefined): boolean {
  return s?.size.kind === 'fill';
}

export function readDisk(r: Reader, el: XmlElement): LayoutDisk | undefined {
  r.knownAttributes(el, ATTRIBUTES.disk);
  const dev = r.required(el, 'dev');
  let label = r.attr(el, 'label_type')?.toLowerCase();
  if (label === undefined) {
    r.warn('FERRY_W_LAYOUT_DEFAULT', r.where(el), 'no label_type: using msdos', 'write label_type="msdos" or "gpt"');
    label = 'msdos';
  } else if (label !== 'msdos' && label !== 'gpt') {
    r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'label_type'), `label_type="${label}" is not supported`, 'use msdos or gpt');
  }
  let unit = r.attr(el, 'unit_of_measurement') ?? 'MB';
  if (!normaliseUnit(unit)) {
    r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'unit_of_measurement'), `unit_of_measurement="${unit}" is not a unit`, 'use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, s or %');
    unit = 'MB';
  }
  const match: LayoutDisk['match'] = {};
  for (const [a, k] of [['serial', 'serial'], ['wwn', 'wwn'], ['by_path', 'byPath'], ['model', 'model']] as const) {
    const v = r.attr(el, a);
    if (v !== undefined) match[k] = v;
  }
  const ms = r.size(el, 'min_size', 'B', { fill: false });
  if (ms) {
    if (ms.kind !== 'bytes') r.error('FERRY_E_LAYOUT_SIZE', r.where(el, 'min_size'), 'a disk\'s min_size must be an absolute size');
    else match.minSize = Number(ms.bytes);
  }
  const hw = r.attr(el, 'hw');
  if (hw !== undefined) {
    const h = parseHwHints(hw);
    for (const p of h.problems) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'hw'), `hw="${hw}": ${p}`, 'write hints as hw="hw.disk.serial=S3Z1NB0K hw.disk.size>=400GB"');
    for (const [k, v] of Object.entries(h.match) as [keyof typeof match, never][]) {
      if (match[k] !== undefined && match[k] !== v) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'hw'), `hw="${hw}" and the disk's own ${k} hint disagree (${match[k]} and ${v})`, 'give each hint once');
      else match[k] = v;
    }
  }
  const parts: LayoutPart[] = [];
  for (const c of el.children) {
    if (c.name !== 'part') {
      r.unknownElement(c, 'inside <disk>', ['part']);
      continue;
    }
    const p = readPart(r, c, unit, label as 'msdos' | 'gpt');
    if (p) parts.push(p);
  }
  if (dev === undefined) return undefined;
  if (!dev.startsWith('/dev/')) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'dev'), `dev="${dev}" is not a device path`, 'write the disk as /dev/NAME');
  else check(r, el, 'dev', devicePathProblem(dev), 'write the disk as /dev/NAME');
  const disk: LayoutDisk = { dev, label: label === 'gpt' ? 'gpt' : 'msdos', unit, parts, match, where: r.where(el) };
  checkDiskParts(r, disk);
  return disk;
}

export function readPart(r: Reader, el: XmlElement, unit: string, label: 'msdos' | 'gpt'): LayoutPart | undefined {
  r.knownAttributes(el, ATTRIBUTES.part);
  const num = r.int(el, 'num', { min: 1 });
  if (r.attr(el, 'num') === undefined) r.required(el, 'num');
  const size = r.adaptive(el, unit);
  let type = r.attr(el, 'p_type')?.toLowerCase() as PartType | undefined;
  if (type === undefined) type = 'primary';
  if (!['primary', 'extended', 'logical'].includes(type)) {
    r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'p_type'), `p_type="${type}" is not primary, extended or logical`);
    return undefined;
  }
  if (label === 'gpt' && type !== 'primary') {
    r.error('FERRY_E_LAYOUT_PARTITIONS', r.where(el, 'p_type'), `a gpt disk has only primary partitions, not ${type}`, 'use label_type="msdos" for extended/logical partitions, or make it primary');
  }
  const flagText = r.attr(el, 'flags');
  const flags = flagText && flagText !== '-' ? flagText.split(/[\s,]+/).map((f) => f.toLowerCase()).filter(Boolean) : [];
  for (const f of flags) {
    if (!KNOWN_FLAGS.has(f)) r.warn('FERRY_W_LAYOUT_FLAG', r.where(el, 'flags'), `unknown partition flag "${f}" is ignored`);
  }
  let pname = r.attr(el, 'p_name');
  if (pname !== undefined && pname !== '-' && !check(r, el, 'p_name', gptNameProblem(pname), 'use a GPT name of at most 36 characters without spaces, quotes or backslashes (such as "root" or "EFI-system")')) pname = undefined;
  const id = r.attr(el, 'id');
  if (id !== undefined) r.warn('FERRY_W_LAYOUT_IGNORED', r.where(el, 'id'), `id="${id}" is kept for reference only; flags decide the partition type`);
  if (num === undefined) return undefined;
  if (type === 'extended' && (size?.min || size?.max || size?.weight)) {
    r.warn('FERRY_W_LAYOUT_IGNORED', r.where(el), 'min_size/max_size/weight on an extended partition are ignored: it follows its logical partitions');
  }
  return {
    // A size that could not be read is already an error; the part stays so that references to it
    // are still checked (one mistake should not hide behind another).
    num, type, size: size ?? UNREADABLE, flags,
    name: pname && pname !== '-' ? pname : undefined,
    lvmGroup: r.attr(el, 'lvm_group'),
    raidDev: r.attr(el, 'raid_dev'),
    id,
    where: r.where(el),
  };
}

/** Numbers, msdos rules, and one `*` per sequence (the disk, and the extended partition). */
export function checkDiskParts(r: Reader, d: LayoutDisk): void {
  const seen = new Map<number, LayoutPart>();
  for (const p of d.parts) {
    const prev = seen.get(p.num);
    if (prev) r.error('FERRY_E_LAYOUT_DUP', p.where, `partition num ${p.num} is used twice on ${d.dev} (also line ${prev.where.line})`, 'give each partition of a disk its own num');
    seen.set(p.num, p);
  }
  if (d.parts.length === 0) r.warn('FERRY_W_LAYOUT_EMPTY', d.where, `disk ${d.dev} has no partitions: it gets an empty ${d.label} label`);
  if (d.label === 'msdos') {
    const ext = d.parts.filter((p) => p.type === 'extended');
    const prim = d.parts.filter((p) => p.type !== 'logical');
    if (ext.length > 1) r.error('FERRY_E_LAYOUT_PARTITIONS', ext[1].where, `an msdos disk has at most one extended partition; ${d.dev} has ${ext.length}`);
    if (prim.length > 4) r.error('FERRY_E_LAYOUT_PARTITIONS', prim[4].where, `an msdos disk has at most 4 primary and extended partitions; ${d.dev} has ${prim.length}`, 'turn some into logical partitions inside an extended one');
    for (const p of d.parts) {
      if (p.type === 'logical' && ext.length === 0) r.error('FERRY_E_LAYOUT_PARTITIONS', p.where, `logical partition ${p.num} needs an extended partition on ${d.dev}`);
      if (p.type === 'logical' && p.num < 5) r.error('FERRY_E_LAYOUT_PARTITIONS', p.where, `logical partition num ${p.num}: logical partitions are numbered from 5`);
      if (p.type !== 'logical' && p.num > 4) r.error('FERRY_E_LAYOUT_PARTITIONS', p.where, `${p.type} partition num ${p.num}: on msdos, primary and extended partitions are numbered 1 to 4`);
    }
  } else {
    for (const p of d.parts) if (p.num > 128) r.error('FERRY_E_LAYOUT_PARTITIONS', p.where, `partition num ${p.num}: gpt holds partitions 1 to 128`);
  }
  const fills = (list: LayoutPart[], what: string) => {
    const f = list.filter((p) => isFill(p.size));
    if (f.length > 1) {
      r.error('FERRY_E_LAYOUT_TWO_FILLS', f[1].where, `${what} has two partitions with size "*" (num ${f.map((p) => p.num).join(' and ')}); only one may fill what is left`, 'give all but one of them a size');
    }
  };
  fills(d.parts.filter((p) => p.type !== 'logical'), `disk ${d.dev}`);
  fills(d.parts.filter((p) => p.type === 'logical'), `the extended partition of ${d.dev}`);
}

export function readRaid(r: Reader, el: XmlElement): LayoutRaid | undefined {
  r.knownAttributes(el, ATTRIBUTES.raid);
  const name = r.required(el, 'name');
  const levelText = r.attr(el, 'raid_level') ?? r.attr(el, 'level');
  let level: RaidLevel | undefined;
  if (levelText === undefined) r.error('FERRY_E_LAYOUT_ATTR', r.where(el), `<${el.name}> needs the attribute raid_level`, 'add raid_level="raid1" (or raid0, raid5, raid6, raid10, linear)');
  else {
    level = RAID_LEVELS[levelText.toLowerCase()];
    if (!level) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'raid_level'), `raid_level="${levelText}" is not a RAID level`, 'use linear, raid0, raid1, raid4, raid5, raid6 or raid10');
  }
  const list = (v: string | undefined) => (v ? v.split(/[\s,]+/).filter(Boolean) : []);
  const devices = list(r.attr(el, 'devices'));
  let spares = list(r.attr(el, 'spares'));
  let raidDevices: number | undefined;
  let spareDevices: number | undefined;
  const rd = r.attr(el, 'raid_devices');
  if (rd !== undefined) {
    // raid_devices is a count in the man page, but some files list devices there.
    if (/^[0-9]+$/.test(rd)) raidDevices = Number(rd);
    else devices.push(...list(rd));
  }
  const sd = r.attr(el, 'spare_devices');
  if (sd !== undefined) {
    if (/^[0-9]+$/.test(sd)) spareDevices = Number(sd);
    else spares = [...spares, ...list(sd)];
  }
  let chunkKiB: number | undefined;
  const cs = r.attr(el, 'chunk_size');
  if (cs !== undefined) {
    const spec = r.size(el, 'chunk_size', 'KiB', { fill: false });
    if (spec?.kind === 'bytes') {
      const kib = Number(spec.bytes / 1024n);
      if (kib < 4 || (kib & (kib - 1)) !== 0) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'chunk_size'), `chunk_size="${cs}" must be a power of two of at least 4 KiB`);
      else chunkKiB = kib;
    } else if (spec) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'chunk_size'), `chunk_size="${cs}" must be an absolute size`);
  }
  for (const [attr, list] of [['devices', devices], ['spares', spares]] as const) {
    for (const m of list) check(r, el, attr, devicePathProblem(m), 'list member devices as /dev/NAME, separated by spaces or commas');
  }
  const algo = r.attr(el, 'layout');
  if (algo !== undefined && !/^[a-z0-9-]+$/i.test(algo)) r.error('FERRY_E_LAYOUT_VALUE', r.where(el, 'layout'), `RAID layout "${algo}" is not an mdadm layout name`, 'use an mdadm layout such as left-symmetric, n2 or f2');
  if (name === undefined || level === undefined) return undefined;
  if (!/^\/dev\/md([0-9]+|\/[A-Za-z0-9_.-]+)$/.test(name)) {
    r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'name'), `RAID name "${name}" is not /dev/mdN or /dev/md/NAME`);
  }
  return {
    name, level, devices, spares, raidDevices, spareDevices, chunkKiB,
    layoutAlgorithm: algo !== undefined && /^[a-z0-9-]+$/i.test(algo) ? algo : undefined,
    lvmGroup: r.attr(el, 'lvm_group'),
    where: r.where(el),
  };
}

export function readVolumeGroup(r: Reader, el: XmlElement): LayoutVolumeGroup | undefined {
  r.knownAttributes(el, ATTRIBUTES.lvm_group);
  const name = r.required(el, 'name');
  let extentSize = 4 * 1024 * 1024;
  let peAttr = 'phys_extent_size';
  if (r.attr(el, 'phys_extent_size') === undefined && r.attr(el, 'phys_exent_size') !== undefined) {
    // SystemImager's 2006 files wrote this misspelling, and its tools read it.
    peAttr = 'phys_exent_size';
    r.warn('FERRY_W_LAYOUT_SPELLING', r.where(el, peAttr), 'phys_exent_size is a misspelling of phys_extent_size; read as such', 'rename the attribute to phys_extent_size');
  }
  if (r.attr(el, peAttr) !== undefined) {
    // LVM's own default unit is MiB ("megabytes" in lvm(8)).
    const spec = r.size(el, peAttr, 'MiB', { fill: false });
    if (spec?.kind === 'bytes') {
      const b = Number(spec.bytes);
      if (b < 4096 || (b & (b - 1)) !== 0 || b > 2 ** 34) {
        r.error('FERRY_E_LAYOUT_ATTR', r.where(el, peAttr), `${peAttr}="${el.attrs[peAttr]}" must be a power of two between 4 KiB and 16 GiB`);
      } else extentSize = b;
    } else if (spec) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, peAttr), `${peAttr} must be an absolute size`);
  }
  const lvs: LayoutLv[] = [];
  const names = new Set<string>();
  for (const c of el.children) {
    if (c.name !== 'lv') {
      r.unknownElement(c, 'inside <lvm_group>', ['lv']);
      continue;
    }
    r.knownAttributes(c, ATTRIBUTES.lv);
    const lvName = r.required(c, 'name');
    // lvcreate's -L default unit is MiB; SystemImager passed the size straight through.
    const size = r.adaptive(c, 'MiB');
    const opts = r.attr(c, 'lv_options');
    const lvOptions = opts ? opts.split(/\s+/) : [];
    for (const p of lvOptionProblems(lvOptions)) r.error('FERRY_E_LAYOUT_OPTIONS', r.where(c, 'lv_options'), `lv_options="${opts}": ${p}`, 'give lvcreate options only (--type raid1 -m 1, -i 2 -I 64); the volume group and its physical volumes are the layout\'s');
    if (lvName === undefined) continue;
    if (!/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/.test(lvName)) r.error('FERRY_E_LAYOUT_ATTR', r.where(c, 'name'), `logical volume name "${lvName}" has characters LVM does not allow`);
    if (names.has(lvName)) r.error('FERRY_E_LAYOUT_DUP', r.where(c), `logical volume ${lvName} is defined twice in ${name}`);
    names.add(lvName);
    lvs.push({ name: lvName, size: size ?? UNREADABLE, options: lvOptions, where: r.where(c) });
  }
  const fills = lvs.filter((l) => isFill(l.size));
  if (fills.length > 1) r.error('FERRY_E_LAYOUT_TWO_FILLS', fills[1].where, `volume group ${name} has two logical volumes with size "*" (${fills.map((l) => l.name).join(', ')}); only one may fill what is left`);
  if (name === undefined) return undefined;
  if (!/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/.test(name)) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'name'), `volume group name "${name}" has characters LVM does not allow`);
  return { name, extentSize, lvs, where: r.where(el) };
}

export function readFs(r: Reader, el: XmlElement): LayoutFs | undefined {
  r.knownAttributes(el, ATTRIBUTES.fsinfo);
  const comment = r.attr(el, 'comment');
  const lineAttr = r.int(el, 'line');
  // A comment-only line is how SystemImager kept fstab's comments.
  if (comment !== undefined && r.attr(el, 'real_dev') === undefined && r.attr(el, 'mp') === undefined) {
    return { line: lineAttr, realDev: '', mp: '', fs: '', options: '', dump: 0, pass: 0, format: false, mkfsOpts: [], comment, where: r.where(el) };
  }
  const realDev = r.required(el, 'real_dev');
  const mp = r.required(el, 'mp');
  const fs = r.required(el, 'fs')?.toLowerCase();
  let mountDev = r.attr(el, 'mount_dev');
  if (mountDev !== undefined && mountDev.startsWith('/') && !check(r, el, 'mount_dev', devicePathProblem(mountDev), 'write mount_dev as LABEL=…, UUID=… or /dev/NAME')) mountDev = undefined;
  let label = r.attr(el, 'label');
  let uuid: string | undefined;
  if (mountDev) {
    const m = /^(LABEL|UUID)=(.+)$/.exec(mountDev);
    if (m?.[1] === 'LABEL') label = m[2];
    else if (m?.[1] === 'UUID') uuid = m[2].toLowerCase();
    else if (!mountDev.startsWith('/')) r.warn('FERRY_W_LAYOUT_IGNORED', r.where(el, 'mount_dev'), `mount_dev="${mountDev}" is neither LABEL=, UUID= nor a device; ignored`);
  }
  const format = (r.attr(el, 'format') ?? 'yes').toLowerCase() !== 'no';
  const mkfs = r.attr(el, 'mkfs_opts');
  const mkfsOpts = mkfs ? mkfs.split(/\s+/) : [];
  const options = r.attr(el, 'options') ?? 'defaults';
  check(r, el, 'options', mountOptionsProblem(options), 'write mount options as a comma list without spaces (defaults,noatime)');
  if (realDev !== undefined && realDev.startsWith('/dev/')) check(r, el, 'real_dev', devicePathProblem(realDev), 'name the device as /dev/NAME');
  if (realDev === undefined || mp === undefined || fs === undefined) return undefined;
  if (!check(r, el, 'fs', fsTypeProblem(fs), 'name a file system type (ext4, xfs, swap, nfs…)')) return undefined;
  const mpProblem = mountPointProblem(mp);
  if (mpProblem) r.error(mp.startsWith('/') || mp === 'swap' || mp === 'none' ? 'FERRY_E_LAYOUT_VALUE' : 'FERRY_E_LAYOUT_ATTR', r.where(el, 'mp'), mpProblem, 'give an absolute path inside the installed system (/var/lib), swap or none');
  if (mkfsOpts.length) {
    for (const p of mkfsOptionProblems(fs, mkfsOpts)) r.error('FERRY_E_LAYOUT_OPTIONS', r.where(el, 'mkfs_opts'), `mkfs_opts="${mkfs}": ${p}`, 'give options of this file system\'s mkfs only (for ext4: -b 4096 -O ^has_journal -E stride=16); the device is the layout\'s, never an option');
  }
  return {
    line: lineAttr, realDev, mountDev, mp, fs,
    options,
    dump: r.int(el, 'dump') ?? 0,
    pass: r.int(el, 'pass') ?? 0,
    format, label, uuid, comment,
    mkfsOpts,
    where: r.where(el),
  };
}

export function readBootloader(r: Reader, el: XmlElement): LayoutBootloader | undefined {
  r.knownAttributes(el, ATTRIBUTES.bootloader);
  const flavor = r.attr(el, 'flavor')?.toLowerCase() ?? 'grub2';
  if (r.attr(el, 'flavor') === undefined) r.warn('FERRY_W_LAYOUT_DEFAULT', r.where(el), 'no flavor: using grub2');
  if (!BOOTLOADERS.has(flavor)) r.warn('FERRY_W_LAYOUT_BOOTLOADER', r.where(el, 'flavor'), `bootloader flavor "${flavor}" is not one Ferry installs; it is passed on as is`);
  const it = r.attr(el, 'install_type')?.toLowerCase();
  let installType: LayoutBootloader['installType'];
  if (it === 'legacy' || it === 'bios') installType = 'legacy';
  else if (it === 'efi' || it === 'uefi') installType = 'efi';
  else if (it === 'none') installType = 'none';
  else if (it !== undefined) r.error('FERRY_E_LAYOUT_ATTR', r.where(el, 'install_type'), `install_type="${it}" is not legacy or efi`);
  const targets: LayoutBootloader['targets'] = [];
  for (const c of el.children) {
    if (c.name !== 'target') {
      r.unknownElement(c, 'inside <bootloader>', ['target']);
      continue;
    }
    r.knownAttributes(c, ATTRIBUTES.target);
    const dev = r.required(c, 'dev');
    if (dev) targets.push({ dev, path: r.attr(c, 'path'), where: r.where(c) });
  }
  const t = r.attr(el, 'timeout');
  let timeout: number | undefined;
  if (t !== undefined) {
    if (/^[0-9]+$/.test(t)) timeout = Number(t);
    else r.warn('FERRY_W_LAYOUT_IGNORED', r.where(el, 'timeout'), `timeout="${t}" is not a number of seconds; ignored`);
  }
  return { flavor, installType, defaultEntry: r.attr(el, 'default_entry'), timeout, targets, where: r.where(el) };
}

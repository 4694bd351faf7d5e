/**
 * Pure half of `ferry layout capture`: what the tools reported about a machine's disks →
 * layout XML that plans back to the same partitions on the same disks.
 *
 * - Partitions are written in disk order with exact sizes (MiB when whole, else bytes); the
 *   last partition that reaches the end of the usable space becomes `*`, so the layout also
 *   fits other disk sizes.
 * - File systems keep their UUIDs and labels (`mount_dev="UUID=…"`, `label`), as SystemImager's
 *   own capture did, so a reinstalled machine's fstab and bootloader still find them.
 */
import { alignDown, MiB } from '../common/units.js';
import { partitionDevice } from './names.js';
import { safeGptName } from './values.js';

export interface CapturedPartition {
  number: number;
  start: number;
  size: number;
  name?: string;
  flags: string[];
}

export interface CapturedDisk {
  path: string;
  size: number;
  sectorSize: number;
  label: 'msdos' | 'gpt';
  partitions: CapturedPartition[];
}

export interface CapturedFs {
  /** Device path as found (`/dev/vda2`, `/dev/md0`, `/dev/mapper/vg-root`). */
  device: string;
  type: string;
  uuid?: string;
  label?: string;
  /** blkid VERSION (FAT32, FAT16). */
  version?: string;
  mountpoint?: string;
  /** Mount options from the captured root's fstab (when not `defaults`). */
  options?: string;
}

export interface CaptureInput {
  disks: CapturedDisk[];
  filesystems: CapturedFs[];
  raids: { device: string; level: string; members: string[] }[];
  volumeGroups: { name: string; extentSize: number; /** Extents in the group, when known. */ extents?: number; pvs: string[]; lvs: { name: string; size: number }[] }[];
  /** Mount points under this directory are written relative to it (a target root). */
  root?: string;
}

function xmlAttr(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}="${xmlAttr(String(v))}"`)
    .join(' ');
}

function sizeText(bytes: number): string {
  return bytes % Number(MiB) === 0 ? String(bytes / Number(MiB)) : `${bytes}B`;
}

/** parted `print -m` lines → label and partitions (pure). */
export function parsePartedMachine(out: string): { path: string; size: number; sectorSize: number; label: string; partitions: CapturedPartition[] } | undefined {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  const i = lines.indexOf('BYT;');
  if (i < 0 || !lines[i + 1]) return undefined;
  const d = lines[i + 1].replace(/;$/, '').split(':');
  const partitions: CapturedPartition[] = [];
  for (const l of lines.slice(i + 2)) {
    const f = l.replace(/;$/, '').split(':');
    if (!/^[0-9]+$/.test(f[0])) continue;
    partitions.push({
      number: Number(f[0]),
      start: Number(f[1].replace(/B$/, '')),
      size: Number(f[3].replace(/B$/, '')),
      name: f[5] || undefined,
      flags: (f[6] ?? '').split(',').map((x) => x.trim()).filter(Boolean),
    });
  }
  return { path: d[0], size: Number(d[1].replace(/B$/, '')), sectorSize: Number(d[3]), label: d[5], partitions };
}

/** /proc/mdstat → arrays with their level and member devices. */
export function parseMdstat(text: string): { device: string; level: string; members: string[] }[] {
  const out: { device: string; level: string; members: string[] }[] = [];
  for (const l of text.split('\n')) {
    const m = /^(md[^\s]+)\s*:\s*(?:active|inactive)(?:\s+\([^)]*\))*\s+(?:(linear|raid[0-9]+|multipath)\s+)?(.*)$/.exec(l);
    if (!m) continue;
    const members = m[3].split(/\s+/).filter(Boolean).map((x) => {
      const mm = /^([^[]+)\[(\d+)\](\([A-Z]\))?$/.exec(x);
      return mm ? { dev: `/dev/${mm[1]}`, slot: Number(mm[2]) } : undefined;
    }).filter((x): x is { dev: string; slot: number } => !!x).sort((a, b) => a.slot - b.slot);
    out.push({ device: `/dev/${m[1]}`, level: m[2] ?? 'unknown', members: members.map((x) => x.dev) });
  }
  return out;
}

function relMount(mp: string | undefined, root: string | undefined): string | undefined {
  if (!mp) return undefined;
  if (mp === '[SWAP]') return 'swap';
  if (!root) return mp;
  const r = root.replace(/\/+$/, '');
  if (mp === r) return '/';
  if (mp.startsWith(r + '/')) return mp.slice(r.length);
  return undefined;
}

/** Write layout XML from what capture found. */
export function captureToXml(c: CaptureInput): string {
  const out: string[] = ['<!-- Disk layout captured by ferry layout capture. -->', '<config>'];
  const raidOf = new Map<string, string>();
  for (const r of c.raids) for (const m of r.members) raidOf.set(m, r.device);
  const vgOf = new Map<string, string>();
  for (const v of c.volumeGroups) for (const pv of v.pvs) vgOf.set(pv, v.name);

  for (const d of c.disks) {
    out.push(`  <disk ${attrs({ dev: d.path, label_type: d.label, unit_of_measurement: 'MiB' })}>`);
    const S = d.sectorSize;
    const end = Number(d.label === 'gpt' ? alignDown(BigInt(d.size - (S + 16384)), MiB) : alignDown(BigInt(d.size), MiB));
    const parts = [...d.partitions].sort((a, b) => a.start - b.start);
    const logicals = d.label === 'msdos' ? parts.filter((p) => p.number >= 5) : [];
    const ext = d.label === 'msdos' ? parts.find((p) => p.number <= 4 && logicals.some((l) => l.start > p.start && l.start < p.start + p.size)) : undefined;
    const top = parts.filter((p) => !logicals.includes(p));
    const lastTop = top[top.length - 1];
    const lastLogical = logicals[logicals.length - 1];
    let cursor = Number(MiB);
    for (const p of parts) {
      const isLogical = logicals.includes(p);
      const type = isLogical ? 'logical' : p === ext ? 'extended' : 'primary';
      const expected = isLogical ? undefined : cursor;
      if (expected !== undefined && p.start !== expected) out.push(`    <!-- partition ${p.number} started ${p.start - expected} bytes away from where it is placed now: gaps are not kept -->`);
      if (!isLogical) cursor = p.start + p.size;
      const fill = (p === lastTop && p.start + p.size === end) || (ext && p === lastLogical && p.start + p.size === ext.start + ext.size);
      const dev = partitionDevice(d.path, p.number);
      const flags = p.flags.filter((f) => !(p === ext && f === 'lba'));
      if (raidOf.has(dev) && !flags.includes('raid')) flags.push('raid');
      if (vgOf.has(dev) && !flags.includes('lvm')) flags.push('lvm');
      out.push(`    <part ${attrs({
        num: p.number, size: fill ? '*' : sizeText(p.size), p_type: type,
        p_name: d.label === 'gpt' && p.name && p.name !== 'primary' ? safeGptName(p.name) : undefined,
        flags: flags.join(',') || undefined, raid_dev: raidOf.get(dev), lvm_group: vgOf.get(dev),
      })} />`);
    }
    out.push('  </disk>');
  }
  if (c.raids.length) {
    out.push('  <raid>');
    for (const r of c.raids) out.push(`    <raid_disk ${attrs({ name: r.device, raid_level: r.level, lvm_group: vgOf.get(r.device) })} />`);
    out.push('  </raid>');
  }
  if (c.volumeGroups.length) {
    out.push('  <lvm>');
    for (const v of c.volumeGroups) {
      out.push(`    <lvm_group ${attrs({ name: v.name, max_log_vols: 0, max_phys_vols: 0, phys_extent_size: `${v.extentSize / 1024}K` })}>`);
      // A group its volumes fill completely gets a `*` last volume, so the layout fits other sizes.
      const full = v.extents !== undefined && v.lvs.reduce((a, l) => a + l.size, 0) === v.extents * v.extentSize;
      v.lvs.forEach((l, i) => {
        const size = full && i === v.lvs.length - 1 ? '*' : l.size % 1024 === 0 ? `${l.size / 1024}K` : `${l.size}B`;
        out.push(`      <lv ${attrs({ name: l.name, size })} />`);
      });
      out.push('    </lvm_group>');
    }
    out.push('  </lvm>');
  }
  let line = 10;
  const lvName = (dev: string) => {
    for (const v of c.volumeGroups) for (const l of v.lvs) {
      const mapper = `/dev/mapper/${v.name.replace(/-/g, '--')}-${l.name.replace(/-/g, '--')}`;
      if (dev === mapper || dev === `/dev/${v.name}/${l.name}`) return `/dev/${v.name}/${l.name}`;
    }
    return dev;
  };
  const fss = c.filesystems.filter((f) => !['linux_raid_member', 'LVM2_member'].includes(f.type));
  const order = (f: CapturedFs) => {
    const mp = relMount(f.mountpoint, c.root) ?? (f.type === 'swap' ? 'swap' : undefined);
    return mp === '/' ? 0 : mp === 'swap' ? 2 : 1;
  };
  for (const f of [...fss].sort((a, b) => order(a) - order(b))) {
    const type = f.type === 'vfat' && f.version === 'FAT32' ? 'vfat' : f.type;
    let mp = relMount(f.mountpoint, c.root);
    if (f.type === 'swap') mp = 'swap';
    if (!mp) {
      out.push(`  <!-- ${f.device}: ${f.type} file system not mounted${c.root ? ` under ${c.root}` : ''}; its mount point is unknown -->`);
      mp = 'none';
    }
    out.push(`  <fsinfo ${attrs({
      line, real_dev: lvName(f.device), mount_dev: f.uuid ? `UUID=${f.uuid}` : undefined, label: f.label, mp, fs: type,
      mkfs_opts: f.type === 'vfat' && f.version ? `-F ${f.version.replace(/^FAT/, '')}` : undefined,
      options: f.options ?? (f.type === 'vfat' ? 'umask=0077' : 'defaults'), dump: 0, pass: mp === '/' ? 1 : f.type === 'swap' || mp === 'none' ? 0 : 2,
    })} />`);
    line += 10;
  }
  out.push('</config>');
  return out.join('\n') + '\n';
}

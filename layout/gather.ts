/**
 * What `ferry layout capture` (on this machine) and `ferry image capture` (over SSH) read about
 * a machine's disks, turned into the CaptureInput that layout/capture.ts writes as layout XML.
 *
 * The commands and files are reached through a CaptureSource: the local one runs common/run.ts,
 * the SSH one runs each command on the remote shell over the capture's connection
 * (server/ssh/layout.ts). Everything that reads the outputs is here, so both paths share one
 * parser: lsblk -J -b -O (the tree), parted -m (the exact table; when the machine has no parted,
 * the table comes from lsblk's START/SIZE/PARTTYPE/PARTLABEL), blkid -p (file systems),
 * /proc/mdstat (arrays and their members in slot order), pvs/vgs/lvs --reportformat json, and
 * the fstab of the captured root (mount points of file systems not mounted now, mount options).
 */
import { FerryError } from '../common/errors.js';
import type { RunOptions, RunResult } from '../common/run.js';
import { parseMdstat, parsePartedMachine, type CaptureInput, type CapturedFs, type CapturedPartition } from './capture.js';
import { splitPartitionDevice } from './names.js';

export interface CaptureSource {
  /** Run a command (common/run.ts semantics: okCodes, FERRY_E_TOOL_MISSING, FERRY_E_COMMAND_FAILED). */
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** A file's text, or undefined when it cannot be read. */
  readFile(path: string): Promise<string | undefined>;
}

interface Node {
  name: string;
  path?: string | null;
  type: string;
  size?: number | string | null;
  'log-sec'?: number | string | null;
  ro?: boolean | string | null;
  pttype?: string | null;
  start?: number | string | null;
  partlabel?: string | null;
  parttype?: string | null;
  partflags?: string | null;
  mountpoint?: string | null;
  mountpoints?: (string | null)[];
  children?: Node[];
}

const num = (v: unknown): number => (v === null || v === undefined || v === '' ? 0 : Number(v));
const pathOf = (n: Node): string => n.path ?? `/dev/${n.name}`;

function walk(n: Node, f: (n: Node) => void): void {
  f(n);
  for (const c of n.children ?? []) walk(c, f);
}

/** GPT partition type GUIDs and MBR type bytes → the parted flags a layout writes. */
const TYPE_FLAGS: Record<string, string> = {
  'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': 'esp',
  '21686148-6449-6e6f-744e-656564454649': 'bios_grub',
  'a19d880f-05fc-4d3b-a006-743f0f84911e': 'raid',
  'e6d6d379-f507-44c2-a23c-238f2a3df928': 'lvm',
  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': 'swap',
  '0xef': 'esp',
  '0xfd': 'raid',
  '0x8e': 'lvm',
  '0x82': 'swap',
};
const EXTENDED = new Set(['0x5', '0xf', '0x85']);

/**
 * A disk's table without parted (pure): blkid -p's PART_ENTRY_* fields of each partition (read
 * from the table itself), lsblk's columns where blkid said nothing (lsblk's PTTYPE, PARTTYPE and
 * PARTLABEL come from udev, which a machine may not run). Offsets and sizes are in 512-byte units
 * whatever the sector size; an msdos extended partition's own size is its boot record only, so it
 * is stretched over its logical partitions.
 */
export function tableFromLsblk(disk: Node, probe: (path: string) => Record<string, string> = () => ({})): { label?: 'gpt' | 'msdos'; partitions: CapturedPartition[] } {
  const pt = probe(pathOf(disk)).PTTYPE ?? disk.pttype;
  const label = pt === 'gpt' ? 'gpt' : pt === 'dos' ? 'msdos' : undefined;
  const partitions: CapturedPartition[] = [];
  let extended: CapturedPartition | undefined;
  for (const c of disk.children ?? []) {
    if (c.type !== 'part') continue;
    const b = probe(pathOf(c));
    const number = b.PART_ENTRY_NUMBER ? Number(b.PART_ENTRY_NUMBER) : splitPartitionDevice(pathOf(c), [pathOf(disk)])?.num;
    if (!number) continue;
    const type = (b.PART_ENTRY_TYPE ?? c.parttype ?? '').toLowerCase();
    const flags: string[] = [];
    if (label === 'msdos' && (num(b.PART_ENTRY_FLAGS ?? c.partflags) & 0x80) !== 0) flags.push('boot');
    if (TYPE_FLAGS[type]) flags.push(TYPE_FLAGS[type]);
    const start = b.PART_ENTRY_OFFSET ? Number(b.PART_ENTRY_OFFSET) * 512 : num(c.start) * 512;
    const size = b.PART_ENTRY_SIZE ? Number(b.PART_ENTRY_SIZE) * 512 : num(c.size);
    const name = label === 'gpt' ? (b.PART_ENTRY_NAME ?? c.partlabel ?? undefined) : undefined;
    const p: CapturedPartition = { number, start, size, name: name || undefined, flags };
    if (label === 'msdos' && EXTENDED.has(type)) extended = p;
    partitions.push(p);
  }
  if (extended) {
    const ext = extended;
    const end = Math.max(ext.start + ext.size, ...partitions.filter((p) => p.number >= 5).map((p) => p.start + p.size));
    ext.size = end - ext.start;
  }
  partitions.sort((a, b) => a.number - b.number);
  return { label, partitions };
}

/** `blkid -p -o export` → its fields (pure). */
export function parseBlkidExport(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) r[l.slice(0, i)] = l.slice(i + 1);
  }
  return r;
}

export interface FstabEntry {
  spec: string;
  file: string;
  type: string;
  options: string;
}

/** fstab text → entries (pure); octal escapes (`\040`) decoded, comments and blank lines skipped. */
export function parseFstab(text: string): FstabEntry[] {
  const un = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: FstabEntry[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const f = t.split(/\s+/);
    if (f.length < 2) continue;
    out.push({ spec: un(f[0]), file: un(f[1]), type: f[2] ?? 'auto', options: f[3] ?? 'defaults' });
  }
  return out;
}

/** The fstab entry that names this file system (UUID=, LABEL=, PARTUUID= or its device path). */
export function fstabEntryOf(entries: FstabEntry[], fs: CapturedFs, partuuid?: string): FstabEntry | undefined {
  const unq = (s: string) => s.replace(/^"(.*)"$/, '$1');
  return entries.find((e) => {
    const m = /^(UUID|LABEL|PARTUUID)=(.*)$/.exec(e.spec);
    if (m) {
      const v = unq(m[2]);
      return m[1] === 'UUID' ? v.toLowerCase() === fs.uuid?.toLowerCase() : m[1] === 'LABEL' ? v === fs.label : v.toLowerCase() === partuuid?.toLowerCase();
    }
    return e.spec === fs.device;
  });
}

/** `devices` of lvs (`/dev/md1(256),…`) → [index of its first PV, first extent]. */
export function extentPosition(devices: string | undefined, pvs: string[]): [number, number] {
  const m = /^([^,(]+)\((\d+)\)/.exec(devices ?? '');
  if (!m) return [Number.MAX_SAFE_INTEGER, 0];
  const i = pvs.indexOf(m[1]);
  return [i < 0 ? pvs.length : i, Number(m[2])];
}

async function lvmReport(src: CaptureSource, cmd: 'pvs' | 'vgs' | 'lvs', fields: string): Promise<Record<string, string>[]> {
  try {
    const r = await src.run([cmd, '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', fields], { quiet: true, env: { DM_DISABLE_UDEV: '1' } });
    const doc = JSON.parse(r.stdout) as { report: Record<string, Record<string, string>[]>[] };
    return doc.report[0]?.[cmd.slice(0, 2)] ?? [];
  } catch (e) {
    // No LVM on this machine (tool missing, or no device-mapper): nothing to report.
    if (e instanceof FerryError && (e.code === 'FERRY_E_TOOL_MISSING' || e.code === 'FERRY_E_COMMAND_FAILED')) return [];
    throw e;
  }
}

/** The partition table of one disk: parted's when the machine has parted, else lsblk's. */
async function tableOf(src: CaptureSource, node: Node, noParted: { v: boolean }, probe: (path: string) => Record<string, string>): Promise<{ label: string; size?: number; sectorSize?: number; partitions: CapturedPartition[] }> {
  if (!noParted.v) {
    try {
      const r = await src.run(['parted', '-s', '-m', pathOf(node), 'unit', 'B', 'print'], { okCodes: [0, 1], quiet: true });
      const p = parsePartedMachine(r.stdout);
      return p ?? { label: 'none', partitions: [] };
    } catch (e) {
      if (!(e instanceof FerryError && e.code === 'FERRY_E_TOOL_MISSING')) throw e;
      noParted.v = true;
    }
  }
  const t = tableFromLsblk(node, probe);
  return { label: t.label ?? (node.pttype || 'none'), partitions: t.partitions };
}

/** Gather what capture needs through `src`, for the given disks or every disk. */
export async function gatherCapture(src: CaptureSource, opts: { disks?: string[]; root?: string } = {}): Promise<CaptureInput> {
  const json = (await src.run(['lsblk', '-J', '-b', '-O', ...(opts.disks ?? [])], { quiet: true })).stdout;
  const tree = (JSON.parse(json) as { blockdevices: Node[] }).blockdevices;
  const bool = (v: unknown) => v === true || v === '1' || v === 1;
  const tops = tree.filter((d) => (opts.disks?.length ? true : d.type === 'disk' && num(d.size) > 0 && !bool(d.ro)));
  const input: CaptureInput = { disks: [], filesystems: [], raids: [], volumeGroups: [], root: opts.root };
  const seen = new Set<string>();
  const noTable: { path: string; label: string }[] = [];
  const partuuids = new Map<string, string>();
  const noParted = { v: false };
  const probed = new Map<string, Record<string, string>>();
  for (const node of tops) {
    const path = pathOf(node);
    const devices: { path: string; mount?: string }[] = [];
    walk(node, (n) => {
      const dp = pathOf(n);
      if (seen.has(dp)) return;
      seen.add(dp);
      const mount = (n.mountpoints ?? [n.mountpoint ?? null]).find((m): m is string => !!m);
      devices.push({ path: dp, mount });
    });
    for (const dev of devices) {
      // -p probes the device itself (no cache); exit 2 means nothing was found.
      const b = parseBlkidExport((await src.run(['blkid', '-p', '-o', 'export', dev.path], { okCodes: [0, 2], quiet: true })).stdout);
      probed.set(dev.path, b);
      if (b.PART_ENTRY_UUID) partuuids.set(dev.path, b.PART_ENTRY_UUID);
      if (!b.TYPE) continue;
      input.filesystems.push({ device: dev.path, type: b.TYPE, uuid: b.UUID, label: b.LABEL, version: b.VERSION, mountpoint: dev.mount });
    }
    const p = await tableOf(src, node, noParted, (dp) => probed.get(dp) ?? {});
    if (p.label === 'gpt' || p.label === 'msdos') {
      input.disks.push({ path, size: p.size ?? num(node.size), sectorSize: p.sectorSize ?? (num(node['log-sec']) || 512), label: p.label, partitions: p.partitions });
    } else noTable.push({ path, label: p.label });
  }
  // A disk named with --disk must be captured; scanning, at least one disk must be.
  const refused = opts.disks?.length ? noTable : input.disks.length ? [] : noTable;
  if (refused.length || !input.disks.length) {
    const list = refused.map((d) => `${d.path} (parted reads "${d.label}")`).join(', ');
    throw new FerryError('FERRY_E_CAPTURE_NO_TABLE', refused.length ? `no GPT or msdos partition table on ${list}: a layout describes partitioned disks` : 'no disk with a partition table was found', {
      details: { disks: refused },
      hint: 'capture disks that have a GPT or msdos partition table (a file system on the whole disk, or an empty disk, has none); name them with --disk DEV',
    });
  }
  // The captured root's fstab: where a file system not mounted now belongs, and its options.
  const fstab = parseFstab((await src.readFile(`${(opts.root ?? '').replace(/\/+$/, '')}/etc/fstab`)) ?? '');
  for (const fs of input.filesystems) {
    const e = fstabEntryOf(fstab, fs, partuuids.get(fs.device));
    if (!e) continue;
    if (e.options && e.options !== 'defaults') fs.options = e.options;
    // Not mounted now, or mounted outside the captured root (the host's own /): the root's fstab says.
    const r = (opts.root ?? '').replace(/\/+$/, '');
    const inside = fs.mountpoint && (!r || fs.mountpoint === r || fs.mountpoint.startsWith(r + '/') || fs.mountpoint === '[SWAP]');
    if (!inside && e.file.startsWith('/')) fs.mountpoint = `${r}${e.file === '/' && r ? '' : e.file}` || '/';
  }
  const mdstat = (await src.readFile('/proc/mdstat')) ?? '';
  const ours = (dev: string) => input.disks.some((d) => dev.startsWith(d.path));
  // /proc/mdstat lists the newest array first; a layout reads better in name order.
  input.raids = parseMdstat(mdstat)
    .filter((a) => a.members.some(ours))
    .sort((a, b) => a.device.localeCompare(b.device, 'en', { numeric: true }));
  const pvs = await lvmReport(src, 'pvs', 'pv_name,vg_name');
  const vgs = await lvmReport(src, 'vgs', 'vg_name,vg_extent_size,vg_extent_count');
  const lvs = await lvmReport(src, 'lvs', 'lv_name,vg_name,lv_size,devices');
  const raidDevs = new Set(input.raids.map((a) => a.device));
  for (const vg of vgs) {
    const vgPvs = pvs.filter((p) => p.vg_name === vg.vg_name).map((p) => p.pv_name);
    if (!vgPvs.some((pv) => ours(pv) || raidDevs.has(pv))) continue;
    input.volumeGroups.push({
      name: vg.vg_name, extentSize: Number(vg.vg_extent_size), extents: Number(vg.vg_extent_count), pvs: vgPvs,
      // lvs sorts by name; the layout keeps the order the volumes stand in on the group's PVs.
      lvs: lvs
        .filter((l) => l.vg_name === vg.vg_name)
        .map((l) => ({ l, at: extentPosition(l.devices, vgPvs) }))
        .sort((a, b) => a.at[0] - b.at[0] || a.at[1] - b.at[1])
        .map(({ l }) => ({ name: l.lv_name, size: Number(l.lv_size) })),
    });
  }
  return input;
}

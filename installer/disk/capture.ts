/**
 * `ferry layout capture`: read a machine's disks with the system's own tools (lsblk, parted,
 * blkid, /proc/mdstat, the LVM reports) and write them as layout XML (layout/capture.ts).
 */
import { readFileSync } from 'node:fs';
import { FerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';
import { captureToXml, parseMdstat, parsePartedMachine, type CaptureInput, type CapturedFs } from '../../layout/capture.js';
import { parseLsblk, type LsblkNode } from './discover.js';

async function blkid(dev: string): Promise<Record<string, string>> {
  // -p probes the device itself (no cache); exit 2 means nothing was found.
  const r = await run(['blkid', '-p', '-o', 'export', dev], { okCodes: [0, 2], quiet: true });
  const out: Record<string, string> = {};
  for (const l of r.stdout.split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

async function lvmReport(cmd: 'pvs' | 'vgs' | 'lvs', fields: string): Promise<Record<string, string>[]> {
  try {
    const r = await run([cmd, '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', fields], { quiet: true, env: { DM_DISABLE_UDEV: '1' } });
    const doc = JSON.parse(r.stdout) as { report: Record<string, Record<string, string>[]>[] };
    return doc.report[0]?.[cmd.slice(0, 2)] ?? [];
  } catch (e) {
    // No LVM on this machine (tool missing, or no device-mapper): nothing to report.
    if (e instanceof FerryError && (e.code === 'FERRY_E_TOOL_MISSING' || e.code === 'FERRY_E_COMMAND_FAILED')) return [];
    throw e;
  }
}

/** `devices` of lvs (`/dev/md1(256),…`) → [index of its first PV, first extent]. */
export function extentPosition(devices: string | undefined, pvs: string[]): [number, number] {
  const m = /^([^,(]+)\((\d+)\)/.exec(devices ?? '');
  if (!m) return [Number.MAX_SAFE_INTEGER, 0];
  const i = pvs.indexOf(m[1]);
  return [i < 0 ? pvs.length : i, Number(m[2])];
}

function walk(n: LsblkNode, f: (n: LsblkNode) => void): void {
  f(n);
  for (const c of n.children ?? []) walk(c, f);
}

/** Gather what capture needs (I/O), for the given disks or every disk. */
export async function gatherCapture(opts: { disks?: string[]; root?: string } = {}): Promise<CaptureInput> {
  const argv = ['lsblk', '-J', '-b', '-O', ...(opts.disks ?? [])];
  const json = (await run(argv, { quiet: true })).stdout;
  const tree = (JSON.parse(json) as { blockdevices: LsblkNode[] }).blockdevices;
  const tops = parseLsblk(json).filter((d) => (opts.disks?.length ? true : d.type === 'disk' && d.size > 0 && !d.readOnly));
  const input: CaptureInput = { disks: [], filesystems: [], raids: [], volumeGroups: [], root: opts.root };
  const seen = new Set<string>();
  const noTable: { path: string; label: string }[] = [];
  for (const d of tops) {
    const r = await run(['parted', '-s', '-m', d.path, 'unit', 'B', 'print'], { okCodes: [0, 1], quiet: true });
    const p = parsePartedMachine(r.stdout);
    if (p && (p.label === 'gpt' || p.label === 'msdos')) {
      input.disks.push({ path: d.path, size: p.size, sectorSize: p.sectorSize, label: p.label, partitions: p.partitions });
    } else noTable.push({ path: d.path, label: p?.label ?? 'none' });
    const node = tree.find((n) => (n.path ?? `/dev/${n.name}`) === d.path)!;
    const devices: { path: string; mount?: string }[] = [];
    walk(node, (n) => {
      const path = n.path ?? `/dev/${n.name}`;
      if (seen.has(path)) return;
      seen.add(path);
      const mount = (n.mountpoints ?? [n.mountpoint ?? null]).find((m): m is string => !!m);
      devices.push({ path, mount });
    });
    for (const dev of devices) {
      const b = await blkid(dev.path);
      if (!b.TYPE) continue;
      const fs: CapturedFs = { device: dev.path, type: b.TYPE, uuid: b.UUID, label: b.LABEL, version: b.VERSION, mountpoint: dev.mount };
      input.filesystems.push(fs);
    }
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
  let mdstat = '';
  try {
    mdstat = readFileSync('/proc/mdstat', 'utf8');
  } catch {
    /* no md driver: no arrays */
  }
  const ours = (dev: string) => input.disks.some((d) => dev.startsWith(d.path));
  // /proc/mdstat lists the newest array first; a layout reads better in name order.
  input.raids = parseMdstat(mdstat)
    .filter((a) => a.members.some(ours))
    .sort((a, b) => a.device.localeCompare(b.device, 'en', { numeric: true }));
  const pvs = await lvmReport('pvs', 'pv_name,vg_name');
  const vgs = await lvmReport('vgs', 'vg_name,vg_extent_size,vg_extent_count');
  const lvs = await lvmReport('lvs', 'lv_name,vg_name,lv_size,devices');
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

export async function captureLayout(opts: { disks?: string[]; root?: string } = {}): Promise<string> {
  return captureToXml(await gatherCapture(opts));
}

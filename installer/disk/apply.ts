/**
 * Applying a disk plan: check the disks are the ones planned and free, run the plan's steps,
 * wait for each device node the kernel must create, then mount the file systems under the
 * target root, parents first. Teardown undoes the mounts, volume groups and arrays.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { ProgressEvent } from '../../common/progress.js';
import { run } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import { baseName } from '../../layout/names.js';
import type { ApplyOptions, BlockDevice, DiskPlan, PlannedDisk, PlanStep } from '../../layout/types.js';
import { discoverDisks } from './discover.js';
import { refuseDisksInUse } from './in-use.js';

function isBlockDevice(p: string): boolean {
  try {
    return statSync(p).isBlockDevice();
  } catch {
    return false;
  }
}

/** The kernel's view of a partition (sysfs counts 512-byte units whatever the sector size). */
function kernelGeometry(dev: string): { start: number; size: number } | undefined {
  try {
    const base = `/sys/class/block/${baseName(dev)}`;
    return { start: Number(readFileSync(`${base}/start`, 'utf8')) * 512, size: Number(readFileSync(`${base}/size`, 'utf8')) * 512 };
  } catch {
    return undefined;
  }
}

/** A path inside the target root; refuses anything that would land outside it. */
export function inRoot(root: string, mp: string): string {
  const r = resolve(root);
  const p = resolve(r, '.' + (mp.startsWith('/') ? mp : '/' + mp));
  const rel = relative(r, p);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new FerryError('FERRY_E_MOUNT_ESCAPE', `mount point ${mp} resolves outside the target root ${root}`, { details: { root, mountpoint: mp } });
  }
  return p;
}

/** Check that every disk of the plan is present, unchanged and free. */
export function checkDisks(plan: DiskPlan, found: BlockDevice[]): void {
  const mine: BlockDevice[] = [];
  for (const pd of plan.disks) {
    const d = found.find((x) => x.path === pd.path);
    if (!d) throw new FerryError('FERRY_E_DISK_NOT_FOUND', `${pd.path} (layout disk ${pd.layoutDev}) is not present`, { details: { device: pd.path } });
    if (d.size !== pd.size || d.sectorSize !== pd.sectorSize) {
      throw new FerryError('FERRY_E_DISK_CHANGED', `${pd.path} is not the disk the plan was made for: it has ${d.size} bytes in ${d.sectorSize}-byte sectors, the plan assumed ${pd.size} bytes in ${pd.sectorSize}-byte sectors`, {
        details: { device: pd.path, size: d.size, sectorSize: d.sectorSize, plannedSize: pd.size, plannedSectorSize: pd.sectorSize },
        hint: 'plan again against the disks as they are (ferry layout plan --disk DEV)',
      });
    }
    mine.push(d);
  }
  refuseDisksInUse(mine);
}

async function runStep(s: PlanStep, emit: (e: ProgressEvent) => void, timeoutMs: number): Promise<void> {
  emit({ phase: 'disks', state: 'progress', object: s.device ?? s.argv[s.argv.length - 1], message: s.comment ?? s.argv.join(' ') });
  try {
    await run(s.argv, { env: s.env, timeoutMs: s.kind === 'mkfs' || s.kind === 'raid' ? 600_000 : 120_000 });
  } catch (e) {
    if (!s.mayFail) throw e;
    log.info('tolerated failure', { argv: s.argv, error: (e as Error).message.split('\n')[0] });
  }
  if (s.waitFor?.length) {
    const devices = s.waitFor;
    await waitFor(() => devices.every(isBlockDevice), { what: `device nodes ${devices.join(', ')} after ${s.argv[0]}`, timeoutMs });
  }
}

async function waitForPartitions(pd: PlannedDisk, timeoutMs: number): Promise<void> {
  const parts = pd.partitions.filter((p) => p.type !== 'extended');
  const ready = () => parts.every((p) => {
    if (!isBlockDevice(p.device)) return false;
    const g = kernelGeometry(p.device);
    // Without sysfs (odd containers) the node's presence is all we can check.
    return !g || (g.start === p.start && g.size === p.size);
  });
  try {
    await waitFor(ready, { what: `partitions of ${pd.path}`, timeoutMs: Math.min(5000, timeoutMs) });
    return;
  } catch {
    // A loop device (or a kernel that missed parted's update) may need the table read again.
    await run(['partx', '-u', pd.path]).catch((e) => log.info('partx -u failed', { error: (e as Error).message.split('\n')[0] }));
  }
  await waitFor(ready, { what: `partitions ${parts.map((p) => p.device).join(', ')} of ${pd.path} with the planned geometry`, timeoutMs });
}

function holdersOf(found: BlockDevice[], plan: DiskPlan): string[] {
  return [...new Set(plan.disks.flatMap((pd) => found.find((x) => x.path === pd.path)?.holders ?? []))];
}

/** Active logical volumes by their /dev/mapper path → `vg/lv`. */
async function logicalVolumes(): Promise<Map<string, string>> {
  const r = await run(['lvs', '--reportformat', 'json', '-o', 'vg_name,lv_name,lv_dm_path'], { env: { DM_DISABLE_UDEV: '1' }, quiet: true });
  const doc = JSON.parse(r.stdout) as { report: { lv: { vg_name: string; lv_name: string; lv_dm_path: string }[] }[] };
  return new Map((doc.report[0]?.lv ?? []).map((l) => [l.lv_dm_path, `${l.vg_name}/${l.lv_name}`]));
}

/** Release arrays and volumes built on the disks (left by an earlier install), when allowed. */
async function releaseHolders(found: BlockDevice[], plan: DiskPlan): Promise<void> {
  // Volumes before the arrays under them; an array on two disks is stopped once.
  const holders = holdersOf(found, plan);
  const lvm = { DM_DISABLE_UDEV: '1' };
  let lvByPath: Map<string, string> | undefined;
  for (const h of holders) {
    if (!existsSync(h)) continue;
    const name = baseName(h);
    if (/^md/.test(name)) await run(['mdadm', '--stop', h]);
    else if (h.startsWith('/dev/mapper/') || /^dm-/.test(name)) {
      // Logical volumes are deactivated through LVM (the boot environment has no dmsetup).
      lvByPath ??= await logicalVolumes();
      const lv = lvByPath.get(h);
      if (lv) await run(['lvchange', '-a', 'n', lv], { env: lvm });
      else await run(['dmsetup', 'remove', '--retry', name], { env: lvm });
    }
    else throw new FerryError('FERRY_E_DISK_IN_USE', `${h} is built on ${plan.disks.map((d) => d.path).join(', ')} and Ferry does not know how to release it`, { details: { holder: h }, hint: `release ${h} by hand, then apply again` });
  }
}

/**
 * Execute a plan. Refuses without `yes`, refuses always when anything on the disks is mounted,
 * and checks that the disks are the size the plan assumed.
 */
export async function applyDiskPlan(plan: DiskPlan, opts: ApplyOptions): Promise<void> {
  const emit = opts.progress ?? (() => {});
  const timeoutMs = opts.nodeTimeoutMs ?? 20_000;
  if (!opts.yes) {
    throw new FerryError('FERRY_E_CONFIRM_REQUIRED', `applying the layout destroys everything on ${plan.disks.map((d) => d.path).join(', ')}`, {
      details: { disks: plan.disks.map((d) => d.path) },
      hint: 'check the plan (ferry layout plan …), then confirm with --yes',
    });
  }
  const found = await discoverDisks({ only: plan.disks.map((d) => d.path) });
  checkDisks(plan, found);
  if (found.some((d) => d.holders.length > 0)) {
    emit({ phase: 'disks', state: 'info', message: `releasing ${holdersOf(found, plan).join(', ')} built on the target disks` });
    await releaseHolders(found, plan);
    checkDisks(plan, await discoverDisks({ only: plan.disks.map((d) => d.path) }));
  }
  emit({ phase: 'disks', state: 'start', message: `${plan.steps.length} steps on ${plan.disks.map((d) => d.path).join(', ')}` });
  for (const s of plan.steps) {
    if (s.kind === 'partition') {
      await runStep({ ...s, waitFor: undefined }, emit, timeoutMs);
      await waitForPartitions(plan.disks.find((d) => d.path === s.device)!, timeoutMs);
    } else await runStep(s, emit, timeoutMs);
  }
  await mountPlan(plan, opts.root, emit);
  emit({ phase: 'disks', state: 'end', message: `${plan.mounts.length} file system(s) mounted under ${opts.root}` });
}

/** Mount the plan's file systems under root, parents first. */
export async function mountPlan(plan: DiskPlan, root: string, emit: (e: ProgressEvent) => void = () => {}): Promise<void> {
  mkdirSync(root, { recursive: true });
  for (const m of plan.mounts) {
    const target = inRoot(root, m.mountpoint);
    mkdirSync(target, { recursive: true });
    emit({ phase: 'disks', state: 'progress', object: m.device, message: `mount ${m.device} on ${target}` });
    await run(['mount', '-t', m.fstype, m.device, target]);
  }
}

/** Unmount what applyDiskPlan mounted, deactivate its volume groups, stop its arrays. */
export async function teardownDiskPlan(plan: DiskPlan, root: string): Promise<void> {
  const errors: string[] = [];
  const attempt = async (argv: string[], env?: Record<string, string>) => {
    try {
      await run(argv, { env });
    } catch (e) {
      errors.push((e as Error).message.split('\n')[0]);
    }
  };
  for (const m of [...plan.mounts].reverse()) {
    const target = inRoot(root, m.mountpoint);
    if (isMountpoint(target)) await attempt(['umount', target]);
  }
  for (const v of plan.volumeGroups) await attempt(['vgchange', '-a', 'n', v.name], { DM_DISABLE_UDEV: '1' });
  for (const r of plan.raids) if (existsSync(r.device)) await attempt(['mdadm', '--stop', r.device]);
  if (errors.length) {
    throw new FerryError('FERRY_E_TEARDOWN', `teardown left ${errors.length} thing(s) in place:\n  ${errors.join('\n  ')}`, { details: { errors }, hint: 'see what still uses the devices (lsblk, mount, cat /proc/mdstat) and release it by hand' });
  }
}

function isMountpoint(p: string): boolean {
  try {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    const target = resolve(p);
    return mounts.split('\n').some((l) => l.split(' ')[4] === target.replace(/ /g, '\\040'));
  } catch {
    return false;
  }
}


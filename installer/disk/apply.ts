/**
 * Applying a disk plan: check the disks are the ones planned and free, then run the plan's
 * steps in order (release what an earlier install left, partitions, the rescan, arrays,
 * volumes, file systems, mounts under the target root), waiting for each device node the kernel
 * must create. Everything that runs is a step of the plan; when a step fails, what the steps
 * before it set up is undone in reverse (the plan's teardown steps for them), and the error is
 * the step's. Teardown runs the plan's teardown steps.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { ProgressEvent } from '../../common/progress.js';
import { waitFor } from '../../common/wait.js';
import { stepArgv } from '../../layout/plan-steps.js';
import type { ApplyOptions, BlockDevice, DiskPlan, PlannedPartition, PlanStep } from '../../layout/types.js';
import { systemHost, type DiskHost } from './host.js';
import { refuseDisksInUse, type SystemView } from './in-use.js';

export interface DiskApplyOptions extends ApplyOptions {
  /** The machine the plan runs on (default: this one). */
  host?: DiskHost;
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
export function checkDisks(plan: DiskPlan, found: BlockDevice[], sys?: SystemView): void {
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
  refuseDisksInUse(mine, sys);
}

/**
 * What applying checks before the first write: the disks (checkDisks), and that the plan
 * releases every array and volume found on them.
 */
export function preflight(plan: DiskPlan, found: BlockDevice[], sys?: SystemView): void {
  checkDisks(plan, found, sys);
  const released = new Set(plan.steps.filter((s) => s.kind === 'release').map((s) => s.device));
  const holders = [...new Set(plan.disks.flatMap((pd) => found.find((x) => x.path === pd.path)?.holders ?? []))];
  for (const h of holders) {
    if (released.has(h)) continue;
    // The plan releases arrays and logical volumes; one made before they were there does not.
    const known = /^\/dev\/(md|mapper\/)/.test(h);
    throw new FerryError('FERRY_E_DISK_IN_USE', `${h} is built on ${plan.disks.map((d) => d.path).join(', ')} and ${known ? 'the plan does not release it (it was made before it was there)' : 'Ferry does not know how to release it'}`, {
      details: { holder: h },
      hint: known ? 'plan again against the disks as they are (ferry layout plan --disk DEV), then apply that plan' : `release ${h} by hand, then apply again`,
    });
  }
}

function partitionsOf(plan: DiskPlan): Map<string, PlannedPartition> {
  return new Map(plan.disks.flatMap((d) => d.partitions.map((p) => [p.device, p] as const)));
}

/** Whether a step's condition (`when`) holds now. */
function holds(s: PlanStep, root: string, host: DiskHost): boolean {
  if (s.when === 'present') return !!s.device && host.isBlockDevice(s.device);
  if (s.when === 'mounted') return host.isMountpoint(inRoot(root, s.mountpoint!));
  return true;
}

async function runStep(s: PlanStep, ctx: { plan: DiskPlan; root: string; host: DiskHost; emit: (e: ProgressEvent) => void; timeoutMs: number; parts: Map<string, PlannedPartition> }): Promise<void> {
  const { host, root } = ctx;
  if (!holds(s, root, host)) {
    log.info('step skipped', { argv: s.argv, when: s.when });
    return;
  }
  if (s.kind === 'mount') {
    host.mkdir(root);
    host.mkdir(inRoot(root, s.mountpoint!));
  }
  const argv = stepArgv(s, (mp) => inRoot(root, mp));
  ctx.emit({ phase: 'disks', state: 'progress', object: s.device ?? argv[argv.length - 1], message: s.comment ?? argv.join(' ') });
  try {
    await host.run(argv, { env: s.env, timeoutMs: s.kind === 'mkfs' || s.kind === 'raid' ? 600_000 : 120_000 });
  } catch (e) {
    if (!s.mayFail) throw e;
    log.info('tolerated failure', { argv, error: (e as Error).message.split('\n')[0] });
  }
  if (s.waitFor?.length) {
    const devices = s.waitFor;
    const ready = () => devices.every((d) => {
      if (!host.isBlockDevice(d)) return false;
      const p = ctx.parts.get(d);
      if (!p) return true;
      // Without sysfs (odd containers) the node's presence is all we can check.
      const g = host.partitionGeometry(d);
      return !g || (g.start === p.start && g.size === p.size);
    });
    const geometry = devices.some((d) => ctx.parts.has(d)) ? ' with the planned geometry' : '';
    await waitFor(ready, { what: `device nodes ${devices.join(', ')}${geometry} after ${argv[0]}`, timeoutMs: ctx.timeoutMs });
  }
}

/** Run teardown steps; every one is attempted, and the failures are returned. */
async function runTeardown(steps: PlanStep[], root: string, host: DiskHost): Promise<string[]> {
  const errors: string[] = [];
  for (const s of steps) {
    try {
      if (!holds(s, root, host)) continue;
      await host.run(stepArgv(s, (mp) => inRoot(root, mp)), { env: s.env, timeoutMs: 120_000 });
    } catch (e) {
      errors.push((e as Error).message.split('\n')[0]);
    }
  }
  return errors;
}

/**
 * Execute a plan. Refuses without `yes`, refuses always when anything on the disks is mounted,
 * and checks that the disks are the size the plan assumed.
 */
export async function applyDiskPlan(plan: DiskPlan, opts: DiskApplyOptions): Promise<void> {
  const emit = opts.progress ?? (() => {});
  const host = opts.host ?? systemHost;
  const root = opts.root;
  const paths = plan.disks.map((d) => d.path);
  if (!opts.yes) {
    throw new FerryError('FERRY_E_CONFIRM_REQUIRED', `applying the layout destroys everything on ${paths.join(', ')}`, {
      details: { disks: paths },
      hint: 'check the plan (ferry layout plan …, or --dry-run), then confirm with --yes',
    });
  }
  preflight(plan, await host.discover(paths), host.system());
  const ctx = { plan, root, host, emit, timeoutMs: opts.nodeTimeoutMs ?? 20_000, parts: partitionsOf(plan) };
  emit({ phase: 'disks', state: 'start', message: `${plan.steps.length} steps on ${paths.join(', ')}` });
  let done = 0;
  try {
    for (const [i, s] of plan.steps.entries()) {
      if (s.kind === 'release' && i === 0) emit({ phase: 'disks', state: 'info', message: `releasing ${plan.steps.filter((x) => x.kind === 'release').map((x) => x.device).join(', ')} built on the target disks` });
      await runStep(s, ctx);
      // Released: the disks must now be free, as for a fresh install.
      if (s.kind === 'release' && plan.steps[i + 1]?.kind !== 'release') checkDisks(plan, await host.discover(paths), host.system());
      done = i + 1;
    }
  } catch (e) {
    const undo = plan.teardown.filter((t) => t.undoes !== undefined && t.undoes < done);
    if (undo.length) {
      emit({ phase: 'disks', state: 'info', message: `step ${done + 1} failed: undoing ${undo.length} step(s) before it` });
      const errors = await runTeardown(undo, root, host);
      if (errors.length) {
        log.error('undoing after a failure left things in place', { errors });
        emit({ phase: 'disks', state: 'warning', message: `undoing after the failure left ${errors.length} thing(s) in place: ${errors.join('; ')}` });
      }
    }
    throw e;
  }
  emit({ phase: 'disks', state: 'end', message: `${plan.mounts.length} file system(s) mounted under ${root}` });
}

/** Undo applyDiskPlan: the plan's teardown steps (unmount, deactivate volume groups, stop arrays). */
export async function teardownDiskPlan(plan: DiskPlan, root: string, opts: { host?: DiskHost } = {}): Promise<void> {
  const errors = await runTeardown(plan.teardown, root, opts.host ?? systemHost);
  if (errors.length) {
    throw new FerryError('FERRY_E_TEARDOWN', `teardown left ${errors.length} thing(s) in place:\n  ${errors.join('\n  ')}`, { details: { errors }, hint: 'see what still uses the devices (lsblk, mount, cat /proc/mdstat) and release it by hand' });
  }
}

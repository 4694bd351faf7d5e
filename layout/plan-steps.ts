/**
 * The steps of a plan around its core (partitions, arrays, volumes, file systems): releasing
 * what an earlier install left on the disks, the partition rescan, the mounts under the target
 * root, and the teardown that undoes them. Pure, like the rest of the planner: the plan holds
 * every command that runs, so `ferry layout plan` shows exactly what `apply` does.
 */
import { baseName } from './names.js';
import { TARGET_ROOT, type DiskTarget, type PlannedDisk, type PlannedMount, type PlanStep } from './types.js';

/** Without udev (the boot environment has none) device-mapper must create and remove its own nodes. */
export const LVM_ENV = { DM_DISABLE_UDEV: '1' };

/**
 * `vg-lv` as device-mapper names a logical volume (a `-` inside either name is doubled) → the
 * volume group and volume, or undefined when the name is not of that form.
 */
export function splitDmName(name: string): { vg: string; lv: string } | undefined {
  for (let i = 1; i < name.length - 1; i++) {
    if (name[i] !== '-') continue;
    if (name[i + 1] === '-') {
      i++;
      continue;
    }
    return { vg: name.slice(0, i).replace(/--/g, '-'), lv: name.slice(i + 1).replace(/--/g, '-') };
  }
  return undefined;
}

/**
 * Stop the arrays and deactivate the volumes built on the disks (left by an earlier install),
 * the topmost first: a volume before the array under it; an array on two disks is stopped once.
 * Holders of other kinds get no step: applying refuses them with the reason.
 */
export function releaseSteps(targets: DiskTarget[]): PlanStep[] {
  const holders = [...new Set(targets.flatMap((t) => t.holders ?? []))];
  const steps: PlanStep[] = [];
  for (const h of holders) {
    const name = baseName(h);
    const on = targets.filter((t) => t.holders?.includes(h)).map((t) => t.path).join(', ');
    if (/^md/.test(name)) {
      steps.push({ kind: 'release', argv: ['mdadm', '--stop', h], device: h, when: 'present', comment: `stop array ${h} built on ${on}` });
    } else if (h.startsWith('/dev/mapper/')) {
      // Deactivated through LVM: the boot environment has no dmsetup.
      const lv = splitDmName(name);
      if (lv) steps.push({ kind: 'release', argv: ['lvchange', '-a', 'n', `${lv.vg}/${lv.lv}`], device: h, env: LVM_ENV, when: 'present', comment: `deactivate volume ${h} built on ${on}` });
    }
  }
  return steps;
}

/**
 * After parted: give the new table its seeded identity (parted cannot): the disk identifier
 * (GPT disk GUID or MBR id) and, on GPT, every partition's GUID. Without these every node
 * installed from one layout would share PARTUUIDs (parted draws random ones, but a cloned
 * disk or a retry would not keep them) - with them a redeploy reproduces them exactly.
 */
export function identitySteps(d: PlannedDisk): PlanStep[] {
  const steps: PlanStep[] = [];
  // Only the identifiers change, not the geometry: no re-read (on an msdos disk with logical
  // partitions the kernel's re-read dropped them, measured on loop devices); the rescan follows.
  const quiet = ['--no-reread', '--no-tell-kernel'];
  if (d.diskId) steps.push({ kind: 'partition', argv: ['sfdisk', ...quiet, '--disk-id', d.path, d.diskId], device: d.path, comment: `${d.label === 'gpt' ? 'GPT disk GUID' : 'MBR disk id'} of ${d.path} (seeded)` });
  for (const p of d.partitions) {
    if (p.partUuid) steps.push({ kind: 'partition', argv: ['sfdisk', ...quiet, '--part-uuid', d.path, String(p.number), p.partUuid], device: d.path, comment: `GUID of partition ${p.device} (seeded)` });
  }
  return steps;
}

/**
 * After parted: have the kernel read the new table (a loop device, or a kernel that missed
 * parted's update, needs it), then wait for every partition with the planned geometry.
 */
export function rescanStep(d: PlannedDisk): PlanStep {
  return {
    kind: 'rescan', argv: ['partx', '-u', d.path], device: d.path, mayFail: true,
    waitFor: d.partitions.filter((p) => p.type !== 'extended').map((p) => p.device),
    comment: `the kernel's view of the partitions of ${d.path}, then wait for them`,
  };
}

/** `$ROOT/boot` for `/boot`, `$ROOT` for `/`. */
export function underRoot(mountpoint: string): string {
  return mountpoint === '/' ? TARGET_ROOT : TARGET_ROOT + mountpoint;
}

/** Mount the file systems under the target root, parents first (the mount point is made first). */
export function mountSteps(mounts: PlannedMount[]): PlanStep[] {
  return mounts.map((m) => ({
    kind: 'mount', argv: ['mount', '-t', m.fstype, m.device, underRoot(m.mountpoint)], device: m.device, mountpoint: m.mountpoint,
    comment: `make the directory and mount ${m.fstype} on ${m.mountpoint}`,
  }));
}

/**
 * What undoes the setup, in reverse: unmount what was mounted (children first), deactivate the
 * volume groups, stop the arrays. Data stays on the disks.
 */
export function teardownSteps(steps: PlanStep[]): PlanStep[] {
  const out: PlanStep[] = [];
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i];
    if (s.kind === 'mount') {
      out.push({ kind: 'umount', argv: ['umount', underRoot(s.mountpoint!)], device: s.device, mountpoint: s.mountpoint, when: 'mounted', undoes: i });
    } else if (s.kind === 'lvm' && s.argv[0] === 'vgcreate') {
      const vg = s.argv[s.argv.indexOf('--physicalextentsize') + 2];
      out.push({ kind: 'deactivate', argv: ['vgchange', '-a', 'n', vg], env: LVM_ENV, undoes: i, comment: `volume group ${vg}` });
    } else if (s.kind === 'raid' && s.argv[1] === '--create') {
      out.push({ kind: 'stop', argv: ['mdadm', '--stop', s.device!], device: s.device, when: 'present', undoes: i });
    }
  }
  return out;
}

/** The argv a step runs with the target root filled in (only mount and umount name it). */
export function stepArgv(s: PlanStep, resolveMountpoint: (mountpoint: string) => string): string[] {
  if (s.mountpoint === undefined) return s.argv;
  return s.argv.map((a) => (a === underRoot(s.mountpoint!) ? resolveMountpoint(s.mountpoint!) : a));
}

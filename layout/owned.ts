/**
 * Which devices a disk plan owns, and the words of its commands that name any other. Pure.
 * A plan's commands may name only its own disks, their partitions, and the arrays and
 * volumes it builds on them; the parser keeps option lists to options, and this check makes
 * sure nothing else slipped through (a device inside an option value, a member list).
 */
import type { DiskPlan, PlanStep } from './types.js';

/** Every device node the plan writes to or builds. */
export function ownedDevices(plan: DiskPlan): Set<string> {
  const own = new Set<string>();
  for (const d of plan.disks) {
    own.add(d.path);
    for (const p of d.partitions) own.add(p.device);
  }
  for (const r of plan.raids) own.add(r.device);
  for (const v of plan.volumeGroups) for (const lv of v.lvs) {
    own.add(lv.device);
    own.add(lv.layoutDevice);
  }
  return own;
}

/** Words of the plan's steps that name a /dev path the plan does not own. */
export function foreignDevices(plan: DiskPlan): { step: PlanStep['kind']; argv: string[]; device: string }[] {
  const own = ownedDevices(plan);
  const out: { step: PlanStep['kind']; argv: string[]; device: string }[] = [];
  for (const s of plan.steps) {
    // Releasing an old array or volume names a device discovery found built on one of the
    // plan's own disks (DiskTarget.holders), never a layout value: it is the plan's to stop.
    if (s.kind === 'release') continue;
    for (const w of s.argv.slice(1)) {
      // A device may stand alone or inside an option value (`device=/dev/X`, `--x=/dev/X`).
      for (const m of w.matchAll(/\/dev\/[^\s,=]+/g)) {
        if (!own.has(m[0])) out.push({ step: s.kind, argv: s.argv, device: m[0] });
      }
    }
  }
  return out;
}

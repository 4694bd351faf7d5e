/**
 * A disk plan as people read it (`ferry layout plan`, and `--dry-run` of `ferry layout apply` and
 * `ferry install`): the disks, arrays, volumes and file systems, then every command in the order
 * it runs, and the teardown. With a root, mount points are shown where they will be.
 */
import { formatBytes } from '../../common/units.js';
import { stepArgv } from '../../layout/plan-steps.js';
import type { DiskPlan, PlanStep } from '../../layout/types.js';
import { inRoot } from './apply.js';

function stepLine(s: PlanStep, root: string | undefined): string {
  const argv = root === undefined ? s.argv : stepArgv(s, (mp) => inRoot(root, mp));
  const env = s.env ? Object.entries(s.env).map(([k, x]) => `${k}=${x} `).join('') : '';
  const notes = [
    s.mayFail ? 'may fail' : '',
    s.when === 'present' ? `if ${s.device} is present` : s.when === 'mounted' ? `if ${s.mountpoint} is mounted` : '',
    s.waitFor?.length ? `then wait for ${s.waitFor.join(' ')}` : '',
  ].filter(Boolean);
  return `  ${env}${argv.join(' ')}${notes.length ? '   # ' + notes.join('; ') : ''}`;
}

export function formatPlan(plan: DiskPlan, root?: string): string {
  const out: string[] = [];
  const w = (s: string) => out.push(s);
  for (const d of plan.disks) {
    w(`disk ${d.path} (layout ${d.layoutDev}): ${d.label}, ${d.size} bytes (${formatBytes(d.size)}), ${d.sectorSize}-byte sectors, ${d.unallocated} bytes unallocated`);
    for (const p of d.partitions.slice().sort((a, b) => a.start - b.start)) {
      w(`  ${String(p.number).padStart(2)} ${p.device.padEnd(18)} ${p.type.padEnd(8)} start ${String(p.start).padStart(14)}  size ${String(p.size).padStart(14)} (${formatBytes(p.size)})${p.flags.length ? '  flags ' + p.flags.join(',') : ''}${p.layoutNum !== p.number ? `  (layout num ${p.layoutNum})` : ''}`);
    }
  }
  for (const r of plan.raids) w(`raid ${r.device}: ${r.level} of ${r.members.join(' ')}${r.spares.length ? ' spares ' + r.spares.join(' ') : ''}, ${r.size} bytes, uuid ${r.uuid}`);
  for (const v of plan.volumeGroups) {
    w(`volume group ${v.name} on ${v.pvs.join(' ')}: ${v.extents} extents of ${v.extentSize} bytes`);
    for (const l of v.lvs) w(`  ${l.device}: ${l.extents} extents, ${l.size} bytes (${formatBytes(l.size)})`);
  }
  w('file systems:');
  for (const f of plan.filesystems) {
    w(`  ${f.device.padEnd(24)} ${f.fs.padEnd(8)} ${f.mountpoint.padEnd(14)} ${f.format ? `uuid ${f.uuid ?? '-'}` : '(fstab only)'}${f.label ? ` label ${f.label}` : ''}`);
  }
  w(`bootloader: ${plan.bootloader.mode ?? 'detect'}${plan.bootloader.flavor ? ` (${plan.bootloader.flavor})` : ''}${plan.bootloader.targets.length ? ' on ' + plan.bootloader.targets.join(' ') : ''}${plan.bootloader.esp ? `, ESP ${plan.bootloader.esp.device}` : ''}`);
  w(`commands${root === undefined ? ' ($ROOT is the target root)' : ''}:`);
  for (const s of plan.steps) w(stepLine(s, root));
  w('teardown:');
  for (const s of plan.teardown) w(stepLine(s, root));
  w('fstab:');
  out.push(plan.fstab.replace(/\n$/, '').replace(/^/gm, '  '));
  return out.join('\n') + '\n';
}

/**
 * `ferry layout …` and `ferry-installer layout …`: one implementation for both binaries.
 *
 *   validate FILE
 *   plan FILE [(--disk DEV | --disk-size SIZE)...] [--sector-size N] [--map LAYOUTDEV=DEV]... [--seed S] [--json]
 *   apply FILE --disk DEV... [--map …] [--seed S] --root DIR (--yes | --dry-run) [--json]
 *   teardown FILE --disk DEV... [--map …] --root DIR
 *   capture [--disk DEV]... [--root DIR]
 */
import { readFileSync } from 'node:fs';
import { FerryError, ValidationError, formatProblem } from '../../common/errors.js';
import { formatEvent } from '../../common/progress.js';
import { parseBytes } from '../../common/units.js';
import { formatPlan } from '../disk/print.js';
import { parse, printJson, usageError } from '../../common/cli.js';
import { readLayout, parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { BlockDevice, DiskPlan, DiskTarget, Layout } from '../../layout/types.js';

const USAGE = `ferry layout validate FILE
       ferry layout plan FILE [(--disk DEV | --disk-size SIZE)...] [--sector-size 512|4096] [--map LAYOUTDEV=DEV]... [--seed S] [--json]
       ferry layout apply FILE --disk DEV... [--map LAYOUTDEV=DEV]... [--seed S] --root DIR (--yes | --dry-run) [--json]
       ferry layout teardown FILE --disk DEV... [--map LAYOUTDEV=DEV]... [--seed S] --root DIR
       ferry layout capture [--disk DEV]... [--root DIR]`;

const OPTIONS = {
  disk: { type: 'string', multiple: true },
  'disk-size': { type: 'string', multiple: true },
  'sector-size': { type: 'string' },
  map: { type: 'string', multiple: true },
  seed: { type: 'string' },
  root: { type: 'string' },
  yes: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

function readFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new FerryError('FERRY_E_LAYOUT_FILE', `cannot read layout ${file}: ${(e as Error).message}`, { details: { file }, hint: 'give the path of a layout XML file' });
  }
}

function parseMap(list: string[] | undefined): Record<string, string> {
  const map: Record<string, string> = {};
  for (const m of list ?? []) {
    const i = m.indexOf('=');
    if (i <= 0 || i === m.length - 1) throw usageError(`--map ${m}: write LAYOUTDEV=DEV, such as /dev/sda=/dev/vda`, USAGE);
    map[m.slice(0, i)] = m.slice(i + 1);
  }
  return map;
}

/** Simulated disks for --disk-size: named after the layout's disks, in order. */
function simulatedDisks(layout: Layout, sizes: string[], sectorSize: number): DiskTarget[] {
  return sizes.map((s, i) => ({
    path: layout.disks[i]?.dev ?? `/dev/sim${i}`,
    size: Number(parseBytes(s)),
    sectorSize,
  }));
}

async function targets(layout: Layout, v: Record<string, any>, needReal: boolean): Promise<DiskTarget[]> {
  const disks = (v.disk as string[] | undefined) ?? [];
  const sizes = (v['disk-size'] as string[] | undefined) ?? [];
  if (needReal && sizes.length) throw usageError('--disk-size only plans; apply needs real disks (--disk DEV)', USAGE);
  if (!disks.length && !sizes.length) {
    // Applying always names its disks; a plan may look at every disk of the machine.
    if (needReal) throw usageError('give the disks to write to: --disk DEV (all of them, in order)', USAGE);
    const { discoverDisks } = await import('../disk/discover.js');
    const found = await discoverDisks();
    if (!found.length) throw new FerryError('FERRY_E_DISK_NOT_FOUND', 'this machine has no disk a layout could be installed onto (writable, nothing mounted)', { hint: 'name the disks with --disk DEV, or simulate them with --disk-size SIZE' });
    return found;
  }
  const sectorSize = v['sector-size'] ? Number(v['sector-size']) : 512;
  if (sectorSize !== 512 && sectorSize !== 4096) throw usageError(`--sector-size ${v['sector-size']}: use 512 or 4096`, USAGE);
  const out: DiskTarget[] = [];
  if (disks.length) {
    const { discoverDisks } = await import('../disk/discover.js');
    out.push(...(await discoverDisks({ only: disks })));
  }
  out.push(...simulatedDisks(layout, sizes, sectorSize).map((d, i) => (disks.length ? { ...d, path: `/dev/sim${i}` } : d)));
  return out;
}

function loadLayout(file: string): Layout {
  return parseLayout(readFile(file), { file });
}

function printPlan(plan: DiskPlan, root?: string): void {
  process.stdout.write(formatPlan(plan, root));
  for (const p of plan.warnings) process.stderr.write(formatProblem(p) + '\n');
}

async function validate(args: string[], v: Record<string, any>): Promise<number> {
  const file = args[0];
  if (!file) throw usageError('validate needs a FILE', USAGE);
  const { layout, problems } = readLayout(readFile(file), { file });
  if (v.json) {
    printJson({ file, valid: !problems.some((p) => p.severity === 'error'), problems });
  }
  if (!layout || problems.some((p) => p.severity === 'error')) {
    if (v.json) return 1;
    throw new ValidationError('FERRY_E_LAYOUT_INVALID', `layout ${file}`, problems, file);
  }
  if (!v.json) {
    for (const p of problems) process.stderr.write(formatProblem(p, file) + '\n');
    const parts = layout.disks.reduce((a, d) => a + d.parts.length, 0);
    process.stdout.write(`${file}: valid: ${layout.disks.length} disk(s), ${parts} partition(s), ${layout.raids.length} RAID array(s), ${layout.volumeGroups.length} volume group(s), ${layout.filesystems.length} fsinfo line(s), ${problems.length} warning(s)\n`);
  }
  return 0;
}

/** Entry point shared by `ferry layout` and `ferry-installer layout`. */
export async function layoutCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`usage: ${USAGE}\n`);
    return sub ? 0 : 2;
  }
  const { values: v, positionals } = parse(rest, OPTIONS, USAGE);
  if (v.help) {
    process.stdout.write(`usage: ${USAGE}\n`);
    return 0;
  }
  switch (sub) {
    case 'validate':
      return validate(positionals, v);
    case 'plan': {
      if (!positionals[0]) throw usageError('plan needs a FILE', USAGE);
      const layout = loadLayout(positionals[0]);
      const plan = planDisks(layout, await targets(layout, v, false), { map: parseMap(v.map), seed: v.seed, chosenDisks: true });
      if (v.json) printJson(plan);
      else printPlan(plan);
      return 0;
    }
    case 'apply': {
      if (!positionals[0]) throw usageError('apply needs a FILE', USAGE);
      if (!v.root && !v['dry-run']) throw usageError('apply needs --root DIR (where the file systems are mounted)', USAGE);
      const layout = loadLayout(positionals[0]);
      const found = await targets(layout, v, true);
      const plan = planDisks(layout, found, { map: parseMap(v.map), seed: v.seed, chosenDisks: true });
      if (v['dry-run']) {
        // Everything apply would run, with the checks it makes first; nothing is written.
        if (v.json) printJson(plan);
        else printPlan(plan, v.root);
        const { preflight } = await import('../disk/apply.js');
        preflight(plan, found as BlockDevice[]);
        if (!v.json) process.stdout.write(`dry run: nothing was changed; apply with --yes to run these ${plan.steps.length} steps\n`);
        return 0;
      }
      const { applyDiskPlan } = await import('../disk/apply.js');
      if (v.yes) {
        // The kernel modules and programs the plan needs, all missing ones at once, before any write.
        const { supportProblems } = await import('../disk/support.js');
        const { refuseProblems } = await import('../../layout/preflight.js');
        refuseProblems(`refusing to write ${plan.disks.map((d) => d.path).join(', ')}: this machine cannot apply the plan; nothing was touched`, await supportProblems(plan));
      }
      await applyDiskPlan(plan, {
        root: v.root, yes: !!v.yes,
        progress: (e) => process.stderr.write(formatEvent(e) + '\n'),
      });
      if (v.json) printJson(plan);
      else {
        for (const m of plan.mounts) process.stdout.write(`mounted ${m.device} on ${v.root}${m.mountpoint === '/' ? '' : m.mountpoint}\n`);
        process.stdout.write(`applied ${positionals[0]} to ${plan.disks.map((d) => d.path).join(', ')}: ${plan.steps.length} steps\n`);
      }
      return 0;
    }
    case 'teardown': {
      if (!positionals[0]) throw usageError('teardown needs a FILE', USAGE);
      if (!v.root) throw usageError('teardown needs --root DIR', USAGE);
      const layout = loadLayout(positionals[0]);
      const plan = planDisks(layout, await targets(layout, v, true), { map: parseMap(v.map), seed: v.seed, chosenDisks: true });
      const { teardownDiskPlan } = await import('../disk/apply.js');
      await teardownDiskPlan(plan, v.root);
      process.stdout.write(`released ${plan.disks.map((d) => d.path).join(', ')}\n`);
      return 0;
    }
    case 'capture': {
      const { captureLayout } = await import('../disk/capture.js');
      process.stdout.write(await captureLayout({ disks: v.disk, root: v.root }));
      return 0;
    }
    default:
      throw usageError(`unknown layout command "${sub}"`, USAGE);
  }
}

/** disks: plan the layout against the disks present, refuse disks in use, apply the plan. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FerryError } from '../../common/errors.js';
import { TargetRoot } from '../../layers/target.js';
import type { DiskModule, Stage } from './types.js';

/** The layouts side (installer/disk), loaded only when disks are installed (not for --root). */
export async function diskModule(): Promise<DiskModule> {
  const [index, discover, apply] = await Promise.all([import('../disk/index.js'), import('../disk/discover.js'), import('../disk/apply.js')]);
  return { parseLayout: index.parseLayout, planDisks: index.planDisks, discoverDisks: discover.discoverDisks, applyDiskPlan: apply.applyDiskPlan, teardownDiskPlan: apply.teardownDiskPlan };
}

/**
 * Disks of the plan that the running system uses: a file system mounted from them, or swap on
 * them (/proc/mounts, /proc/swaps). Pure; the layouts side checks mounts too, through lsblk.
 */
export function disksInUse(disks: string[], mounts: string, swaps: string): Array<{ disk: string; device: string; use: string }> {
  const used: Array<{ disk: string; device: string; use: string }> = [];
  const devs = [
    ...mounts.split('\n').map((l) => l.split(/\s+/)).filter((f) => f[0]?.startsWith('/dev/')).map((f) => ({ device: f[0], use: `mounted on ${f[1]}` })),
    ...swaps.split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter((d) => d?.startsWith('/dev/')).map((d) => ({ device: d, use: 'active swap' })),
  ];
  for (const disk of disks) {
    const re = new RegExp(`^${disk.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(p?[0-9]+)?$`);
    for (const d of devs) if (re.test(d.device)) used.push({ disk, ...d });
  }
  return used;
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export const disks: Stage = {
  name: 'disks',
  async run(ctx) {
    if (ctx.opts.root) {
      ctx.root = ctx.opts.root;
      ctx.target = new TargetRoot(ctx.opts.root);
      ctx.emit({ phase: 'disks', state: 'info', message: `installing into the directory ${ctx.opts.root}; no disks are touched` });
      return;
    }
    const c = ctx.config!;
    const dm = (ctx.disk = await diskModule());
    ctx.doing = 'reading the layout';
    ctx.layout = dm.parseLayout(c.layout.xml, { file: `layout ${c.layout.digest}` });
    ctx.doing = 'finding the disks';
    const found = await dm.discoverDisks(ctx.opts.disks?.length ? { only: ctx.opts.disks } : {});
    ctx.doing = 'planning the disks';
    const plan = dm.planDisks(ctx.layout, found, { map: c.diskMap });
    ctx.plan = plan;
    for (const w of plan.warnings) ctx.emit({ phase: 'disks', state: 'warning', message: w.message, code: w.code });
    ctx.emit({ phase: 'disks', state: 'info', message: `plan: ${plan.disks.map((d) => d.path).join(', ')}; ${plan.commands.length} commands`, details: { commands: plan.commands, fstab: plan.fstab } });
    const busy = disksInUse(plan.disks.map((d) => d.path), readOr('/proc/self/mounts'), readOr('/proc/swaps'));
    if (busy.length) {
      throw new FerryError('FERRY_E_DISK_IN_USE', `refusing to install onto a disk the running system uses: ${busy.map((b) => `${b.device} (${b.use})`).join(', ')}`, {
        details: { busy }, hint: 'choose another disk (--disk), or unmount it and swapoff first; Ferry never overwrites the disk it runs from',
      });
    }
    const root = ctx.opts.mountRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-target-'));
    ctx.root = root;
    ctx.doing = 'partitioning, making file systems and mounting them';
    ctx.mounted = true;
    await dm.applyDiskPlan(plan, { root, yes: ctx.opts.yes, progress: ctx.emit });
    ctx.target = new TargetRoot(root);
  },
};

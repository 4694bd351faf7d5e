/** disks: plan the layout against the disks present, refuse disks in use, apply the plan. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TargetRoot } from '../../layers/target.js';
import { preflightProblems } from '../disk/in-use.js';
import { supportProblems } from '../disk/support.js';
import { refuseProblems } from '../../layout/preflight.js';
import { deploymentSeed } from '../../layout/uuid.js';
import { FerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';
import type { BlockDevice, DiskPlan } from '../../layout/types.js';
import type { DiskModule, InstallContext, Stage } from './types.js';

/** The layouts side (installer/disk), loaded only when disks are installed (not for --root). */
export async function diskModule(): Promise<DiskModule> {
  const [index, discover, apply] = await Promise.all([import('../disk/index.js'), import('../disk/discover.js'), import('../disk/apply.js')]);
  return { parseLayout: index.parseLayout, planDisks: index.planDisks, discoverDisks: discover.discoverDisks, applyDiskPlan: apply.applyDiskPlan, teardownDiskPlan: apply.teardownDiskPlan };
}

export { disksInUse } from '../disk/in-use.js';

/** The layout planned onto the disks present (those of --disk only, when given): what `disks` applies and `--dry-run` prints. */
export async function planTargetDisks(ctx: InstallContext): Promise<{ plan: DiskPlan; found: BlockDevice[] }> {
  const c = ctx.config!;
  const dm = (ctx.disk ??= await diskModule());
  ctx.doing = 'reading the layout';
  ctx.layout = dm.parseLayout(c.layout.xml, { file: `layout ${c.layout.digest}` });
  ctx.doing = 'finding the disks';
  const exclude = new Set(ctx.opts.excludeDisks ?? []);
  // The disk of the medium the node booted from (--exclude-disk, from the init) is never planned
  // onto unless the layout names it exactly (a hint, a by-id/by-path name, --map): see mapDisks.
  const found = (await dm.discoverDisks(ctx.opts.disks?.length ? { only: ctx.opts.disks } : {})).map((d) => (exclude.has(d.path) ? { ...d, bootMedium: true } : d));
  ctx.doing = 'planning the disks';
  // The UUIDs derive from the deployment (its identity seed) and the layout: unique per
  // deployment, the same again for a redeploy of the record.
  const plan = dm.planDisks(ctx.layout, found, { map: c.diskMap, seed: deploymentSeed(c.deployment, c.node.name, c.layout.digest), chosenDisks: !!ctx.opts.disks?.length });
  ctx.plan = plan;
  for (const w of plan.warnings) ctx.emit({ phase: 'disks', state: 'warning', message: w.message, code: w.code });
  return { plan, found };
}

/** What will be erased (device, size, model, serial) and a countdown on the console; any key on a terminal aborts. */
async function countdown(ctx: InstallContext, plan: DiskPlan, found: BlockDevice[], seconds: number): Promise<void> {
  const say = ctx.opts.console ?? ((l: string) => process.stderr.write(l + '\n'));
  say('ferry: this install ERASES:');
  for (const pd of plan.disks) {
    const d = found.find((x) => x.path === pd.path);
    say(`  ${pd.path}  ${d?.size ?? '?'} bytes  model ${d?.model ?? '?'}  serial ${d?.serial ?? '?'}`);
  }
  ctx.emit({ phase: 'disks', state: 'info', message: `erasing ${plan.disks.map((d) => d.path).join(', ')} in ${seconds} s unless a key is pressed`, details: { disks: plan.disks.map((d) => d.path) } });
  const tty = process.stdin.isTTY ? process.stdin : undefined;
  await new Promise<void>((resolve, reject) => {
    let left = seconds;
    const stop = () => {
      clearInterval(timer);
      if (tty) {
        tty.setRawMode(false);
        tty.pause();
        tty.off('data', onKey);
      }
    };
    const onKey = () => {
      stop();
      reject(new FerryError('FERRY_E_INSTALL_ABORTED', 'the install was aborted at the console before any disk was written', { details: { disks: plan.disks.map((d) => d.path) }, hint: 'boot the medium again to install; build it with --unattended to install without asking' }));
    };
    const timer = setInterval(() => {
      left--;
      if (left <= 0) {
        stop();
        resolve();
      } else say(`ferry: erasing in ${left} s (press any key to abort)`);
    }, 1000);
    if (tty) {
      tty.setRawMode(true);
      tty.resume();
      tty.once('data', onKey);
    }
  });
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
    const { plan, found } = await planTargetDisks(ctx);
    const dm = ctx.disk!;
    ctx.emit({ phase: 'disks', state: 'info', message: `plan: ${plan.disks.map((d) => d.path).join(', ')}; ${plan.commands.length} commands`, details: { commands: plan.commands, fstab: plan.fstab } });
    // Before the first write, and before anything else is asked (--yes): every reason not to
    // write these disks (mounted, swap, busy arrays, loop backing, the running root, another
    // O_EXCL opener, a changed size), all at once, with the disks untouched.
    ctx.doing = 'checking the disks before the first write';
    // And what the plan needs of this machine: kernel modules (loaded now when not built in) and
    // every program the plan and the stages after it run (FERRY_E_NODE_UNSUPPORTED).
    const problems = [...preflightProblems(plan, found), ...(await supportProblems(plan, { installs: true, finish: ctx.finish }))];
    if (problems.length) {
      for (const p of problems) ctx.emit({ phase: 'disks', state: 'warning', object: p.path, code: p.code, message: p.message });
      refuseProblems(`refusing to write ${plan.disks.map((d) => d.path).join(', ')}: checked before the first write, nothing was touched`, problems);
    }
    ctx.emit({ phase: 'disks', state: 'info', message: `pre-write check: ${plan.disks.map((d) => d.path).join(', ')} free (not mounted, no swap, no busy holder, no loop device on it, not the running root, not held open exclusively); kernel modules and tools the plan needs present` });
    if (ctx.opts.countdownS) await countdown(ctx, plan, found, ctx.opts.countdownS);
    const root = ctx.opts.mountRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-target-'));
    ctx.root = root;
    ctx.mounted = true;
    if (ctx.opts.onNode === false) {
      // On a host, other programs make mount namespaces all the time (`ip netns exec`, systemd
      // services with PrivateTmp): each copies the mounts there are, and a copy of the target's
      // file systems keeps them mounted after the install unmounts them here, so the disk (a USB
      // stick, a loop device's file) is left with live file systems and cannot be used again.
      // Under a shared parent, the install's unmounts reach those copies (they are its slaves).
      ctx.doing = 'preparing the target directory';
      fs.mkdirSync(root, { recursive: true });
      await run(['mount', '--bind', root, root], { quiet: true });
      ctx.sharedRoot = root;
      await run(['mount', '--make-shared', root], { quiet: true });
    }
    ctx.doing = 'partitioning, making file systems and mounting them';
    await dm.applyDiskPlan(plan, { root, yes: ctx.opts.yes, progress: ctx.emit });
    ctx.target = new TargetRoot(root);
  },
};

/** finish: sync and unmount everything; the runner then reports, and only then reboots. */
import * as fs from 'node:fs';
import { run } from '../../common/run.js';
import type { InstallContext, Stage } from './types.js';

export const finish: Stage = {
  name: 'finish',
  async run(ctx) {
    ctx.doing = 'unmounting the target';
    await teardown(ctx);
  },
};

export async function teardown(ctx: InstallContext): Promise<void> {
  if (!ctx.mounted) return;
  await run(['sync'], { quiet: true });
  if (ctx.plan && ctx.disk && ctx.root) await ctx.disk.teardownDiskPlan(ctx.plan, ctx.root);
  ctx.mounted = false;
  if (ctx.root && !ctx.opts.mountRoot && !ctx.opts.root) fs.rmdirSync(ctx.root);
}

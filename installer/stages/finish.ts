/** finish: sync and unmount everything; the runner then reports, and only then reboots. */
import * as fs from 'node:fs';
import { RECORD_FILE } from '../../common/medium.js';
import { run } from '../../common/run.js';
import { writeOfflineRecord } from '../medium-record.js';
import { finishSeeding, stopSeeding } from '../transport/index.js';
import { DEFAULT_SEED_WAIT_S } from '../transport/torrent.js';
import type { InstallContext, Stage } from './types.js';

export const finish: Stage = {
  name: 'finish',
  async run(ctx) {
    // A torrent install seeds until the swarm has its layers (or --seed-wait ends), then the
    // staging directories go before the target is unmounted. The installer's --seed-wait (or
    // ferry.seed_wait=) wins over the deployment's (`ferry deploy --seed-wait`).
    ctx.doing = 'seeding the layers until every node of the swarm has them';
    await finishSeeding({ client: ctx.client, seedWaitS: ctx.opts.seedWaitS ?? ctx.config?.transport.seedWaitS ?? DEFAULT_SEED_WAIT_S, progress: ctx.emit });
    if (ctx.medium && ctx.target && ctx.recorded) {
      ctx.doing = 'writing the offline install record into the installed system';
      const w = writeOfflineRecord(ctx.target, ctx.medium, ctx.recorded, ctx.startedAt ?? new Date().toISOString());
      ctx.emit({ phase: 'finish', state: 'info', message: `install record written to /${RECORD_FILE}${w.report ? `; it is posted to ${ctx.medium.server} at first boot (ferry-report-install.service)` : ''}` });
    }
    ctx.doing = 'unmounting the target';
    await teardown(ctx);
  },
};

export async function teardown(ctx: InstallContext): Promise<void> {
  await stopSeeding();
  if (!ctx.mounted) return;
  await run(['sync'], { quiet: true });
  if (ctx.plan && ctx.disk && ctx.root) await ctx.disk.teardownDiskPlan(ctx.plan, ctx.root);
  if (ctx.sharedRoot) {
    // Still the bind of the disks stage, unless the plan's teardown took it for the root file
    // system (an install that failed before mounting it).
    const { systemHost } = await import('../disk/host.js');
    if (systemHost.isMountpoint(ctx.sharedRoot)) await run(['umount', ctx.sharedRoot], { quiet: true });
    ctx.sharedRoot = undefined;
  }
  ctx.mounted = false;
  if (ctx.root && !ctx.opts.mountRoot && !ctx.opts.root) fs.rmdirSync(ctx.root);
}

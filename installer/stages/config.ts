/** config: the deployment from the server (retries and backoff in ServerClient). */
import { FerryError } from '../../common/errors.js';
import { mediumInstallConfig, readMedium, verifyMediumLayers } from '../medium.js';
import { postKeptRecords } from '../medium-record.js';
import type { Stage } from './types.js';

export const config: Stage = {
  name: 'config',
  async run(ctx) {
    if (ctx.opts.medium) {
      ctx.doing = `reading the medium ${ctx.opts.medium}`;
      const m = readMedium(ctx.opts.medium);
      // Known from here: a failure from now on keeps its record (runInstall, keepFailedRecord).
      ctx.medium = m;
      // The records an earlier failed install kept on this medium go to the server now, if it answers.
      ctx.doing = `posting the install records the medium ${ctx.opts.medium} kept`;
      const kept = await postKeptRecords(m, ctx.opts.mediumDevice);
      if (kept) ctx.emit({ phase: 'config', state: 'info', message: kept });
      // Before the disks stage: a damaged medium is refused with the disks untouched.
      ctx.doing = `verifying the ${m.image.layers.length} layers on the medium ${ctx.opts.medium}`;
      await verifyMediumLayers(ctx.opts.medium, m, ctx.emit);
      ctx.config = mediumInstallConfig(m);
      ctx.finish = ctx.opts.finish ?? 'reboot';
      ctx.emit({ phase: 'config', state: 'info', message: `medium ${m.label}: node ${m.node.name}, image ${m.image.name}@${m.image.version} (${m.image.layers.length} layers, all verified)` });
      return;
    }
    ctx.doing = `fetching the install configuration from ${ctx.client.server}`;
    const c = await ctx.client.getConfig();
    if (!c || !c.image || !Array.isArray(c.image.layers) || !c.layout) {
      throw new FerryError('FERRY_E_CONFIG_INVALID', 'the install configuration from the server lacks image layers or a layout', {
        details: { keys: Object.keys(c ?? {}) }, hint: 'server and installer versions differ; update the boot environment',
      });
    }
    ctx.config = c;
    ctx.finish = ctx.opts.finish ?? c.finish ?? 'reboot';
    ctx.emit({ phase: 'config', state: 'info', message: `node ${c.node.name}, image ${c.image.name}@${c.image.version} (${c.image.layers.length} layers), deployment ${c.deployment.id}` });
  },
};

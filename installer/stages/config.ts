/** config: the deployment from the server (retries and backoff in ServerClient). */
import { FerryError } from '../../common/errors.js';
import type { Stage } from './types.js';

export const config: Stage = {
  name: 'config',
  async run(ctx) {
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

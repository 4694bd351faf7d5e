/** layers: every layer of the image, in order, into the target root. */
import { FerryError } from '../../common/errors.js';
import { checkBootNeeds } from '../boot-needs.js';
import { targetView } from '../customize/apply.js';
import { applyLayer } from '../layers/index.js';
import { checkTargetRoom, explainNoSpace, targetFileSystems } from '../room.js';
import type { Stage } from './types.js';

export const layers: Stage = {
  name: 'layers',
  async run(ctx) {
    const c = ctx.config!;
    if (c.transport.kind !== 'http') {
      throw new FerryError('FERRY_E_TRANSPORT_UNSUPPORTED', `transport "${c.transport.kind}" is not supported by this installer`, {
        details: { transport: c.transport.kind }, hint: 'deploy with the http transport',
      });
    }
    const baseUrl = (c.transport as { baseUrl?: string }).baseUrl || ctx.client.server;
    ctx.doing = 'comparing the image\'s unpacked size with the room on the target';
    checkTargetRoom(c.image.layers, targetFileSystems(ctx.target!.root), `${c.image.name}@${c.image.version}`);
    let total = 0;
    for (const [i, ref] of c.image.layers.entries()) {
      ctx.doing = `layer ${i + 1} of ${c.image.layers.length} (${ref.digest})`;
      try {
        const s = await applyLayer(ref, { baseUrl, token: ctx.opts.token, target: ctx.target!, index: i, progress: ctx.emit, backoff: ctx.opts.backoff });
        total += s.entries;
      } catch (e) {
        throw explainNoSpace(e, ctx.target!.root);
      }
    }
    ctx.emit({ phase: 'layers', state: 'info', message: `${c.image.layers.length} layers, ${total} entries` });
    // Before customizing and the bootloader: can the unpacked system come up on these disks?
    if (ctx.plan) {
      ctx.doing = 'checking that the image has what the disk layout needs at boot';
      checkBootNeeds(ctx.plan, targetView(ctx.target!), `${c.image.name}@${c.image.version}`);
    }
  },
};

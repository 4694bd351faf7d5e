/** layers: every layer of the image, in order, into the target root, by the deployment's transport. */
import { checkBootNeeds } from '../boot-needs.js';
import { targetView } from '../customize/apply.js';
import { checkTargetRoom, explainNoSpace, targetFileSystems } from '../room.js';
import { applyLayerFrom, applyLayerVia } from '../transport/index.js';
import { localTransport } from '../transport/local.js';
import type { Stage } from './types.js';

export const layers: Stage = {
  name: 'layers',
  async run(ctx) {
    const c = ctx.config!;
    const t = c.transport;
    const baseUrl = t.baseUrl || ctx.client.server;
    ctx.doing = 'comparing the image\'s unpacked size with the room on the target';
    checkTargetRoom(c.image.layers, targetFileSystems(ctx.target!.root), `${c.image.name}@${c.image.version}`);
    let total = 0;
    let fellBack = 0;
    for (const [i, ref] of c.image.layers.entries()) {
      ctx.doing = `layer ${i + 1} of ${c.image.layers.length} (${ref.digest}) by ${t.kind}`;
      let s;
      try {
        const o = { baseUrl, token: ctx.opts.token, config: t, client: ctx.client, target: ctx.target!, index: i, progress: ctx.emit, backoff: ctx.opts.backoff };
        if (ctx.opts.medium) {
          ctx.doing = `layer ${i + 1} of ${c.image.layers.length} (${ref.digest}) from the medium ${ctx.opts.medium}`;
          s = { stats: await applyLayerFrom(localTransport(ctx.opts.medium), ref, o) };
        } else s = await applyLayerVia(t.kind, ref, o);
      } catch (e) {
        throw explainNoSpace(e, ctx.target!.root);
      }
      total += s.stats.entries;
      if ('fallback' in s && s.fallback) {
        fellBack++;
        ctx.warnings.push(`layer ${i + 1}: ${s.fallback.from} failed (${s.fallback.reason}); it came over http`);
      }
    }
    const via = ctx.opts.medium ? 'the medium' : t.kind === 'http' ? 'http' : fellBack ? `${t.kind}, ${fellBack} of them by the http fallback` : t.kind;
    ctx.emit({ phase: 'layers', state: 'info', message: `${c.image.layers.length} layers, ${total} entries (${via})`, details: { transport: t.kind, fallbacks: fellBack } });
    // Before customizing and the bootloader: can the unpacked system come up on these disks?
    if (ctx.plan) {
      ctx.doing = 'checking that the image has what the disk layout needs at boot';
      checkBootNeeds(ctx.plan, targetView(ctx.target!), `${c.image.name}@${c.image.version}`);
    }
  },
};

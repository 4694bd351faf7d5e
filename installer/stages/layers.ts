/** layers: every layer of the image, in order, into the target root, by the deployment's transport. */
import { checkBootNeeds } from '../boot-needs.js';
import { targetView } from '../customize/apply.js';
import { checkTargetRoom, explainNoSpace, targetFileSystems } from '../room.js';
import { applyLayerFrom, applyLayerVia } from '../transport/index.js';
import { localTransport } from '../transport/local.js';
import { LayerPipeline, stagedTransport } from '../transport/prefetch.js';
import { toFerryError } from '../../common/errors.js';
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
    const all = c.image.layers;
    // Over HTTP the next layer downloads while this one extracts (one ahead, staged on the target).
    const pipe = !ctx.opts.medium && t.kind === 'http' && all.length > 1
      ? new LayerPipeline({ baseUrl, token: ctx.opts.token, mirrors: t.mirrors, stageDir: ctx.target!.root, progress: ctx.emit, backoff: ctx.opts.backoff })
      : undefined;
    try {
      for (const [i, ref] of all.entries()) {
        ctx.doing = `layer ${i + 1} of ${all.length} (${ref.digest}) by ${t.kind}`;
        let s;
        try {
          const o = { baseUrl, token: ctx.opts.token, config: t, client: ctx.client, target: ctx.target!, index: i, progress: ctx.emit, backoff: ctx.opts.backoff };
          const staged = await pipe?.take(i);
          if (i + 1 < all.length) pipe?.start(all[i + 1], i + 1, all.slice(i));
          if (ctx.opts.medium) {
            ctx.doing = `layer ${i + 1} of ${all.length} (${ref.digest}) from the medium ${ctx.opts.medium}`;
            s = { stats: await applyLayerFrom(localTransport(ctx.opts.medium), ref, o) };
          } else if (staged) {
            try {
              s = { stats: await applyLayerFrom(stagedTransport(staged.file), ref, o) };
            } catch (e) {
              // The staged copy was read back wrong (or the disk failed): the sink counted nothing; stream it.
              const f = toFerryError(e);
              ctx.emit({ phase: 'layers', state: 'warning', object: ref.digest, code: f.code, message: `layer ${i + 1}: its copy fetched ahead was refused (${f.message}); streaming it`, details: { prefetch: 'refused', layer: i, code: f.code } });
              s = await applyLayerVia(t.kind, ref, o);
            } finally {
              staged.release();
            }
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
    } finally {
      await pipe?.close();
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

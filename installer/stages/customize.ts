/** customize: plan from the image's items and the inputs, then apply into the target. */
import { randomBytes } from 'node:crypto';
import { applyCustomization, planCustomization, targetView } from '../customize/apply.js';
import type { Stage } from './types.js';

export const customize: Stage = {
  name: 'customize',
  async run(ctx) {
    const c = ctx.config!;
    ctx.doing = 'planning the customization';
    const ops = planCustomization(c.image.customizations ?? [], {
      node: c.node,
      inputs: c.inputs ?? {},
      fstab: ctx.plan?.fstab,
      mdadmConf: ctx.plan?.mdadmConf,
      machineId: randomBytes(16).toString('hex'),
      initramfs: ctx.opts.initramfs,
    }, targetView(ctx.target!));
    ctx.doing = 'customizing the installed system';
    await applyCustomization(ops, ctx.target!, ctx.emit);
  },
};

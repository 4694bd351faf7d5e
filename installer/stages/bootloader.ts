/** bootloader: decide (layout, node, firmware, image), then the image's own GRUB in the target. */
import * as fs from 'node:fs';
import { applyBootloader, planBootloader } from '../bootloader.js';
import { targetView } from '../customize/apply.js';
import type { Stage } from './types.js';

export const bootloader: Stage = {
  name: 'bootloader',
  async run(ctx) {
    const c = ctx.config!;
    ctx.doing = 'deciding the bootloader';
    const bp = planBootloader({
      override: c.bootloader ?? 'auto',
      request: ctx.plan?.bootloader,
      firmwareEfi: fs.existsSync('/sys/firmware/efi'),
      ownFirmware: !!ctx.opts.onNode,
      view: targetView(ctx.target!),
      directoryInstall: !!ctx.opts.root,
    });
    for (const w of bp.warnings) {
      ctx.warnings.push(w);
      ctx.emit({ phase: 'bootloader', state: 'warning', message: w });
    }
    if (!bp.commands.length) return;
    ctx.doing = `installing the ${bp.mode} bootloader`;
    await applyBootloader(bp, ctx.target!, ctx.emit);
  },
};

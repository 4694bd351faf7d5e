/** identify: the boot NIC's MAC from BOOTIF, else the interfaces. */
import * as os from 'node:os';
import { macFromBootif, pickMac, readInterfaces } from '../identify.js';
import type { Stage } from './types.js';

export const identify: Stage = {
  name: 'identify',
  async run(ctx) {
    ctx.doing = 'finding the boot network interface';
    const fromBootif = ctx.opts.bootif ? macFromBootif(ctx.opts.bootif) : undefined;
    ctx.mac = fromBootif ?? pickMac(readInterfaces());
    ctx.emit({ phase: 'identify', state: 'info', object: ctx.mac, message: `${fromBootif ? 'BOOTIF' : 'interfaces'}: ${ctx.mac ?? 'no MAC found'}; host ${os.hostname()}`, details: { mac: ctx.mac, kernel: os.release() } });
  },
};

/**
 * identify: the boot NIC's MAC from BOOTIF, else the interfaces; on the node itself (the boot
 * environment, not a host install) also the hardware inventory, reported as the node's hw.*
 * properties. An inventory that cannot be read or stored is a warning: the install goes on.
 */
import * as os from 'node:os';
import { formatBytes } from '../../common/units.js';
import { collectInventory } from '../inventory/collect.js';
import { macFromBootif, pickMac, readInterfaces } from '../identify.js';
import type { Stage } from './types.js';

export const identify: Stage = {
  name: 'identify',
  async run(ctx) {
    ctx.doing = 'finding the boot network interface';
    const fromBootif = ctx.opts.bootif ? macFromBootif(ctx.opts.bootif) : undefined;
    ctx.mac = fromBootif ?? pickMac(readInterfaces());
    ctx.emit({ phase: 'identify', state: 'info', object: ctx.mac, message: `${fromBootif ? 'BOOTIF' : 'interfaces'}: ${ctx.mac ?? 'no MAC found'}; host ${os.hostname()}`, details: { mac: ctx.mac, kernel: os.release() } });
    if (!ctx.opts.onNode) return;
    ctx.doing = 'reading and reporting the hardware inventory';
    try {
      const inv = await collectInventory();
      await ctx.client.postInventory(inv);
      const what = [inv.system.vendor, inv.system.product].filter(Boolean).join(' ') || 'unknown system';
      ctx.emit({ phase: 'identify', state: 'info', message: `inventory: ${what}, ${inv.cpu.threads} CPU(s), ${formatBytes(inv.memoryBytes)}, ${inv.disks.length} disk(s), ${inv.nics.length} NIC(s), ${inv.firmware.mode}` });
    } catch (e) {
      ctx.emit({ phase: 'identify', state: 'warning', code: 'FERRY_W_INVENTORY', message: `the hardware inventory was not reported: ${(e as Error).message}` });
    }
  },
};

/**
 * A discovery boot (`ferry serve --discover` gave an unknown machine ferry.mode=inventory): collect
 * the inventory, post it with the discovery token (ferry.token, bound to this machine's MAC and
 * good for this one post), then power off (ferry.finish=poweroff, the default) or stay. Nothing
 * on the machine's disks is touched.
 */
import type { Inventory } from '../../common/inventory.js';
import { FerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';
import { ServerClient } from '../client.js';
import { collectInventory } from '../inventory/collect.js';

export interface DiscoveryOptions {
  server: string;
  token: string;
  finish: 'poweroff' | 'stay';
  /** The inventory source (tests give fixtures); default this machine's. */
  collect?: () => Promise<Inventory>;
  /** What powers the machine off (tests record it); default `poweroff -f` after a sync. */
  powerOff?: () => Promise<void>;
}

/** The finish of a discovery boot from the kernel command line (poweroff unless it says stay). */
export function discoveryFinish(v: string | undefined): 'poweroff' | 'stay' {
  if (v === undefined || v === '' || v === 'poweroff') return 'poweroff';
  if (v === 'stay' || v === 'wait') return 'stay';
  throw new FerryError('FERRY_E_USAGE', `a discovery boot's finish "${v}" is not poweroff or stay`, { hint: 'use ferry.finish=poweroff|stay (ferry serve --discover-finish poweroff|wait)' });
}

export async function discoveryBoot(o: DiscoveryOptions): Promise<{ mac: string; properties: number }> {
  const inv = await (o.collect ?? collectInventory)();
  const r = await new ServerClient({ server: o.server, token: o.token }).postDiscovery(inv);
  process.stderr.write(`ferry: discovery report stored for ${r.mac} (${r.properties} hw.* properties): enlist it with ferry node enlist ${r.mac} --name NAME\n`);
  if (o.finish === 'poweroff') {
    process.stderr.write('ferry: poweroff now\n');
    await (o.powerOff ?? (async () => {
      await run(['sync']);
      await run(['poweroff', '-f']);
    }))();
  } else process.stderr.write('ferry: discovery finished; waiting here (ferry.finish=stay)\n');
  return r;
}

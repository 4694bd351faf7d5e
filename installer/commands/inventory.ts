/**
 * `ferry-installer inventory`: only the inventory stage. Prints the machine's hardware (--json for
 * the whole record) and, with a server and a deploy token (options, or ferry.server= and
 * ferry.token= on the kernel command line), reports it as the node's hw.* properties.
 */
import * as fs from 'node:fs';
import { parse, usageError } from '../../common/cli.js';
import { inventoryProperties } from '../../common/inventory.js';
import { ServerClient } from '../client.js';
import { parseCmdline } from '../identify.js';
import { collectInventory } from '../inventory/collect.js';

export const INVENTORY_USAGE = 'ferry-installer inventory [--server URL --token TOKEN] [--cmdline FILE] [--json]';

export async function inventoryCommand(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, { server: { type: 'string' }, token: { type: 'string' }, cmdline: { type: 'string' } }, INVENTORY_USAGE, { positionals: false });
  if (v.help) {
    process.stdout.write(`usage: ${INVENTORY_USAGE}\n`);
    return 0;
  }
  const cmdlineFile = (v.cmdline as string | undefined) ?? '/proc/cmdline';
  const k = v.server || v.token || !fs.existsSync(cmdlineFile) ? {} : parseCmdline(fs.readFileSync(cmdlineFile, 'utf8'));
  const server = (v.server as string | undefined) ?? k['ferry.server'];
  const token = (v.token as string | undefined) ?? k['ferry.token'];
  if (!!server !== !!token) throw usageError('give --server and --token together (or neither, to only print)', INVENTORY_USAGE);
  const inv = await collectInventory();
  let reported: number | undefined;
  if (server && token) reported = ((await new ServerClient({ server, token }).postInventory(inv)) as { properties?: number }).properties;
  if (v.json) process.stdout.write(JSON.stringify({ inventory: inv, ...(reported !== undefined ? { reported } : {}) }, null, 2) + '\n');
  else {
    for (const [key, value] of Object.entries(inventoryProperties(inv))) process.stdout.write(`${key}=${value}\n`);
    if (reported !== undefined) process.stderr.write(`ferry: reported ${reported} hw.* properties to ${server}\n`);
  }
  return 0;
}

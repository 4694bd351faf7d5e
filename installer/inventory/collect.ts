/**
 * Reading the machine for its inventory: dmidecode and lsblk through the command runner, the rest
 * from /proc and /sys. What cannot be read (no DMI table in a container, no dmidecode) leaves its
 * part empty with a warning, rather than failing the install it runs in. `root` moves /proc, /sys
 * and /dev lookups (tests).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Inventory } from '../../common/inventory.js';
import { log } from '../../common/log.js';
import { run } from '../../common/run.js';
import { buildInventory, type SysNet } from './parse.js';

const read = (p: string) => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

async function tool(argv: string[]): Promise<string | undefined> {
  try {
    return (await run(argv, { quiet: true, timeoutMs: 30_000 })).stdout;
  } catch (e) {
    log.warn('inventory: a source could not be read; that part stays empty', { argv, error: (e as Error).message });
    return undefined;
  }
}

export async function collectInventory(root = '/'): Promise<Inventory> {
  const dmidecode = (await tool(['dmidecode', '-t', '0', '-t', '1', '-t', '17'])) ?? '';
  const lsblk = (await tool(['lsblk', '-J', '-b', '-d', '-o', 'NAME,PATH,SIZE,MODEL,SERIAL,WWN,ROTA,TRAN,TYPE'])) ?? '{"blockdevices":[]}';
  const sysnet: Record<string, SysNet> = {};
  const netDir = join(root, 'sys/class/net');
  for (const name of fs.existsSync(netDir) ? fs.readdirSync(netDir) : []) {
    const f = (x: string) => read(join(netDir, name, x));
    let driver: string | undefined;
    try {
      driver = fs.readlinkSync(join(netDir, name, 'device/driver')).split('/').pop();
    } catch {
      /* virtual interfaces have no device */
    }
    sysnet[name] = { address: f('address'), operstate: f('operstate'), speed: f('speed'), type: f('type'), driver };
  }
  const byPath: Record<string, string> = {};
  const byPathDir = join(root, 'dev/disk/by-path');
  for (const l of fs.existsSync(byPathDir) ? fs.readdirSync(byPathDir) : []) {
    if (/-part\d+$/.test(l)) continue;
    try {
      byPath['/dev/' + fs.readlinkSync(join(byPathDir, l)).split('/').pop()] = l;
    } catch {
      /* not a link */
    }
  }
  const sysSerial: Record<string, string> = {};
  const blockDir = join(root, 'sys/block');
  for (const name of fs.existsSync(blockDir) ? fs.readdirSync(blockDir) : []) {
    const serial = read(join(blockDir, name, 'serial')) ?? read(join(blockDir, name, 'device/serial'));
    if (serial?.trim()) sysSerial['/dev/' + name] = serial.trim();
  }
  return buildInventory({
    dmidecode,
    cpuinfo: read(join(root, 'proc/cpuinfo')) ?? '',
    meminfo: read(join(root, 'proc/meminfo')),
    lsblk,
    sysnet,
    byPath,
    sysSerial,
    efi: fs.existsSync(join(root, 'sys/firmware/efi')),
  });
}

/**
 * Inventory end to end on loopback: the real server, a deployment's token, the installer's
 * ServerClient posting an inventory (parsed from the Dell fixture, then collected from this host
 * by collectInventory with the real lsblk and /sys), and the node's hw.* properties replaced as a
 * set, other properties kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_ROUTES, INSTALL_ROUTES, type ArmResponse } from '../../common/protocol.js';
import { addNode, getNode } from '../../server/db/inventory.js';
import { selectNodes } from '../../server/db/groups.js';
import { listAudit } from '../../server/db/audit.js';
import { importImage } from '../../server/store/image-import.js';
import { ServerClient } from '../../installer/client.js';
import { buildInventory } from '../../installer/inventory/parse.js';
import { collectInventory } from '../../installer/inventory/collect.js';
import { call, harness, LAYOUT, smallTree, type Harness } from './server/helpers.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'inventory', 'dell-r640');
const dell = () =>
  buildInventory({ dmidecode: readFileSync(join(FIX, 'dmidecode.txt'), 'utf8'), cpuinfo: readFileSync(join(FIX, 'cpuinfo.txt'), 'utf8'), lsblk: readFileSync(join(FIX, 'lsblk.json'), 'utf8'), sysnet: JSON.parse(readFileSync(join(FIX, 'sysnet.json'), 'utf8')), efi: true });

describe('hardware inventory reported to the server', () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await harness();
    await importImage(h.data, 'base', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
    addNode(h.data, 'r640', { macs: ['e4:43:4b:1c:2a:10'], image: 'base', layoutXml: LAYOUT, properties: { rack: 'r1', 'hw.stale': 'old' } }, 'test');
    const armed = await call(h.srv.url, 'POST', ADMIN_ROUTES.deployments, { token: h.srv.adminToken, body: { node: 'r640' } });
    token = (armed.json as ArmResponse).deployment.token;
  });
  afterAll(() => h?.close());

  it('stores the inventory as hw.* properties, replacing the previous set', async () => {
    const client = new ServerClient({ server: h.srv.url, token });
    const r = (await client.postInventory(dell())) as { properties: number };
    expect(r.properties).toBeGreaterThan(30);
    const p = getNode(h.data, 'r640').properties;
    expect(p).toMatchObject({ rack: 'r1', 'hw.system.serial': '8XK2QW2', 'hw.cpu.sockets': '2', 'hw.memory': String(128 * 1024 ** 3), 'hw.disk.2.transport': 'nvme', 'hw.nic.0.driver': 'bnxt_en', 'hw.firmware.mode': 'uefi' });
    expect(p['hw.stale']).toBeUndefined();
    // Selections filter on them: sizes with units, and exact values.
    addNode(h.data, 'small', { macs: ['52:54:00:00:00:77'], properties: { 'hw.memory': String(8 * 1024 ** 3) } }, 'test');
    expect(selectNodes(h.data, ['hw.memory>=64GiB'])).toEqual(['r640']);
    expect(selectNodes(h.data, ['hw.memory<=16GiB'])).toEqual(['small']);
    expect(selectNodes(h.data, ['hw.disk.0.serial=PHYF9215012Q480BGN'])).toEqual(['r640']);
    expect(() => selectNodes(h.data, ['hw.memory>=1TiB'])).toThrow(/no node has a numeric property hw.memory >= 1TiB/);
    // A second report with a disk pulled: its properties go.
    const fewer = dell();
    fewer.disks = fewer.disks.slice(0, 1);
    await client.postInventory(fewer);
    const q = getNode(h.data, 'r640').properties;
    expect(q['hw.disk.count']).toBe('1');
    expect(q['hw.disk.1.path']).toBeUndefined();
    expect(listAudit(h.data.db, { object: 'r640' }).filter((a) => a.action === 'node.inventory')).toHaveLength(2);
  });

  it('refuses a malformed inventory with the JSON path, and an admin or no token', async () => {
    const bad = await call(h.srv.url, 'POST', INSTALL_ROUTES.inventory, { token, body: { ...dell(), nics: [{ name: 'x', mac: 'zz', link: 'up' }] } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('FERRY_E_BAD_REQUEST');
    expect(bad.text).toContain('nics');
    expect((await call(h.srv.url, 'POST', INSTALL_ROUTES.inventory, { body: dell() })).status).toBe(401);
    expect((await call(h.srv.url, 'POST', INSTALL_ROUTES.inventory, { token: h.srv.adminToken, body: dell() })).status).toBe(403);
  });

  it('collects this host\'s inventory with the real tools, and the server accepts it', async () => {
    const inv = await collectInventory();
    expect(inv.cpu.threads).toBeGreaterThan(0);
    expect(inv.memoryBytes).toBeGreaterThan(0);
    expect(inv.disks.every((d) => d.path.startsWith('/dev/') && d.sizeBytes > 0)).toBe(true);
    const r = (await new ServerClient({ server: h.srv.url, token }).postInventory(inv)) as { properties: number };
    expect(getNode(h.data, 'r640').properties['hw.cpu.threads']).toBe(String(inv.cpu.threads));
    expect(r.properties).toBeGreaterThan(3);
  });
});

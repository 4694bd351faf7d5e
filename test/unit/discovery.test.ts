/**
 * Discovery and enlistment (issue 18): name patterns, serial matching, what an unknown MAC boots
 * with and without --discover, the discovery token's life (one post, bounded time, its MAC only),
 * and enlist's all-or-nothing checks, on a data directory in a temporary directory.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError, ValidationError } from '../../common/errors.js';
import type { Inventory } from '../../common/inventory.js';
import { DataDir } from '../../server/context.js';
import { bootDecision, unknownBootOf } from '../../server/boot/decide.js';
import { renderIpxeFor, renderPxelinuxFor } from '../../server/boot/ipxe.js';
import { checkDiscoveryToken, enlist, expandName, meaningfulSerial, mintDiscoveryToken, recordDiscoveredInventory, serialMatches } from '../../server/db/discovery.js';
import { addNode, getNode, listDiscovered } from '../../server/db/inventory.js';
import { listAudit } from '../../server/db/audit.js';
import { buildInventory } from '../../installer/inventory/parse.js';
import { discoveryFinish } from '../../installer/commands/discover.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'inventory');
const fixture = (kind: string): Inventory => {
  const r = (f: string) => readFileSync(join(FIX, kind, f), 'utf8');
  return buildInventory({ dmidecode: r('dmidecode.txt'), cpuinfo: r('cpuinfo.txt'), lsblk: r('lsblk.json'), sysnet: JSON.parse(r('sysnet.json')), efi: false });
};
const withSerial = (inv: Inventory, serial: string | undefined): Inventory => ({ ...inv, system: { ...inv.system, serial } });

describe('name patterns', () => {
  it('fills {serial}, {mac} and {n}; a plain name is itself', () => {
    expect(expandName('rack1-{serial}', { serial: '8XK2QW2', mac: 'e4:43:4b:1c:2a:10', n: 1 })).toEqual({ name: 'rack1-8XK2QW2' });
    expect(expandName('node-{mac}', { mac: 'E4:43:4B:1C:2A:10', n: 1 })).toEqual({ name: 'node-e4434b1c2a10' });
    expect(expandName('web{n}', { mac: 'e4:43:4b:1c:2a:10', n: 3 })).toEqual({ name: 'web3' });
    expect(expandName('db1', { mac: 'e4:43:4b:1c:2a:10', n: 1 })).toEqual({ name: 'db1' });
    // Characters a name cannot hold become "-", none at the ends.
    expect(expandName('{serial}', { serial: ' CZ 2041/07X. ', mac: 'e4:43:4b:1c:2a:10', n: 1 })).toEqual({ name: 'CZ-2041-07X' });
  });

  it('refuses an unknown placeholder, a missing or placeholder serial and a bad result', () => {
    expect(expandName('r-{rack}', { mac: 'e4:43:4b:1c:2a:10', n: 1 })).toEqual({ problem: expect.stringMatching(/unknown placeholder \{rack\}/) });
    expect(expandName('r-{serial}', { mac: 'e4:43:4b:1c:2a:10', n: 1 })).toEqual({ problem: expect.stringMatching(/reported no serial/) });
    expect(expandName('r-{serial}', { serial: 'To Be Filled By O.E.M.', mac: 'e4:43:4b:1c:2a:10', n: 1 })).toEqual({ problem: expect.stringMatching(/reported no serial/) });
    expect(expandName('-{n}', { mac: 'e4:43:4b:1c:2a:10', n: 1 })).toEqual({ problem: expect.stringMatching(/is not a node name/) });
  });
});

describe('serial matching', () => {
  const nodes: { name: string; macs: string[]; properties: Record<string, string> }[] = [
    { name: 'db1', macs: ['52:54:00:00:00:01'], properties: { 'hw.system.serial': '8XK2QW2' } },
    { name: 'oem', macs: ['52:54:00:00:00:02'], properties: { 'hw.system.serial': 'Default string' } },
    { name: 'bare', macs: ['52:54:00:00:00:03'], properties: {} },
  ];
  it('finds the node with the same serial and another MAC (case-insensitive)', () => {
    expect(serialMatches('8xk2qw2', '52:54:00:00:00:09', nodes)).toEqual([{ node: 'db1', serial: '8xk2qw2' }]);
    // The same MAC is the node itself, not a replaced board.
    expect(serialMatches('8XK2QW2', '52:54:00:00:00:01', nodes)).toEqual([]);
  });
  it('never matches on an empty or firmware placeholder serial', () => {
    expect(serialMatches('Default string', '52:54:00:00:00:09', nodes)).toEqual([]);
    expect(serialMatches(undefined, '52:54:00:00:00:09', nodes)).toEqual([]);
    expect(meaningfulSerial('0000000')).toBeUndefined();
    expect(meaningfulSerial('Not Specified')).toBeUndefined();
    expect(meaningfulSerial(' S1 ')).toBe('S1');
  });
});

describe('discovery boots', () => {
  let dir: string;
  let d: DataDir;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-discovery-'));
    d = new DataDir(join(dir, 'data'));
  });
  afterEach(() => {
    d.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const o = { publicUrl: 'http://10.0.2.2:8080', kernelArgs: [] };
  const mac = '52:54:00:aa:00:01';

  it('without --discover an unknown MAC boots its disk; with it, the inventory mode with a discovery token', () => {
    expect(unknownBootOf(undefined).action).toBe('local');
    expect(unknownBootOf({ finish: 'wait' })).toMatchObject({ action: 'inventory', args: ['ferry.finish=stay'] });
    const local = bootDecision(d, mac, o);
    expect(local).toMatchObject({ action: 'local', discovered: true });
    expect(renderIpxeFor(local)).toContain('booting from the local disk');
    const inv = bootDecision(d, mac, { ...o, discover: { finish: 'poweroff' } });
    expect(inv).toMatchObject({ action: 'install', mode: 'inventory', discovered: true });
    const script = renderIpxeFor(inv);
    expect(script).toMatch(/^# Ferry: inventory 52:54:00:aa:00:01$/m);
    expect(script).toMatch(/ferry\.token=ferry-discover-[A-Za-z0-9_-]{43} BOOTIF=01-52-54-00-aa-00-01 ferry\.mode=inventory ferry\.finish=poweroff/);
    expect(renderPxelinuxFor(inv)).toContain('ferry.mode=inventory');
    expect(listDiscovered(d)[0]).toMatchObject({ mac, seen: 2 });
    // A known node is not touched by --discover.
    addNode(d, 'n1', { macs: ['52:54:00:aa:00:02'] }, 'test');
    expect(bootDecision(d, '52:54:00:aa:00:02', { ...o, discover: { finish: 'poweroff' } })).toMatchObject({ action: 'local', label: 'n1' });
  });

  it('a discovery token posts its MAC\'s report once, and dies after use, a newer boot or its time', () => {
    const t1 = mintDiscoveryToken(d, mac);
    const t2 = mintDiscoveryToken(d, mac);
    expect(checkDiscoveryToken(d, t1)).toMatchObject({ ok: false, code: 'FERRY_E_TOKEN_INVALID' });
    expect(checkDiscoveryToken(d, t2)).toEqual({ ok: true, mac });
    expect(recordDiscoveredInventory(d, t2, fixture('qemu-q35'))).toMatchObject({ mac });
    expect(() => recordDiscoveredInventory(d, t2, fixture('qemu-q35'))).toThrow(FerryError);
    const s = listDiscovered(d).find((x) => x.mac === mac)!.inventory!;
    expect(s.cpus).toBeGreaterThan(0);
    expect(s.disks.length).toBeGreaterThan(0);
    const old = mintDiscoveryToken(d, '52:54:00:aa:00:03', -1);
    expect(checkDiscoveryToken(d, old)).toMatchObject({ ok: false, code: 'FERRY_E_TOKEN_EXPIRED' });
    // A MAC enlisted (or added) while its discovery boot runs: the report goes to the node.
    const late = mintDiscoveryToken(d, '52:54:00:aa:00:04');
    addNode(d, 'late', { macs: ['52:54:00:aa:00:04'] }, 'test');
    recordDiscoveredInventory(d, late, fixture('dell-r640'));
    expect(getNode(d, 'late').properties['hw.system.serial']).toBe('8XK2QW2');
    expect(listDiscovered(d).map((x) => x.mac)).not.toContain('52:54:00:aa:00:04');
    // The token is stored as its hash only.
    expect(JSON.stringify(d.db.prepare('SELECT * FROM discovery_tokens').all())).not.toContain(old.slice(15));
  });

  it('enlist: names, hw.* properties and groups; every problem refuses the whole request', () => {
    const post = (m: string, inv: Inventory) => recordDiscoveredInventory(d, mintDiscoveryToken(d, m), inv);
    post('52:54:00:bb:00:01', withSerial(fixture('dell-r640'), 'SER1'));
    post('52:54:00:bb:00:02', withSerial(fixture('supermicro-x11ssh'), 'SER2'));
    post('52:54:00:bb:00:03', withSerial(fixture('qemu-q35'), 'OLD1'));
    addNode(d, 'old', { macs: ['52:54:00:bb:00:99'], properties: { 'hw.system.serial': 'OLD1' } }, 'test');
    addNode(d, 'rack1-SER2', { macs: ['52:54:00:bb:00:98'] }, 'test');
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as ValidationError).problems.map((p) => `${p.code} ${p.message}`);
      }
      throw new Error('not refused');
    };
    // A clash with an existing name, and the replaced board: nothing is made.
    const p = refused(() => enlist(d, { macs: ['52:54:00:bb:00:01', '52:54:00:bb:00:02', '52:54:00:bb:00:03'], name: 'rack1-{serial}' }, 'test'));
    expect(p).toEqual([
      expect.stringMatching(/^FERRY_E_NODE_EXISTS .*"rack1-SER2"/),
      'FERRY_E_ENLIST_SERIAL_MATCH 52:54:00:bb:00:03 matches node old (serial OLD1): `ferry node set old --mac 52:54:00:bb:00:03` to adopt it',
    ]);
    expect(() => getNode(d, 'rack1-SER1')).toThrow(/no node/);
    expect(refused(() => enlist(d, { macs: ['52:54:00:bb:00:01', '52:54:00:bb:00:02'], name: 'same' }, 'test'))[0]).toMatch(/cannot all be named "same"/);
    expect(refused(() => enlist(d, { macs: ['52:54:00:bb:00:07'], name: 'x' }, 'test'))[0]).toMatch(/^FERRY_E_ENLIST_NO_INVENTORY/);
    // Good ones: hw.* properties, image-less nodes in the group, the discovered rows gone.
    const made = enlist(d, { macs: ['52:54:00:bb:00:01', '52:54:00:bb:00:02'], name: 'r-{n}', groups: ['rack1'] }, 'test');
    expect(made.map((n) => [n.name, n.macs, n.groups])).toEqual([['r-1', ['52:54:00:bb:00:01'], ['rack1']], ['r-2', ['52:54:00:bb:00:02'], ['rack1']]]);
    expect(getNode(d, 'r-1').properties).toMatchObject({ 'hw.system.serial': 'SER1', 'hw.cpu.sockets': '2' });
    expect(listDiscovered(d).map((x) => x.mac)).toEqual(['52:54:00:bb:00:03']);
    // --new: the operator says it is another machine after all.
    expect(enlist(d, { macs: ['52:54:00:bb:00:03'], name: 'second', asNew: true }, 'test')[0].name).toBe('second');
    expect(listAudit(d.db, {}).filter((a) => a.action === 'node.enlist').map((a) => a.object)).toEqual(expect.arrayContaining(['r-1', 'r-2', 'second']));
  });
});

describe('the installer side', () => {
  it('a discovery boot powers off unless told to stay', () => {
    expect(discoveryFinish(undefined)).toBe('poweroff');
    expect(discoveryFinish('stay')).toBe('stay');
    expect(() => discoveryFinish('reboot')).toThrow(/poweroff or stay/);
  });
});

describe('disk serials without udev (the boot environment)', () => {
  it('fills a serial lsblk left empty from sysfs, and keeps the one lsblk gave', () => {
    const lsblk = JSON.stringify({ blockdevices: [
      { name: 'vda', path: '/dev/vda', size: 3221225472, serial: null, type: 'disk', rota: false },
      { name: 'sda', path: '/dev/sda', size: 1000, serial: 'FROM-LSBLK', type: 'disk', rota: true },
    ] });
    const inv = buildInventory({ dmidecode: '', cpuinfo: '', lsblk, sysnet: {}, efi: false, sysSerial: { '/dev/vda': 'FERRYDISC07', '/dev/sda': 'FROM-SYSFS' } });
    expect(inv.disks.map((x) => [x.path, x.serial])).toEqual([['/dev/vda', 'FERRYDISC07'], ['/dev/sda', 'FROM-LSBLK']]);
  });
});

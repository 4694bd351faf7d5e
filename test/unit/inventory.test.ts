/** Inventory parsers on fixtures of three machine kinds (test/fixtures/inventory/). */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildInventory, parseCpuinfo, parseDmidecode, parseLsblk, parseMeminfo, parseSysNet } from '../../installer/inventory/parse.js';
import { groupHwProperties, inventoryProperties } from '../../common/inventory.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'inventory');
const read = (kind: string, f: string) => readFileSync(join(DIR, kind, f), 'utf8');
const inv = (kind: string, efi: boolean) =>
  buildInventory({ dmidecode: read(kind, 'dmidecode.txt'), cpuinfo: read(kind, 'cpuinfo.txt'), lsblk: read(kind, 'lsblk.json'), sysnet: JSON.parse(read(kind, 'sysnet.json')), efi });
const GiB = 1024 ** 3;

describe('inventory of a Dell PowerEdge R640 (UEFI, 2 sockets, SAS SSDs and NVMe)', () => {
  const i = inv('dell-r640', true);
  it('reads DMI: vendor, product, serial, UUID, firmware', () => {
    expect(i.system).toEqual({ vendor: 'Dell Inc.', product: 'PowerEdge R640', serial: '8XK2QW2', uuid: '4c4c4544-0058-4b10-8032-b8c04f515732' });
    expect(i.firmware).toEqual({ vendor: 'Dell Inc.', version: '2.17.1', date: '11/14/2022', mode: 'uefi' });
  });
  it('counts sockets, cores and threads, and sums the installed DIMMs', () => {
    expect(i.cpu).toEqual({ model: 'Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz', sockets: 2, cores: 32, threads: 64 });
    expect(i.memoryBytes).toBe(128 * GiB);
  });
  it('lists whole disks (not the DVD drive) with model, serial, WWN, transport', () => {
    expect(i.disks.map((d) => d.path)).toEqual(['/dev/sda', '/dev/sdb', '/dev/nvme0n1']);
    expect(i.disks[0]).toEqual({ path: '/dev/sda', sizeBytes: 479559942144, model: 'SSDSC2KB480G8R', serial: 'PHYF9215012Q480BGN', wwn: '0x55cd2e4150d3a1f2', rotational: false, transport: 'sas', byPath: undefined });
    expect(i.disks[2]).toMatchObject({ transport: 'nvme', wwn: 'eui.36344d3052045120002538a500000001' });
  });
  it('lists physical NICs with driver, speed and link; not lo or the bond', () => {
    expect(i.nics.map((n) => `${n.name} ${n.driver} ${n.speedMbps ?? '-'} ${n.link}`)).toEqual(['eno1 bnxt_en 10000 up', 'eno2 bnxt_en - down', 'eno3 tg3 1000 up', 'idrac cdc_ether - unknown']);
  });
});

describe('inventory of a Supermicro X11SSH (placeholders in DMI, MB-sized DIMMs, SATA disks)', () => {
  const i = inv('supermicro-x11ssh', false);
  it('drops firmware placeholders instead of storing them', () => {
    expect(i.system).toEqual({ vendor: 'Supermicro', product: 'Super Server', serial: undefined, uuid: '00000000-0000-0000-0000-ac1f6b4f2e10' });
    expect(i.firmware.mode).toBe('bios');
  });
  it('reads one socket, 4 cores, 8 threads, 32 GiB, two rotational disks, lowercase MACs', () => {
    expect(i.cpu).toMatchObject({ sockets: 1, cores: 4, threads: 8 });
    expect(i.memoryBytes).toBe(32 * GiB);
    expect(i.disks.map((d) => [d.path, d.rotational, d.serial])).toEqual([['/dev/sda', true, 'ZC1A7RQ9'], ['/dev/sdb', true, 'ZC1A7TX2']]);
    expect(i.nics.map((n) => n.mac)).toEqual(['ac:1f:6b:4f:2e:10', 'ac:1f:6b:4f:2e:11']);
  });
});

describe('inventory of a QEMU q35 guest (SeaBIOS, virtio)', () => {
  const i = inv('qemu-q35', false);
  it('matches what QEMU was given: memory, CPUs, disk sizes and serials, the NIC MAC', () => {
    expect(i.system).toMatchObject({ vendor: 'QEMU', product: 'Standard PC (Q35 + ICH9, 2009)', serial: undefined });
    expect(i.firmware).toMatchObject({ vendor: 'SeaBIOS', mode: 'bios' });
    expect(i.cpu).toEqual({ model: 'QEMU Virtual CPU version 2.5+', sockets: 2, cores: 2, threads: 2 });
    expect(i.memoryBytes).toBe(1536 * 1024 ** 2);
    expect(i.disks.map((d) => [d.path, d.sizeBytes, d.serial])).toEqual([['/dev/sda', 8 * GiB, 'FERRY0453363'], ['/dev/vda', 4 * GiB, 'FERRY0e90bec']]);
    expect(i.nics).toEqual([{ name: 'eth0', mac: '52:54:00:12:34:56', driver: 'virtio_net', speedMbps: undefined, link: 'up' }]);
  });
});

describe('parser edges', () => {
  it('dmidecode: records and their fields; an empty text is no record', () => {
    expect(parseDmidecode('')).toEqual([]);
    const r = parseDmidecode(read('qemu-q35', 'dmidecode.txt'));
    expect(r.map((x) => x.type)).toEqual([0, 1, 17, 127]);
    expect(r[1].title).toBe('System Information');
  });
  it('meminfo is the fallback memory size', () => {
    expect(parseMeminfo('MemTotal:        2014064 kB\nMemFree: 1 kB\n')).toBe(2014064 * 1024);
    expect(buildInventory({ dmidecode: '', cpuinfo: '', lsblk: '{"blockdevices":[]}', sysnet: {}, meminfo: 'MemTotal: 1024 kB\n', efi: false }).memoryBytes).toBe(1024 * 1024);
  });
  it('cpuinfo without physical ids is one socket', () => {
    expect(parseCpuinfo('processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\nmodel name\t: X\n')).toEqual({ model: 'X', sockets: 1, cores: 2, threads: 2 });
  });
  it('lsblk: by-path names are attached; sysnet skips interfaces without a driver', () => {
    expect(parseLsblk(read('supermicro-x11ssh', 'lsblk.json'), { '/dev/sda': 'pci-0000:00:17.0-ata-1' })[0].byPath).toBe('pci-0000:00:17.0-ata-1');
    expect(parseSysNet({ veth0: { address: '02:00:00:00:00:01', type: '1' } })).toEqual([]);
  });
});

describe('hw.* properties', () => {
  const props = inventoryProperties(inv('qemu-q35', false));
  it('flattens the inventory into node properties', () => {
    expect(props).toMatchObject({ 'hw.system.vendor': 'QEMU', 'hw.cpu.threads': '2', 'hw.memory': String(1536 * 1024 ** 2), 'hw.disk.count': '2', 'hw.disk.0.serial': 'FERRY0453363', 'hw.nic.0.mac': '52:54:00:12:34:56', 'hw.firmware.mode': 'bios' });
    expect(Object.keys(props).some((k) => k.includes('serial') && props[k] === 'undefined')).toBe(false);
    expect(props['hw.system.serial']).toBeUndefined();
  });
  it('groups them for node show', () => {
    const g = Object.fromEntries(groupHwProperties({ ...props, 'other.key': 'x' }));
    expect(Object.keys(g)).toEqual(['system', 'firmware', 'cpu', 'memory', 'disk', 'disk 0', 'disk 1', 'nic', 'nic 0']);
    expect(g['disk 1']).toContainEqual(['serial', 'FERRY0e90bec']);
    expect(g.memory).toEqual([['memory', String(1536 * 1024 ** 2)]]);
  });
});

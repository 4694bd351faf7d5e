/**
 * Disk names by id and by path without udev (issue 17): the /dev/disk/by-id and by-path names
 * udev would make, computed from recorded sysfs trees (test/fixtures/sysfs/: one recorded on the
 * project machine, the others the kernel's layouts for QEMU, NVMe, AHCI, virtio-scsi, MegaRAID
 * and USB), and the mapping of layout disks named by them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ataIdentify, diskByIdNames, diskByPathNames, udevName, vpdPage83Id, type SysfsReader } from '../../installer/disk/sysfs-names.js';
import { fillFromSysfs } from '../../installer/disk/discover.js';
import { diskForLinkName } from '../../layout/mapping.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { BlockDevice, DiskTarget } from '../../layout/types.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'sysfs');
const GiB = 1024 ** 3;

/** A recorded tree: links (realpath), files (text, or base64: for binary VPD pages), dirs. */
function tree(name: string): SysfsReader {
  const t = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as { links: Record<string, string>; files: Record<string, string>; dirs?: string[] };
  const paths = [...Object.keys(t.files), ...Object.values(t.links), ...(t.dirs ?? [])];
  return {
    realpath: (p) => t.links[p],
    read: (p) => (p in t.files ? (t.files[p].startsWith('base64:') ? Buffer.from(t.files[p].slice(7), 'base64') : Buffer.from(t.files[p])) : undefined),
    list: (d) => [...new Set(paths.filter((p) => p.startsWith(d + '/')).map((p) => p.slice(d.length + 1).split('/')[0]))],
  };
}

describe('by-id and by-path names from sysfs', () => {
  const cases: { fixture: string; disk: string; byId: string[]; byPath: string[] }[] = [
    { fixture: 'host-virtio', disk: 'vda', byId: ['virtio-overlayblk'], byPath: ['pci-0000:00:02.0', 'virtio-pci-0000:00:02.0'] },
    { fixture: 'qemu-virtio', disk: 'vda', byId: ['virtio-FERRYDISK0'], byPath: ['pci-0000:00:04.0', 'virtio-pci-0000:00:04.0'] },
    { fixture: 'nvme', disk: 'nvme0n1', byId: ['nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0R123456', 'nvme-eui.0025385b71b0b2ab'], byPath: ['pci-0000:3b:00.0-nvme-1'] },
    { fixture: 'sata-ahci', disk: 'sda', byId: ['ata-ST2000NM0055-1V4104_ZBS0ABCD', 'wwn-0x5000c500a1b2c3d4'], byPath: ['pci-0000:00:17.0-ata-1.0', 'pci-0000:00:17.0-ata-1'] },
    { fixture: 'qemu-virtio-scsi', disk: 'sda', byId: ['scsi-0QEMU_QEMU_HARDDISK_FERRYSCSI0'], byPath: ['pci-0000:00:05.0-scsi-0:0:0:0'] },
    { fixture: 'megaraid', disk: 'sdb', byId: ['scsi-3600605b00d0ce8a02a1a1c4b1ef1e6f5', 'wwn-0x600605b00d0ce8a02a1a1c4b1ef1e6f5'], byPath: ['pci-0000:02:00.0-scsi-0:2:0:0'] },
    { fixture: 'usb-stick', disk: 'sdc', byId: ['usb-SanDisk_Ultra_Fit_4C530001230613117052-0:0'], byPath: ['pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0'] },
    { fixture: 'loop', disk: 'loop0', byId: [], byPath: [] },
  ];
  for (const c of cases) {
    it(`${c.fixture}: ${c.disk}`, () => {
      const sys = tree(c.fixture);
      expect(diskByIdNames(c.disk, sys)).toEqual(c.byId);
      expect(diskByPathNames(c.disk, sys)).toEqual(c.byPath);
    });
  }

  it('udev spelling: white space runs become one _, other characters _', () => {
    expect(udevName('  Samsung SSD  970 ')).toBe('Samsung_SSD_970');
    expect(udevName('a/b$c#d')).toBe('a_b_c#d');
  });
  it('ATA IDENTIFY strings are byte-swapped words; a short page gives nothing', () => {
    expect(ataIdentify(tree('sata-ahci').read('/sys/block/sda/device/vpd_pg89')!)).toEqual({ model: 'ST2000NM0055-1V4104', serial: 'ZBS0ABCD' });
    expect(ataIdentify(Buffer.alloc(100))).toEqual({});
  });
  it('page 0x83: NAA wins over a vendor-specific designator; a target-port designator is not the disk', () => {
    const vs = Buffer.from([0x02, 0x00, 0x00, 3, 0x41, 0x42, 0x43]);
    const naa = Buffer.from([0x01, 0x03, 0x00, 8, 0x50, 0, 0, 0, 0, 0, 0, 1]);
    const port = Buffer.from([0x01, 0x13, 0x00, 8, 0x51, 0, 0, 0, 0, 0, 0, 2]);
    const page = (...d: Buffer[]) => Buffer.concat([Buffer.from([0, 0x83, 0, d.reduce((n, b) => n + b.length, 0)]), ...d]);
    expect(vpdPage83Id(page(vs, naa), 'V', 'M')).toBe('35000000000000001');
    expect(vpdPage83Id(page(port, vs), 'V', 'M')).toBe('0V       M               ABC');
    expect(vpdPage83Id(page(port))).toBeUndefined();
    expect(vpdPage83Id(Buffer.alloc(2))).toBeUndefined();
  });
  it('discovery joins the sysfs names to udev links, and fills serial and model', () => {
    const d: BlockDevice = { path: '/dev/nvme0n1', name: 'nvme0n1', type: 'disk', size: GiB, sectorSize: 512, physicalSectorSize: 512, removable: false, readOnly: false, mountpoints: [], holders: [], partitions: [], byPath: ['pci-0000:3b:00.0-nvme-1'] };
    const f = fillFromSysfs(d, tree('nvme'));
    expect(f.serial).toBe('S4EWNX0R123456');
    expect(f.model).toBe('Samsung SSD 970 EVO Plus 1TB');
    expect(f.byPath).toEqual(['pci-0000:3b:00.0-nvme-1']);
    expect(f.byId).toContain('nvme-eui.0025385b71b0b2ab');
  });
});

describe('layout disks named by /dev/disk/by-id and by-path', () => {
  const vda: DiskTarget = { path: '/dev/vda', size: 20 * GiB, sectorSize: 512, byId: ['virtio-FERRYDISK0'], byPath: ['pci-0000:00:04.0', 'virtio-pci-0000:00:04.0'] };
  const vdb: DiskTarget = { path: '/dev/vdb', size: 20 * GiB, sectorSize: 512, byId: ['virtio-FERRYDISK1'], byPath: ['pci-0000:00:05.0'] };
  const layout = (dev: string, hint = '') => parseLayout(`<config><disk dev="${dev}" label_type="gpt"${hint}><part num="1" size="*" p_type="primary"/></disk><fsinfo line="1" real_dev="${dev}-part1" mp="/" fs="ext4"/></config>`);
  it('diskForLinkName: by-id and by-path names, with or without the directory in the disk\'s list', () => {
    expect(diskForLinkName('/dev/disk/by-id/virtio-FERRYDISK1', [vda, vdb])?.path).toBe('/dev/vdb');
    expect(diskForLinkName('/dev/disk/by-path/pci-0000:00:04.0', [vdb, vda])?.path).toBe('/dev/vda');
    expect(diskForLinkName('/dev/disk/by-path/pci-0000:00:04.0', [{ ...vda, byPath: ['/dev/disk/by-path/pci-0000:00:04.0'] }])?.path).toBe('/dev/vda');
    expect(diskForLinkName('/dev/disk/by-id/virtio-FERRYDISK1', [vda])).toBeUndefined();
    expect(diskForLinkName('/dev/sda', [vda])).toBeUndefined();
  });
  it('a by-id name picks its disk, not the first one, and its partitions follow', () => {
    const p = planDisks(layout('/dev/disk/by-id/virtio-FERRYDISK1'), [vda, vdb], { seed: 's' });
    expect(p.disks.map((d) => d.path)).toEqual(['/dev/vdb']);
    expect(p.filesystems[0].device).toBe('/dev/vdb1');
  });
  it('a by-path name picks its disk', () => {
    expect(planDisks(layout('/dev/disk/by-path/pci-0000:00:05.0'), [vda, vdb], { seed: 's' }).disks.map((d) => d.path)).toEqual(['/dev/vdb']);
  });
  it('a by-id name no disk carries is an error listing the names there are, never a guess', () => {
    let e: any;
    try {
      planDisks(layout('/dev/disk/by-id/virtio-NOSUCH'), [vda, vdb], { seed: 's' });
    } catch (x) {
      e = x;
    }
    const p = e?.problems?.find((x: any) => x.code === 'FERRY_E_DISK_NO_MATCH');
    expect(p?.message).toMatch(/no disk is \/dev\/disk\/by-id\/virtio-NOSUCH/);
    expect(p?.message).toContain('virtio-FERRYDISK0');
  });
});

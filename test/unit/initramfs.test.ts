import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { newcHeader } from '../../initrd/cpio.js';
import {
  decideInitramfs, imageAsksRebuild, machineModules, machineNeeds, readInitramfsListing, targetKernels,
  type KernelInitramfs, type MachineNeeds,
} from '../../installer/customize/initramfs.js';

const FIX = path.join(__dirname, '../fixtures/initramfs');
const K = '6.1.0-50-amd64';
const listing = (f: string) => fs.readFileSync(path.join(FIX, f), 'utf8').split('\n').filter(Boolean);
const kernel = (f: string): KernelInitramfs => ({ version: K, listing: listing(f) });

// Machine descriptions as machineNeeds derives them from the vm tier's guests.
const VIRTIO: MachineNeeds = { modules: ['virtio_blk', 'virtio_pci', 'ext4'], tools: [] };
const SATA: MachineNeeds = { modules: ['sd_mod', 'ahci', 'ext4'], tools: [] };
const NVME: MachineNeeds = { modules: ['nvme', 'ext4'], tools: [] };
const RAID_LVM: MachineNeeds = { modules: ['virtio_blk', 'virtio_pci', 'ext4', 'md_mod', 'raid1', 'dm_mod'], tools: ['mdadm', 'lvm'] };

describe('decideInitramfs on real Debian 12 listings', () => {
  it('keeps a MODULES=most initramfs on virtio and SATA machines, naming what it found', () => {
    expect(decideInitramfs([kernel('debian12-most.txt')], VIRTIO)).toEqual({ action: 'keep', reason: 'kept: has virtio_blk, virtio_pci, ext4' });
    expect(decideInitramfs([kernel('debian12-most.txt')], SATA)).toEqual({ action: 'keep', reason: 'kept: has sd_mod, ahci, ext4' });
    expect(decideInitramfs([kernel('debian12-most.txt')], NVME).action).toBe('keep');
  });

  it('keeps MODULES=most with the mdadm and lvm2 hooks for RAID and LVM, rebuilds without them', () => {
    expect(decideInitramfs([kernel('debian12-most.txt')], RAID_LVM)).toEqual({ action: 'keep', reason: 'kept: has virtio_blk, virtio_pci, ext4, md_mod, raid1, dm_mod, mdadm, lvm' });
    expect(decideInitramfs([kernel('debian12-most-no-mdadm-lvm.txt')], RAID_LVM)).toEqual({
      action: 'rebuild', reason: 'rebuild: missing md_mod, raid1, dm_mod, the mdadm tool, the lvm tool',
    });
    expect(decideInitramfs([kernel('debian12-most-no-mdadm-lvm.txt')], VIRTIO).action).toBe('keep');
  });

  it('rebuilds a MODULES=dep initramfs made for other hardware, keeps it on the same hardware', () => {
    expect(decideInitramfs([kernel('debian12-dep-virtio.txt')], NVME)).toEqual({ action: 'rebuild', reason: 'rebuild: missing nvme' });
    expect(decideInitramfs([kernel('debian12-dep-virtio.txt')], SATA)).toEqual({ action: 'rebuild', reason: 'rebuild: missing sd_mod, ahci' });
    expect(decideInitramfs([kernel('debian12-dep-virtio.txt')], VIRTIO).action).toBe('keep');
    expect(decideInitramfs([kernel('debian12-dep-virtio-no-mdadm-lvm.txt')], RAID_LVM).reason).toBe('rebuild: missing md_mod, raid1, dm_mod, the mdadm tool, the lvm tool');
    expect(decideInitramfs([kernel('debian12-dep-virtio.txt')], RAID_LVM).action).toBe('keep');
  });

  it('keeps the sample image\'s MODULES=list initramfs on every vm-tier guest', () => {
    for (const m of [VIRTIO, SATA, NVME, RAID_LVM]) expect(decideInitramfs([kernel('sample-image-list.txt')], m).action).toBe('keep');
  });

  it('counts built-in modules as present', () => {
    const k = { ...kernel('debian12-dep-virtio.txt'), builtin: ['nvme'] };
    expect(decideInitramfs([k], NVME)).toEqual({ action: 'keep', reason: 'kept: has nvme (built in), ext4' });
  });

  it('rebuilds when a kernel has no initramfs, when it cannot be read, when forced, and when the layout says so', () => {
    expect(decideInitramfs([kernel('debian12-most.txt'), { version: '6.1.0-99-amd64' }], VIRTIO).reason).toBe('rebuild: no initramfs for kernel 6.1.0-99-amd64');
    expect(decideInitramfs([{ version: K, unreadable: 'bzip2: not found' }], VIRTIO).reason).toBe(`rebuild: cannot read the initramfs of ${K} (bzip2: not found)`);
    expect(decideInitramfs([kernel('debian12-most.txt')], VIRTIO, 'asked').reason).toBe('rebuild: asked');
    expect(decideInitramfs([kernel('debian12-most.txt')], { ...VIRTIO, rebuildBecause: 'new mdadm.conf' }).reason).toBe('rebuild: new mdadm.conf');
    expect(decideInitramfs([], VIRTIO).action).toBe('rebuild');
    expect(decideInitramfs([kernel('debian12-most.txt')], { modules: [], tools: [] }).action).toBe('rebuild');
  });

  it('names the kernel when one of several misses something', () => {
    const d = decideInitramfs([kernel('debian12-most.txt'), { version: '6.1.0-51-amd64', listing: listing('debian12-dep-virtio.txt') }], SATA);
    expect(d.reason).toBe('rebuild: missing sd_mod, ahci (6.1.0-51-amd64)');
  });
});

describe('imageAsksRebuild', () => {
  it('asks for scripts and for writes to what the initramfs carries, not for other files', () => {
    expect(imageAsksRebuild([{ kind: 'file', path: '/etc/motd' }, { kind: 'hostname' }])).toBeUndefined();
    expect(imageAsksRebuild([{ kind: 'file', path: 'etc/initramfs-tools/modules' }])).toMatch(/writes \/etc\/initramfs-tools\/modules/);
    expect(imageAsksRebuild([{ kind: 'regexp', path: '/etc/modprobe.d/x.conf' }])).toMatch(/modprobe/);
    expect(imageAsksRebuild([{ kind: 'script' }])).toMatch(/script/);
  });
});

// ------------------------------------------------------------------------------------------

function cpio(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content);
    parts.push(newcHeader({ ino: ino++, mode: 0o100644, nlink: 1, mtime: 0, size: data.length, name }), data, Buffer.alloc((4 - (data.length % 4)) % 4));
  }
  parts.push(newcHeader({ ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, name: 'TRAILER!!!' }));
  return Buffer.concat(parts);
}

const MAIN = { '.': '', 'usr/lib/modules/6.1/kernel/drivers/block/virtio_blk.ko': 'x'.repeat(5), 'usr/sbin/mdadm': 'elf' };
const MICROCODE = { kernel: '', 'kernel/x86/microcode/GenuineIntel.bin': 'ucode!' };
const NAMES = ['kernel', 'kernel/x86/microcode/GenuineIntel.bin', '.', 'usr/lib/modules/6.1/kernel/drivers/block/virtio_blk.ko', 'usr/sbin/mdadm'];

function tool(argv: string[], input: Buffer): Buffer {
  const r = spawnSync(argv[0], argv.slice(1), { input });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('readInitramfsListing', () => {
  const early = Buffer.concat([cpio(MICROCODE), Buffer.alloc(512)]);
  it('reads an early microcode archive followed by a gzip, zstd, xz or lz4 archive', () => {
    const main = cpio(MAIN);
    for (const packed of [gzipSync(main), tool(['zstd', '-q', '-c'], main), tool(['xz', '-c', '--check=crc32'], main), tool(['lz4', '-l', '-q', '-c'], main)]) {
      expect(readInitramfsListing(Buffer.concat([early, packed]))).toEqual(NAMES);
    }
    expect(readInitramfsListing(main)).toEqual(NAMES.slice(2));
  });

  it('fails on cut and foreign data, so the installer rebuilds', () => {
    const main = cpio(MAIN);
    expect(() => readInitramfsListing(main.subarray(0, 150))).toThrow(/cut/);
    expect(() => readInitramfsListing(Buffer.from('not an initramfs at all'))).toThrow(/unknown data/);
    expect(() => readInitramfsListing(gzipSync(main).subarray(0, 20))).toThrow();
  });
});

// ------------------------------------------------------------------------------------------
// sysfs: a fake tree shaped like a virtio guest's and a SATA guest's.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-initramfs-sys-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function sysfs(): string {
  const sys = path.join(tmp, 'sys');
  const mk = (p: string) => fs.mkdirSync(path.join(sys, p), { recursive: true });
  const ln = (target: string, p: string) => fs.symlinkSync(target, path.join(sys, p));
  for (const m of ['virtio_blk', 'virtio_pci', 'ahci', 'sd_mod']) mk(`module/${m}`);
  for (const [bus, drv, mod] of [['virtio', 'virtio_blk', 'virtio_blk'], ['pci', 'virtio-pci', 'virtio_pci'], ['pci', 'ahci', 'ahci'], ['scsi', 'sd', 'sd_mod'], ['pci', 'builtin', '']]) {
    mk(`bus/${bus}/drivers/${drv}`);
    if (mod) ln(`../../../../module/${mod}`, `bus/${bus}/drivers/${drv}/module`);
  }
  // virtio: pci 0000:00:04.0 (virtio-pci) → virtio1 (virtio_blk) → block/fvda/fvda2
  const vpci = 'devices/pci0000:00/0000:00:04.0';
  mk(`${vpci}/virtio1/block/fvda/fvda2`);
  fs.writeFileSync(path.join(sys, `${vpci}/virtio1/block/fvda/fvda2/partition`), '2\n');
  ln('../../../bus/pci/drivers/virtio-pci', `${vpci}/driver`);
  ln('../../../../bus/virtio/drivers/virtio_blk', `${vpci}/virtio1/driver`);
  ln('../../../virtio1', `${vpci}/virtio1/block/fvda/device`);
  // SATA: pci 0000:00:1f.2 (ahci) → ata1 → host0 → target0:0:0 → 0:0:0:0 (sd) → block/fsda
  const spci = 'devices/pci0000:00/0000:00:1f.2';
  const scsi = `${spci}/ata1/host0/target0:0:0/0:0:0:0`;
  mk(`${scsi}/block/fsda/fsda1`);
  fs.writeFileSync(path.join(sys, `${scsi}/block/fsda/fsda1/partition`), '1\n');
  ln('../../../bus/pci/drivers/ahci', `${spci}/driver`);
  ln('../../../../../../../bus/scsi/drivers/sd', `${scsi}/driver`);
  ln('../../../0:0:0:0', `${scsi}/block/fsda/device`);
  // md0 on fvda2 and fsda1; a device whose drivers are all built in.
  mk('devices/virtual/block/fmd0/slaves');
  ln('../../../../../' + `${vpci}/virtio1/block/fvda/fvda2`, 'devices/virtual/block/fmd0/slaves/fvda2');
  ln('../../../../../' + `${scsi}/block/fsda/fsda1`, 'devices/virtual/block/fmd0/slaves/fsda1');
  mk('devices/pci0000:00/0000:00:05.0/blk/block/fbuiltin');
  ln('../../../bus/pci/drivers/builtin', 'devices/pci0000:00/0000:00:05.0/driver');
  ln('../../..', 'devices/pci0000:00/0000:00:05.0/blk/block/fbuiltin/device');
  mk('class/block');
  for (const [n, p] of [['fvda', `${vpci}/virtio1/block/fvda`], ['fvda2', `${vpci}/virtio1/block/fvda/fvda2`], ['fsda', `${scsi}/block/fsda`], ['fsda1', `${scsi}/block/fsda/fsda1`], ['fmd0', 'devices/virtual/block/fmd0'], ['fbuiltin', 'devices/pci0000:00/0000:00:05.0/blk/block/fbuiltin']]) {
    ln(`../../${p}`, `class/block/${n}`);
  }
  return sys;
}

describe('machineModules and machineNeeds from sysfs', () => {
  const sys = sysfs();
  it('walks from a partition to its disk and up the device parents', () => {
    expect(machineModules('/dev/fvda2', sys)).toEqual(['virtio_blk', 'virtio_pci']);
    expect(machineModules('/dev/fsda1', sys)).toEqual(['sd_mod', 'ahci']);
    expect(machineModules('/dev/fmd0', sys).sort()).toEqual(['ahci', 'sd_mod', 'virtio_blk', 'virtio_pci']);
    expect(machineModules('/dev/fbuiltin', sys)).toEqual([]);
    expect(machineModules('/dev/nothere', sys)).toEqual([]);
  });

  const fsys = (device: string, fstabType = 'ext4') => ({ device, fstabType, mountpoint: '/' }) as never;
  it('adds the root file system, md and dm modules and the tools; a new mdadm.conf forces a rebuild', () => {
    expect(machineNeeds({ filesystems: [fsys('/dev/fvda2'), { device: '/dev/fvda1', fstabType: 'vfat', mountpoint: '/boot/efi' } as never], raids: [], volumeGroups: [] }, sys))
      .toEqual({ modules: ['virtio_blk', 'virtio_pci', 'ext4'], tools: [], rebuildBecause: undefined });
    const n = machineNeeds({ filesystems: [fsys('/dev/fmd0', 'xfs')], raids: [{ level: 'raid1' }] as never, volumeGroups: [{ name: 'vg' }] as never, mdadmConf: 'ARRAY /dev/md0 UUID=x\n' }, sys);
    expect(n.modules.sort()).toEqual(['ahci', 'dm_mod', 'md_mod', 'raid1', 'sd_mod', 'virtio_blk', 'virtio_pci', 'xfs']);
    expect(n.tools).toEqual(['mdadm', 'lvm']);
    expect(n.rebuildBecause).toMatch(/mdadm\.conf/);
    expect(machineNeeds({ filesystems: [fsys('/dev/fbuiltin')], raids: [], volumeGroups: [] }, sys).rebuildBecause).toMatch(/no driver module of \/dev\/fbuiltin/);
  });

  it('reads the target\'s kernels, their initramfs and modules.builtin', () => {
    const files: Record<string, string> = { [`/lib/modules/${K}/modules.dep`]: '', [`/lib/modules/${K}/modules.builtin`]: 'kernel/drivers/nvme/host/nvme.ko\n', '/lib/modules/6.1.0-51-amd64/modules.dep': '' };
    const view = { readText: (p: string) => files[p], exists: (p: string) => p in files || Object.keys(files).some((f) => f.startsWith(p + '/')), list: (d: string) => (d === '/lib/modules' ? [K, '6.1.0-51-amd64'] : []) };
    const ks = targetKernels(view, (p) => (p === `/boot/initrd.img-${K}` ? gzipSync(cpio(MAIN)) : p === '/boot/initrd.img-6.1.0-51-amd64' ? Buffer.from('junk') : undefined));
    expect(ks.map((k) => [k.version, k.listing?.length, k.builtin, k.unreadable])).toEqual([
      [K, 3, ['nvme'], undefined],
      ['6.1.0-51-amd64', undefined, [], expect.stringMatching(/unknown data/)],
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureToXml, parseMdstat, parsePartedMachine, type CaptureInput } from '../../layout/capture.js';
import { parseLsblk } from '../../installer/disk/discover.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import type { DiskPlan, DiskTarget } from '../../layout/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GiB = 1024 ** 3;

describe('tool output parsers', () => {
  it('parted -m', () => {
    const out = 'BYT;\n/dev/loop0:2147483648B:loopback:4096:4096:gpt:Loopback device:;\n1:1048576B:2097151B:1048576B::bios:bios_grub;\n2:2097152B:270532607B:268435456B:ext4:boot:;\n4:1945108480B:2012217343B:67108864B:linux-swap(v1):swap:swap;\n';
    expect(parsePartedMachine(out)).toEqual({
      path: '/dev/loop0', size: 2147483648, sectorSize: 4096, label: 'gpt',
      partitions: [
        { number: 1, start: 1048576, size: 1048576, name: 'bios', flags: ['bios_grub'] },
        { number: 2, start: 2097152, size: 268435456, name: 'boot', flags: [] },
        { number: 4, start: 1945108480, size: 67108864, name: 'swap', flags: ['swap'] },
      ],
    });
    expect(parsePartedMachine('Error: /dev/vdc: unrecognised disk label\n')).toBeUndefined();
  });

  it('/proc/mdstat', () => {
    const text = `Personalities : [raid1] [raid0]
md1 : active raid1 vdb1[1] vda1[0]
      130048 blocks super 1.2 [2/2] [UU]

md0 : active (auto-read-only) raid1 vdb2[1] vda2[0](F) vdc2[2](S)
      1964032 blocks super 1.2 [2/2] [UU]
      [=>...................]  resync =  5.0% (98432/1964032) finish=1.2min speed=24608K/sec

md2 : active raid0 sdb1[1] sda1[0]
unused devices: <none>
`;
    expect(parseMdstat(text)).toEqual([
      { device: '/dev/md1', level: 'raid1', members: ['/dev/vda1', '/dev/vdb1'] },
      { device: '/dev/md0', level: 'raid1', members: ['/dev/vda2', '/dev/vdb2', '/dev/vdc2'] },
      { device: '/dev/md2', level: 'raid0', members: ['/dev/sda1', '/dev/sdb1'] },
    ]);
  });

  it('lsblk -J -b -O: mounts and holders anywhere below a disk count', () => {
    const json = JSON.stringify({
      blockdevices: [
        { name: 'vda', path: '/dev/vda', type: 'disk', size: 2147483648, 'log-sec': 512, 'phy-sec': 512, ro: false, rm: false, serial: 'S1', model: 'QEMU ', pttype: 'gpt', mountpoints: [null],
          children: [
            { name: 'vda1', path: '/dev/vda1', type: 'part', size: 1048576, mountpoints: ['/boot'] },
            { name: 'vda2', path: '/dev/vda2', type: 'part', size: 1048576, mountpoints: [null], children: [{ name: 'md0', path: '/dev/md0', type: 'raid1', size: 1, mountpoints: [null], children: [{ name: 'vg-root', path: '/dev/mapper/vg-root', type: 'lvm', size: 1, mountpoints: ['/'] }] }] },
          ] },
        { name: 'loop3', path: '/dev/loop3', type: 'loop', size: '1073741824', 'log-sec': '4096', ro: '0', rm: '0', mountpoints: [null] },
      ],
    });
    const [vda, loop] = parseLsblk(json, new Map([['/dev/vda', ['pci-0000:00:04.0']]]));
    expect(vda).toMatchObject({ path: '/dev/vda', size: 2147483648, sectorSize: 512, serial: 'S1', model: 'QEMU', byPath: ['pci-0000:00:04.0'], partitions: ['/dev/vda1', '/dev/vda2'] });
    expect(vda.mountpoints.sort()).toEqual(['/', '/boot']);
    expect(vda.holders).toEqual(['/dev/mapper/vg-root', '/dev/md0']);
    expect(loop).toMatchObject({ type: 'loop', size: 1073741824, sectorSize: 4096, readOnly: false, mountpoints: [], holders: [] });
  });
});

/** What the tools would report about disks a plan was applied to. */
function asCaptured(plan: DiskPlan, root: string): CaptureInput {
  return {
    root,
    disks: plan.disks.map((d) => ({
      path: d.path, size: d.size, sectorSize: d.sectorSize, label: d.label,
      partitions: d.partitions.map((p) => ({ number: p.number, start: p.start, size: p.size, name: p.name, flags: p.flags })),
    })),
    filesystems: plan.filesystems.filter((f) => f.format).map((f) => ({
      device: f.device, type: f.fstabType, uuid: f.uuid, label: f.label, version: f.fs === 'fat32' ? 'FAT32' : undefined,
      mountpoint: f.fs === 'swap' ? '[SWAP]' : f.mount ? `${root}${f.mountpoint === '/' ? '' : f.mountpoint}` : undefined,
    })),
    raids: plan.raids.map((r) => ({ device: r.device, level: r.level, members: r.members })),
    volumeGroups: plan.volumeGroups.map((v) => ({ name: v.name, extentSize: v.extentSize, extents: v.extents, pvs: v.pvs, lvs: v.lvs.map((l) => ({ name: l.name, size: l.size })) })),
  };
}

const shape = (p: DiskPlan) => ({
  parts: p.disks.map((d) => d.partitions.map((x) => [x.device, x.number, x.type, x.start, x.size])),
  raids: p.raids.map((r) => [r.device, r.level, r.members, r.size]),
  lvs: p.volumeGroups.map((v) => [v.name, v.extents, v.lvs.map((l) => [l.name, l.extents])]),
  fs: p.filesystems.filter((f) => f.format).map((f) => [f.device, f.fstabType, f.uuid, f.label ?? null, f.mountpoint]).sort(),
});

describe('capture round trip (pure)', () => {
  const cases: [string, DiskTarget[]][] = [
    ['layouts/bios-msdos.xml', [{ path: '/dev/vda', size: 4 * GiB, sectorSize: 512 }]],
    ['layouts/uefi-gpt.xml', [{ path: '/dev/nvme0n1', size: 4 * GiB, sectorSize: 4096 }]],
    ['layouts/lvm.xml', [{ path: '/dev/vda', size: 8 * GiB, sectorSize: 512 }]],
    ['layouts/raid1.xml', [{ path: '/dev/vda', size: 2 * GiB, sectorSize: 512 }, { path: '/dev/vdb', size: 2 * GiB, sectorSize: 512 }]],
    ['layouts/raid1-lvm.xml', [{ path: '/dev/vda', size: 3 * GiB, sectorSize: 512 }, { path: '/dev/vdb', size: 3 * GiB, sectorSize: 512 }]],
    ['layouts/adaptive.xml', [{ path: '/dev/loop0', size: 2 * GiB, sectorSize: 512 }]],
    ['test/fixtures/systemimager-layouts/02-complex-msdos-unordered-nums-midstar-MiB.xml', [{ path: '/dev/sda', size: 20 * GiB, sectorSize: 512 }]],
  ];
  it.each(cases)('%s', (file, disks) => {
    const plan = planDisks(parseLayout(readFileSync(join(ROOT, file), 'utf8')), disks);
    const xml = captureToXml(asCaptured(plan, '/target'));
    const again = planDisks(parseLayout(xml), disks, { seed: 'another seed' });
    expect(shape(again)).toEqual(shape(plan));
  });

  it('turns the last partition into * and writes UUIDs, labels and relative mount points', () => {
    const disks = [{ path: '/dev/vda', size: 4 * GiB, sectorSize: 512 }];
    const plan = planDisks(parseLayout(readFileSync(join(ROOT, 'layouts/bios-msdos.xml'), 'utf8')), disks);
    const xml = captureToXml(asCaptured(plan, '/target'));
    expect(xml).toContain('<part num="2" size="*" p_type="extended" />');
    expect(xml).toContain('<part num="6" size="*" p_type="logical" />');
    const lvm = planDisks(parseLayout(readFileSync(join(ROOT, 'layouts/lvm.xml'), 'utf8')), disks);
    expect(captureToXml(asCaptured(lvm, '/target'))).toMatch(/<lv name="root" size="\d+K" \/>\n\s*<lv name="swap" size="131072K" \/>\n\s*<lv name="var" size="\*" \/>/);
    expect(xml).toContain(`<fsinfo line="10" real_dev="/dev/vda6" mount_dev="UUID=${plan.filesystems[0].uuid}" label="root" mp="/" fs="ext4"`);
    // On a bigger disk the captured layout grows its last partitions.
    const big = planDisks(parseLayout(xml), [{ path: '/dev/vda', size: 8 * GiB, sectorSize: 512 }]);
    expect(big.disks[0].partitions.find((p) => p.number === 6)!.size).toBeGreaterThan(plan.disks[0].partitions.find((p) => p.number === 6)!.size);
  });
});

describe('logical volume order', () => {
  it('follows the extents on the physical volumes, not the names', async () => {
    const { extentPosition } = await import('../../installer/disk/capture.js');
    expect(extentPosition('/dev/md1(256)', ['/dev/md1'])).toEqual([0, 256]);
    expect(extentPosition('/dev/vdb3(0),/dev/vda3(10)', ['/dev/vda3', '/dev/vdb3'])).toEqual([1, 0]);
    expect(extentPosition('', ['/dev/vda3'])[0]).toBe(Number.MAX_SAFE_INTEGER);
  });
});

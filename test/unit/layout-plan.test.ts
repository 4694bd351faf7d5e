import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';
import { ValidationError } from '../../common/errors.js';
import type { DiskPlan, DiskTarget } from '../../layout/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (f: string) => parseLayout(readFileSync(join(ROOT, f), 'utf8'), { file: f });
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const disk = (path: string, gib: number, extra: Partial<DiskTarget> = {}): DiskTarget => ({ path, size: gib * GiB, sectorSize: 512, ...extra });

function planError(f: () => DiskPlan): ValidationError {
  try {
    f();
  } catch (e) {
    if (e instanceof ValidationError) return e;
    throw e;
  }
  throw new Error('expected a ValidationError');
}

describe('placement', () => {
  it('places v5 layouts in document order with a * between fixed partitions (fixture 02)', () => {
    const p = planDisks(read('test/fixtures/systemimager-layouts/02-complex-msdos-unordered-nums-midstar-MiB.xml'), [disk('/dev/sda', 20)]);
    const parts = p.disks[0].partitions.slice().sort((a, b) => a.start - b.start);
    expect(parts.map((x) => [x.layoutNum, x.type, x.start / MiB, x.size / MiB])).toEqual([
      [1, 'primary', 1, 500],
      [3, 'primary', 501, 4096],
      [4, 'extended', 4597, 20480 - 1024 - 4597],
      [7, 'logical', 4598, 4096],
      [5, 'logical', 8695, 20480 - 1024 - 4597 - 4096 - 2048 - 3],
      [6, 'logical', 17408, 2048],
      [2, 'primary', 19456, 1024],
    ]);
    // Every partition starts on a MiB boundary and none overlap.
    for (const x of parts) expect(x.start % MiB).toBe(0);
    // Logical partitions are numbered in disk order; references follow.
    expect(parts.filter((x) => x.type === 'logical').map((x) => x.number)).toEqual([5, 6, 7]);
    expect(p.deviceMap['/dev/sda7']).toBe('/dev/sda5');
    expect(p.filesystems.find((f) => f.mountpoint === '/backup')!.device).toBe('/dev/sda5');
    expect(p.warnings.filter((w) => w.code === 'FERRY_W_PLAN_RENUMBERED')).toHaveLength(3);
  });

  it('MB are powers of ten, rounded up to whole MiB (fixture 01)', () => {
    const p = planDisks(read('test/fixtures/systemimager-layouts/01-simple-msdos-extended-logical-grub2-legacy.xml'), [disk('/dev/sda', 10)]);
    const byNum = new Map(p.disks[0].partitions.map((x) => [x.layoutNum, x]));
    expect(byNum.get(1)!.size).toBe(477 * MiB); // 500 MB = 476.84 MiB
    expect(byNum.get(5)!.size).toBe(489 * MiB); // 512 MB
    expect(byNum.get(6)!.start + byNum.get(6)!.size).toBe(10 * GiB);
    expect(byNum.get(2)!.start + byNum.get(2)!.size).toBe(10 * GiB);
  });

  it('uses the disk\'s own sectors (4096-byte sectors)', () => {
    const p = planDisks(read('layouts/uefi-gpt.xml'), [disk('/dev/loop3', 2, { sectorSize: 4096 })]);
    const p1 = p.disks[0].partitions[0];
    expect([p1.startSector, p1.endSector]).toEqual([256, 256 + 65536 - 1]);
    expect(p.commands.find((c) => c[0] === 'parted')).toContain('256s');
    // The GPT backup needs 5 sectors of 4096 bytes at the end: the last MiB stays free.
    const last = p.disks[0].partitions[2];
    expect(last.start + last.size).toBe(2 * GiB - MiB);
  });

  it('% of the disk and sectors', () => {
    const l = parseLayout(`<config><disk dev="/dev/sda" label_type="gpt" unit_of_measurement="%">
      <part num="1" size="25"/><part num="2" size="2048s"/><part num="3" size="50%"/></disk>
      <fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>`);
    const p = planDisks(l, [disk('/dev/sda', 4)]);
    const usable = 4 * GiB - 2 * MiB; // 1 MiB at the start, the GPT backup rounds the end down a MiB
    expect(p.disks[0].partitions.map((x) => x.size)).toEqual([Math.floor(usable / 4 / MiB) * MiB, MiB, Math.floor(usable / 2 / MiB) * MiB]);
  });

  it('refuses msdos partitions beyond 2 TiB', () => {
    const l = parseLayout('<config><disk dev="/dev/sda" label_type="msdos"><part num="1" size="*"/></disk></config>');
    expect(planError(() => planDisks(l, [disk('/dev/sda', 3000)])).problems[0].code).toBe('FERRY_E_DISK_LABEL_LIMIT');
    expect(() => planDisks(l, [disk('/dev/sda', 3000, { sectorSize: 4096 })])).not.toThrow();
  });
});

describe('fitting', () => {
  it('names the bytes required and available', () => {
    const e = planError(() => planDisks(read('layouts/bios-msdos.xml'), [disk('/dev/sda', 0.25)]));
    expect(e.code).toBe('FERRY_E_PLAN_INVALID');
    const p = e.problems.find((x) => x.code === 'FERRY_E_LAYOUT_TOO_BIG')!;
    // 256 + 256 MiB of logical + their boot record + 1 MiB for the * partition.
    expect(p.message).toContain(`need at least ${(256 + 1 + 256 + 1 + 1) * MiB} bytes`);
    expect(p.message).toContain(`has ${255 * MiB} bytes`);
    expect(p.line).toBe(6);
  });

  it('shrinks adaptive partitions on a small disk and grows them on a big one', () => {
    const l = read('layouts/adaptive.xml');
    const small = planDisks(l, [disk('/dev/sda', 2)]).disks[0].partitions;
    const big = planDisks(l, [disk('/dev/sda', 500)]).disks[0].partitions;
    expect(big.find((x) => x.layoutNum === 3)!.size).toBe(20 * GiB);
    expect(big.find((x) => x.layoutNum === 4)!.size).toBe(4 * GiB);
    expect(small.find((x) => x.layoutNum === 3)!.size).toBeLessThan(2 * GiB);
    expect(small.find((x) => x.layoutNum === 3)!.size).toBeGreaterThanOrEqual(320 * MiB);
    expect(small.find((x) => x.layoutNum === 5)!.size).toBe(128 * MiB);
    const e = planError(() => planDisks(l, [{ path: '/dev/sda', size: 700 * MiB, sectorSize: 512 }]));
    expect(e.problems[0].code).toBe('FERRY_E_LAYOUT_TOO_BIG');
  });

  it('checks logical volumes against the group and file systems against their device', () => {
    const l = parseLayout(`<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="200MiB" lvm_group="vg"/><part num="2" size="100MiB"/></disk>
      <lvm><lvm_group name="vg"><lv name="a" size="300"/></lvm_group></lvm>
      <fsinfo real_dev="/dev/sda2" mp="/" fs="xfs"/></config>`);
    const e = planError(() => planDisks(l, [disk('/dev/sda', 1)]));
    expect(e.problems.map((p) => p.code).sort()).toEqual(['FERRY_E_FS_TOO_SMALL', 'FERRY_E_LAYOUT_TOO_BIG', 'FERRY_W_PLAN_BOOTLOADER_DISK']);
    expect(e.problems.find((p) => p.code === 'FERRY_E_FS_TOO_SMALL')!.message).toContain('314572800 bytes');
  });

  it('refuses labels longer than the file system allows', () => {
    const l = parseLayout('<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="xfs" label="thirteen-char"/></config>');
    expect(planError(() => planDisks(l, [disk('/dev/sda', 1)])).problems[0].code).toBe('FERRY_E_LAYOUT_LABEL');
  });
});

describe('mapping layout disks onto present disks', () => {
  const two = read('layouts/raid1.xml');
  it('same path first, then in order', () => {
    const p = planDisks(two, [disk('/dev/vda', 2), disk('/dev/sdb', 2), disk('/dev/vdc', 2)]);
    expect(p.disks.map((d) => [d.layoutDev, d.path])).toEqual([['/dev/sda', '/dev/vda'], ['/dev/sdb', '/dev/sdb']]);
  });
  it('follows --map and rewrites every reference', () => {
    const p = planDisks(two, [disk('/dev/nvme0n1', 2), disk('/dev/nvme1n1', 2)], { map: { '/dev/sda': '/dev/nvme1n1', '/dev/sdb': '/dev/nvme0n1' } });
    expect(p.raids.find((r) => r.device === '/dev/md0')!.members).toEqual(['/dev/nvme1n1p2', '/dev/nvme0n1p2']);
    expect(p.bootloader.targets).toEqual(['/dev/nvme1n1', '/dev/nvme0n1']);
    expect(p.commands.flat().join(' ')).not.toMatch(/\/dev\/sd[ab]/);
  });
  it('reports a bad --map and missing disks', () => {
    const e = planError(() => planDisks(two, [disk('/dev/vda', 2)], { map: { '/dev/sdz': '/dev/vda', '/dev/sda': '/dev/vdq' } }));
    expect(e.problems.map((p) => p.code)).toEqual(['FERRY_E_DISK_MAP', 'FERRY_E_DISK_MAP', 'FERRY_E_DISK_MISSING']);
  });
  const hinted = parseLayout(`<config>
    <disk dev="/dev/sda" label_type="gpt" serial="BBB" ><part num="1" size="*"/></disk>
    <disk dev="/dev/sdb" label_type="gpt" model="fast" min_size="100GiB"><part num="1" size="*"/></disk>
    <fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/><fsinfo real_dev="/dev/sdb1" mp="/srv" fs="xfs"/></config>`);
  it('chooses disks by hints', () => {
    const p = planDisks(hinted, [disk('/dev/vda', 10, { serial: 'AAA' }), disk('/dev/vdb', 10, { serial: 'BBB' }), disk('/dev/nvme0n1', 200, { model: 'Fast NVMe' })]);
    expect(p.deviceMap['/dev/sda1']).toBe('/dev/vdb1');
    expect(p.deviceMap['/dev/sdb1']).toBe('/dev/nvme0n1p1');
  });
  it('a hint that matches nothing is an error, never a guess', () => {
    const e = planError(() => planDisks(hinted, [disk('/dev/vda', 10, { serial: 'AAA' }), disk('/dev/nvme0n1', 50, { model: 'Fast NVMe' })]));
    expect(e.problems.map((p) => p.code)).toEqual(['FERRY_E_DISK_NO_MATCH', 'FERRY_E_DISK_NO_MATCH']);
    expect(e.problems[0].message).toContain('serial=BBB');
  });
});

describe('plan contents', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const l = read('layouts/lvm.xml');
    const a = planDisks(l, [disk('/dev/vda', 8)], { seed: 'node-1' });
    expect(planDisks(l, [disk('/dev/vda', 8)], { seed: 'node-1' })).toEqual(a);
    const b = planDisks(l, [disk('/dev/vda', 8)], { seed: 'node-2' });
    expect(b.filesystems[0].uuid).not.toBe(a.filesystems[0].uuid);
    expect(planDisks(l, [disk('/dev/vda', 8)]).seed).toBe(l.digest);
  });

  it('writes fstab by UUID, keeps LABEL= and fstab-only lines, orders by line', () => {
    const p = planDisks(read('test/fixtures/systemimager-layouts/04-two-disk-raid1-lvm-over-raid-v5.xml'), [disk('/dev/vda', 20), disk('/dev/vdb', 20)], { seed: 's' });
    const lines = p.fstab.split('\n').filter((x) => x && !x.startsWith('#'));
    expect(lines[0]).toMatch(/^UUID=[0-9a-f-]{36}\t\/\treiserfs\tacl,user_xattr\t1\t1$/);
    expect(lines).toContain('proc\t/proc\tproc\tdefaults\t0\t0');
    expect(lines.at(-1)).toBe('/dev/fd0\t/media/floppy\tsubfs\tnoauto,fs=floppyfss,procuid,nodev,nosuid,sync\t0\t0');
    const l2 = parseLayout('<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mount_dev="LABEL=/" mp="/" fs="ext4"/></config>');
    const p2 = planDisks(l2, [disk('/dev/sda', 1)]);
    expect(p2.fstab).toContain('LABEL=/\t/\text4');
    expect(p2.commands.find((c) => c[0] === 'mkfs.ext4')).toEqual(['mkfs.ext4', '-F', '-q', '-U', p2.filesystems[0].uuid, '-L', '/', '/dev/sda1']);
  });

  it('keeps a UUID the layout gives', () => {
    const l = parseLayout('<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="64"/><part num="2" size="*"/></disk><fsinfo real_dev="/dev/sda2" mount_dev="UUID=0C1C9071-0F82-4D6A-9673-C921F2D0489B" mp="/" fs="ext4"/><fsinfo real_dev="/dev/sda1" mount_dev="UUID=abcd-1234" mp="/boot/efi" fs="vfat"/></config>');
    const p = planDisks(l, [disk('/dev/sda', 1)]);
    expect(p.filesystems.map((f) => f.uuid)).toEqual(['0c1c9071-0f82-4d6a-9673-c921f2d0489b', 'ABCD-1234']);
    expect(p.commands.find((c) => c[0] === 'mkfs.fat')).toContain('ABCD1234');
  });

  it('mounts parents first and never swap or fstab-only lines', () => {
    const p = planDisks(read('layouts/uefi-gpt.xml'), [disk('/dev/vda', 2)]);
    expect(p.mounts).toEqual([
      { device: '/dev/vda3', mountpoint: '/', fstype: 'ext4' },
      { device: '/dev/vda1', mountpoint: '/boot/efi', fstype: 'vfat' },
    ]);
    expect(p.bootloader).toMatchObject({ mode: 'uefi', targets: ['/dev/vda1'], esp: { device: '/dev/vda1', mountpoint: '/boot/efi' }, rootDevice: '/dev/vda3' });
    expect(p.modules).toEqual(['ext4', 'crc32c_generic', 'vfat', 'nls_cp437', 'nls_utf8', 'nls_ascii']);
  });

  it('bootloader mode: undefined without <bootloader>, none when asked', () => {
    expect(planDisks(read('test/fixtures/systemimager-layouts/06-systeminstaller-generated-2018-no-bootloader.xml'), [disk('/dev/vda', 8)]).bootloader.mode).toBeUndefined();
    const l = parseLayout('<config><disk dev="/dev/sda"><part num="1" size="*"/></disk><bootloader flavor="none"/><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>');
    expect(planDisks(l, [disk('/dev/vda', 1)]).bootloader.mode).toBe('none');
  });

  it('sizes RAID arrays and volume groups exactly', () => {
    const p = planDisks(read('layouts/raid1-lvm.xml'), [disk('/dev/vda', 4), disk('/dev/vdb', 4)]);
    const md1 = p.raids.find((r) => r.device === '/dev/md1')!;
    const member = p.disks[0].partitions.find((x) => x.number === 3)!;
    expect(md1.size).toBe(member.size - MiB);
    expect(md1.componentKiB * 1024).toBe(md1.size);
    const vg = p.volumeGroups[0];
    expect(vg.extents).toBe(Math.floor((md1.size - MiB) / (4 * MiB)));
    expect(vg.lvs.reduce((a, l) => a + l.extents, 0)).toBe(vg.extents);
    expect(p.commands.find((c) => c[0] === 'mdadm' && c[2] === '/dev/md1')).toContain(`--size=${md1.componentKiB}K`);
    expect(p.mdadmConf).toMatch(/^ARRAY \/dev\/md0 metadata=1.2 UUID=[0-9a-f]{8}(:[0-9a-f]{8}){3}\nARRAY \/dev\/md1/);
  });
});

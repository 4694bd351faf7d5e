import { describe, expect, it } from 'vitest';
import { lvDevice, partitionDevice, splitLvDevice, splitPartitionDevice } from '../../layout/names.js';

describe('partition device names', () => {
  const table: [string, number, string][] = [
    ['/dev/sda', 1, '/dev/sda1'],
    ['/dev/sdaa', 12, '/dev/sdaa12'],
    ['/dev/vda', 1, '/dev/vda1'],
    ['/dev/xvda', 1, '/dev/xvda1'],
    ['/dev/hda', 5, '/dev/hda5'],
    ['/dev/nvme0n1', 1, '/dev/nvme0n1p1'],
    ['/dev/nvme10n2', 15, '/dev/nvme10n2p15'],
    ['/dev/mmcblk0', 1, '/dev/mmcblk0p1'],
    ['/dev/loop0', 1, '/dev/loop0p1'],
    ['/dev/loop12', 3, '/dev/loop12p3'],
    ['/dev/md0', 1, '/dev/md0p1'],
    ['/dev/md/root', 2, '/dev/md/root2'],
    ['/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001', 2, '/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part2'],
  ];
  it.each(table)('%s partition %i is %s', (disk, n, want) => {
    expect(partitionDevice(disk, n)).toBe(want);
    expect(splitPartitionDevice(want, [disk, '/dev/sd', '/dev/nvme0'])).toEqual({ disk, num: n });
  });

  it('does not confuse disks whose names prefix each other', () => {
    expect(splitPartitionDevice('/dev/sdaa1', ['/dev/sda', '/dev/sdaa'])).toEqual({ disk: '/dev/sdaa', num: 1 });
    expect(splitPartitionDevice('/dev/sda1', ['/dev/sda', '/dev/sdaa'])).toEqual({ disk: '/dev/sda', num: 1 });
    expect(splitPartitionDevice('/dev/nvme0n11', ['/dev/nvme0n1'])).toBeUndefined();
    expect(splitPartitionDevice('/dev/sdb1', ['/dev/sda'])).toBeUndefined();
    expect(splitPartitionDevice('/dev/sda', ['/dev/sda'])).toBeUndefined();
  });
});

describe('logical volume names', () => {
  it('doubles dashes for device-mapper', () => {
    expect(lvDevice('vg0', 'root')).toBe('/dev/mapper/vg0-root');
    expect(lvDevice('my-vg', 'my-lv')).toBe('/dev/mapper/my--vg-my--lv');
  });
  it('reads both spellings back', () => {
    expect(splitLvDevice('/dev/vg0/root', ['vg0'])).toEqual({ vg: 'vg0', lv: 'root' });
    expect(splitLvDevice('/dev/mapper/my--vg-my--lv', ['my-vg'])).toEqual({ vg: 'my-vg', lv: 'my-lv' });
    expect(splitLvDevice('/dev/mapper/vg0-root', ['vg0'])).toEqual({ vg: 'vg0', lv: 'root' });
    expect(splitLvDevice('/dev/other/root', ['vg0'])).toBeUndefined();
    expect(splitLvDevice('/dev/mapper/cryptroot', ['vg0'])).toBeUndefined();
  });
});

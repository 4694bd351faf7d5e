import { describe, expect, it } from 'vitest';
import { refuseDisksInUse } from '../../installer/disk/in-use.js';
import type { BlockDevice } from '../../layout/types.js';

const disk = (over: Partial<BlockDevice> = {}): BlockDevice => ({
  path: '/dev/sdb', name: 'sdb', type: 'disk', size: 1 << 30, sectorSize: 512, physicalSectorSize: 512,
  removable: false, readOnly: false, mountpoints: [], holders: [], partitions: [], ...over,
});
const code = (f: () => void): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};
const none = { mounts: '', swaps: 'Filename Type Size Used Priority\n' };

describe('the one disk in-use check', () => {
  it('lets a free disk through', () => {
    expect(code(() => refuseDisksInUse([disk()], none))).toBeUndefined();
  });
  it('refuses a read-only disk', () => {
    expect(code(() => refuseDisksInUse([disk({ readOnly: true })], none))).toBe('FERRY_E_DISK_IN_USE');
  });
  it('refuses a disk lsblk sees mounted', () => {
    expect(code(() => refuseDisksInUse([disk({ mountpoints: ['/mnt'] })], none))).toBe('FERRY_E_DISK_MOUNTED');
  });
  it('refuses a disk the running system mounts or swaps on (/proc), which lsblk may miss', () => {
    expect(code(() => refuseDisksInUse([disk()], { mounts: '/dev/sdb1 / ext4 rw 0 0\n', swaps: none.swaps }))).toBe('FERRY_E_DISK_IN_USE');
    expect(code(() => refuseDisksInUse([disk()], { mounts: '', swaps: `${none.swaps}/dev/sdb2 partition 1024 0 -2\n` }))).toBe('FERRY_E_DISK_IN_USE');
    expect(code(() => refuseDisksInUse([disk()], { mounts: '/dev/sdbb1 / ext4 rw 0 0\n', swaps: none.swaps }))).toBeUndefined();
  });
});

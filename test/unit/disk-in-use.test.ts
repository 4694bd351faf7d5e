import { describe, expect, it } from 'vitest';
import { probeDisks, refuseDisksInUse, type SystemView } from '../../installer/disk/in-use.js';
import { armChecks, diskUseProblems, type DiskProbe } from '../../layout/preflight.js';
import type { BlockDevice } from '../../layout/types.js';

const disk = (over: Partial<BlockDevice> = {}): BlockDevice => ({
  path: '/dev/sdb', name: 'sdb', type: 'disk', size: 1 << 30, sectorSize: 512, physicalSectorSize: 512,
  removable: false, readOnly: false, mountpoints: [], holders: [], partitions: ['/dev/sdb1', '/dev/sdb2'], ...over,
});
const code = (f: () => void): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};
const SWAPS = 'Filename Type Size Used Priority\n';
/** A machine with nothing in use, with the parts a test changes. */
function view(over: Partial<SystemView> & { busy?: string[]; holdersOf?: Record<string, string[]>; numbers?: Record<string, string> } = {}): SystemView & { opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    mounts: () => '',
    swaps: () => SWAPS,
    loops: () => [],
    holders: (n) => over.holdersOf?.[n] ?? [],
    tryExclusive: (d) => {
      opened.push(d);
      return over.busy?.includes(d) ? 'EBUSY' : undefined;
    },
    rootDevices: () => [],
    devNumber: (p) => over.numbers?.[p],
    ...over,
  };
}
const codes = (found: BlockDevice[], sys: SystemView) => {
  const plan = { disks: found.map((d) => ({ path: d.path, layoutDev: '/dev/sda', size: d.size, sectorSize: d.sectorSize })) };
  return diskUseProblems(plan, probeDisks(found, sys)).map((p) => p.code);
};

describe('the one disk in-use check', () => {
  it('lets a free disk through, after opening the disk and each partition with O_EXCL', () => {
    const v = view();
    expect(code(() => refuseDisksInUse([disk()], v))).toBeUndefined();
    expect(v.opened).toEqual(['/dev/sdb', '/dev/sdb1', '/dev/sdb2']);
  });
  it('refuses a read-only disk', () => {
    expect(code(() => refuseDisksInUse([disk({ readOnly: true })], view()))).toBe('FERRY_E_DISK_IN_USE');
  });
  it('refuses a disk lsblk sees mounted', () => {
    expect(code(() => refuseDisksInUse([disk({ mountpoints: ['/mnt'] })], view()))).toBe('FERRY_E_DISK_MOUNTED');
  });
  it('refuses a disk the running system mounts or swaps on (/proc), which lsblk may miss', () => {
    expect(code(() => refuseDisksInUse([disk()], view({ mounts: () => '/dev/sdb1 /srv/my\\040data ext4 rw 0 0\n' })))).toBe('FERRY_E_DISK_MOUNTED');
    expect(code(() => refuseDisksInUse([disk()], view({ swaps: () => `${SWAPS}/dev/sdb2 partition 1024 0 -2\n` })))).toBe('FERRY_E_DISK_IN_USE');
    expect(code(() => refuseDisksInUse([disk()], view({ mounts: () => '/dev/sdbb1 / ext4 rw 0 0\n' })))).toBeUndefined();
    const p = probeDisks([disk()], view({ mounts: () => '/dev/sdb1 /srv/my\\040data ext4 rw 0 0\n' }))[0];
    expect(p.mounts).toEqual([{ device: '/dev/sdb1', mountpoint: '/srv/my data' }]);
  });
  it('recognises a mount through another name of the same device (by device number)', () => {
    const v = view({ mounts: () => '/dev/disk-alias /mnt ext4 rw 0 0\n', numbers: { '/dev/sdb1': '8:17', '/dev/disk-alias': '8:17' } });
    expect(codes([disk()], v)).toEqual(['FERRY_E_DISK_MOUNTED']);
  });
  it('refuses a disk whose partition backs a loop device (/sys/block/*/loop/backing_file)', () => {
    expect(codes([disk()], view({ loops: () => [{ loop: '/dev/loop5', backing: '/dev/sdb1' }] }))).toEqual(['FERRY_E_DISK_BACKS_LOOP']);
    // The loop device's own backing file is not a use of the loop device.
    const loop = disk({ path: '/dev/loop3', name: 'loop3', partitions: [] });
    expect(codes([loop], view({ loops: () => [{ loop: '/dev/loop3', backing: '/var/tmp/disk.img' }] }))).toEqual([]);
    // A backing file named otherwise but the same block device.
    expect(codes([disk()], view({ loops: () => [{ loop: '/dev/loop5', backing: '/dev/block/8:18' }], numbers: { '/dev/sdb2': '8:18', '/dev/block/8:18': '8:18' } }))).toEqual(['FERRY_E_DISK_BACKS_LOOP']);
  });
  it('refuses a disk another program holds open with O_EXCL', () => {
    expect(codes([disk()], view({ busy: ['/dev/sdb'] }))).toEqual(['FERRY_E_DISK_OPEN_EXCLUSIVE']);
    expect(codes([disk()], view({ busy: ['/dev/sdb2'] }))).toEqual(['FERRY_E_DISK_OPEN_EXCLUSIVE']);
  });
  it('refuses a busy array or volume built on it; an idle one is left for the apply to release', () => {
    const holdersOf = { sdb1: ['md0'], sdb2: ['md0'], md0: ['dm-0'] };
    const idle = view({ holdersOf });
    expect(codes([disk()], idle)).toEqual([]);
    // The array's members are claimed by md: only the topmost holder is opened.
    expect(idle.opened).toEqual(['/dev/dm-0']);
    expect(codes([disk()], view({ holdersOf, busy: ['/dev/dm-0'] }))).toEqual(['FERRY_E_DISK_IN_USE']);
  });
  it('refuses the disk holding the running root, whatever its mounts say', () => {
    expect(codes([disk()], view({ rootDevices: () => ['dm-0', 'sdb2', 'sdb'] }))).toEqual(['FERRY_E_DISK_HOLDS_ROOT']);
    expect(codes([disk()], view({ rootDevices: () => ['sda1', 'sda'] }))).toEqual([]);
  });
  it('reports every problem at once, the first one\'s code on the error', () => {
    const v = view({ mounts: () => '/dev/sdb1 /mnt ext4 rw 0 0\n', swaps: () => `${SWAPS}/dev/sdb2 partition 1 0 -2\n`, loops: () => [{ loop: '/dev/loop9', backing: '/dev/sdb2' }] });
    let err: { code?: string; problems?: { code: string }[] } = {};
    try {
      refuseDisksInUse([disk()], v);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('FERRY_E_DISK_MOUNTED');
    expect(err.problems!.map((p) => p.code)).toEqual(['FERRY_E_DISK_MOUNTED', 'FERRY_E_DISK_IN_USE', 'FERRY_E_DISK_BACKS_LOOP']);
  });
});

describe('the pure check before the first write', () => {
  const plan = { disks: [{ path: '/dev/vda', layoutDev: '/dev/sda', size: 8 * 2 ** 30, sectorSize: 512 }] };
  const free: DiskProbe = { path: '/dev/vda', present: true, size: 8 * 2 ** 30, sectorSize: 512, mounts: [], swaps: [], holders: [], loops: [], exclusive: [] };
  it('a missing disk and a disk of another size than planned are refused', () => {
    expect(diskUseProblems(plan, [])).toMatchObject([{ code: 'FERRY_E_DISK_NOT_FOUND', path: '/dev/vda' }]);
    expect(diskUseProblems(plan, [{ ...free, size: 4 * 2 ** 30 }])).toMatchObject([{ code: 'FERRY_E_DISK_CHANGED' }]);
    expect(diskUseProblems(plan, [free])).toEqual([]);
  });
  it('every problem has a hint', () => {
    const all: DiskProbe = { ...free, readOnly: true, root: '/dev/vda1', mounts: [{ device: '/dev/vda1', mountpoint: '/' }], swaps: ['/dev/vda2'], holders: [{ device: '/dev/md0', busy: 'it is open' }], loops: [{ loop: '/dev/loop0', backing: '/dev/vda3' }], exclusive: [{ device: '/dev/vda4', error: 'EBUSY' }] };
    const p = diskUseProblems(plan, [all]);
    expect(p.map((x) => x.code)).toEqual(['FERRY_E_DISK_IN_USE', 'FERRY_E_DISK_HOLDS_ROOT', 'FERRY_E_DISK_MOUNTED', 'FERRY_E_DISK_IN_USE', 'FERRY_E_DISK_IN_USE', 'FERRY_E_DISK_BACKS_LOOP', 'FERRY_E_DISK_OPEN_EXCLUSIVE']);
    expect(p.every((x) => x.hint && x.severity === 'error')).toBe(true);
  });
});

describe('arm-time checks (the server runs them with what it knows)', () => {
  const xml = '<config><disk dev="/dev/sda" label_type="gpt"><part num="1" size="*"/></disk><fsinfo real_dev="/dev/sda1" mp="/" fs="ext4"/></config>';
  it('without the node\'s hardware: layout problems only, and a warning saying so', () => {
    const r = armChecks({ layoutXml: xml });
    expect(r.problems.map((p) => [p.severity, p.code])).toEqual([['warning', 'FERRY_W_ARM_NO_HARDWARE']]);
  });
  it('refuses a layout without a root file system and a disk map naming no layout disk', () => {
    const r = armChecks({ layoutXml: xml.replace('mp="/"', 'mp="/srv"'), diskMap: { '/dev/sdz': '/dev/vda' } });
    expect(r.problems.filter((p) => p.severity === 'error').map((p) => p.code)).toEqual(['FERRY_E_LAYOUT_NO_ROOT', 'FERRY_E_DISK_MAP']);
  });
  it('refuses hostile layout values at arm time, with their place', () => {
    const r = armChecks({ layoutXml: xml.replace('fs="ext4"', 'fs="btrfs" mkfs_opts="-d single /dev/vdb"') });
    expect(r.problems.filter((p) => p.severity === 'error')).toMatchObject([{ code: 'FERRY_E_LAYOUT_OPTIONS', path: '/config/fsinfo[1]/@mkfs_opts' }]);
  });
  it('refuses node inputs that would land in files badly, before the node boots', () => {
    const codes = (inputs: Record<string, string>, nodeName = 'web1') => armChecks({ layoutXml: xml, inputs, nodeName }).problems.filter((p) => p.severity === 'error').map((p) => p.path);
    expect(codes({ 'network.interface': 'eth0\n    up touch /pwned' })).toEqual(['inputs.network.interface']);
    expect(codes({ 'network.interface': 'x'.repeat(16) })).toEqual(['inputs.network.interface']);
    expect(codes({ 'network.mode': 'static', 'network.address': '10.0.0.1', 'network.gateway': 'gw' })).toEqual(['inputs.network.address', 'inputs.network.gateway']);
    expect(codes({ hostname: 'bad host\n127.0.0.1 evil' })).toEqual(['inputs.hostname']);
    expect(codes({}, 'node_with_underscore')).toEqual(['inputs.hostname']);
    expect(codes({ hostname: 'web-1.example.org', 'network.interface': 'enp0s31f6', 'network.mode': 'static', 'network.address': '192.0.2.10/24', 'network.gateway': '192.0.2.1', 'network.dns': '192.0.2.53' })).toEqual([]);
    // Only own values count: an input named like an Object member is an input, not a method.
    expect(codes({ constructor: 'x' } as Record<string, string>)).toEqual([]);
  });
  it('with the node\'s disks: plans onto them and checks them with the same function as the node', () => {
    const hw = [{ path: '/dev/vda', size: 8 * 2 ** 30, sectorSize: 512 }];
    expect(armChecks({ layoutXml: xml, hardware: hw }).problems).toEqual([]);
    expect(armChecks({ layoutXml: xml, hardware: [{ path: '/dev/vda', size: 512 * 1024, sectorSize: 512 }] }).problems.map((p) => p.code)).toContain('FERRY_E_LAYOUT_TOO_BIG');
    const probes: DiskProbe[] = [{ path: '/dev/vda', present: true, size: 8 * 2 ** 30, sectorSize: 512, mounts: [{ device: '/dev/vda1', mountpoint: '/' }], swaps: [], holders: [], loops: [], exclusive: [] }];
    expect(armChecks({ layoutXml: xml, hardware: hw, probes }).problems.map((p) => p.code)).toEqual(['FERRY_E_DISK_MOUNTED']);
  });
});

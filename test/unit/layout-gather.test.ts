/**
 * layout/gather.ts, the reader shared by `ferry layout capture` and `ferry image capture`: fed
 * recorded tool outputs through a fake CaptureSource (no machine), it must give the same layout
 * whether the partition table comes from parted or, on a machine without parted, from lsblk.
 */
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../common/errors.js';
import type { RunOptions, RunResult } from '../../common/run.js';
import { captureToXml } from '../../layout/capture.js';
import { fstabEntryOf, gatherCapture, parseFstab, tableFromLsblk, type CaptureSource } from '../../layout/gather.js';
import { parseLayout } from '../../layout/parse.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// A 4 GiB GPT disk: an ESP, a root and a swap partition filling the disk; root mounted at /.
const lsblk = JSON.stringify({
  blockdevices: [
    { name: 'vda', path: '/dev/vda', type: 'disk', size: 4 * GiB, 'log-sec': 512, ro: false, pttype: 'gpt', mountpoints: [null], children: [
      { name: 'vda1', path: '/dev/vda1', type: 'part', size: 256 * MiB, start: 2048, parttype: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b', partlabel: 'esp', mountpoints: [null] },
      { name: 'vda2', path: '/dev/vda2', type: 'part', size: 3 * GiB, start: 2048 + 256 * 2048, parttype: '0fc63daf-8483-4772-8e79-3d69d8477de4', partlabel: 'root', mountpoints: ['/'] },
      // Up to the last whole MiB before GPT's backup header.
      { name: 'vda3', path: '/dev/vda3', type: 'part', size: 4 * GiB - 3 * GiB - 257 * MiB - MiB, start: 2048 + (256 + 3072) * 2048, parttype: '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f', partlabel: 'swap', mountpoints: ['[SWAP]'] },
    ] },
    { name: 'sr0', path: '/dev/sr0', type: 'rom', size: 1024, ro: true, mountpoints: [null] },
  ],
});
const parted = `BYT;
/dev/vda:${4 * GiB}B:virtblk:512:512:gpt:Virtio Block Device:;
1:1048576B:${MiB + 256 * MiB - 1}B:${256 * MiB}B:fat32:esp:boot, esp;
2:${257 * MiB}B:${257 * MiB + 3 * GiB - 1}B:${3 * GiB}B:ext4:root:;
3:${257 * MiB + 3 * GiB}B:${4 * GiB - MiB - 1}B:${4 * GiB - 3 * GiB - 258 * MiB}B:linux-swap(v1):swap:swap;
`;
const blkid: Record<string, string> = {
  '/dev/vda': 'DEVNAME=/dev/vda\nPTUUID=1111\nPTTYPE=gpt\n',
  '/dev/vda1': 'DEVNAME=/dev/vda1\nUUID=ABCD-1234\nVERSION=FAT32\nTYPE=vfat\nPART_ENTRY_UUID=aaaa-1\n',
  '/dev/vda2': 'DEVNAME=/dev/vda2\nUUID=0a0b0c0d-0000-4000-8000-000000000002\nTYPE=ext4\nPART_ENTRY_UUID=aaaa-2\n',
  '/dev/vda3': 'DEVNAME=/dev/vda3\nUUID=0a0b0c0d-0000-4000-8000-000000000003\nTYPE=swap\nPART_ENTRY_UUID=aaaa-3\n',
};
const fstab = `# /etc/fstab
UUID=0a0b0c0d-0000-4000-8000-000000000002 / ext4 errors=remount-ro 0 1
PARTUUID=aaaa-1 /boot/efi vfat umask=0077,shortname=winnt 0 2
/dev/vda3 none swap sw 0 0
`;

function fake(o: { parted: boolean; files?: Record<string, string> }): CaptureSource & { calls: string[] } {
  const calls: string[] = [];
  const ok = (argv: string[], stdout: string, code = 0): RunResult => ({ argv, code, stdout, stderr: '', durationMs: 0 });
  const missing = (argv: string[]) => new FerryError('FERRY_E_TOOL_MISSING', `the program "${argv[0]}" was not found`);
  return {
    calls,
    async run(argv: string[], _o?: RunOptions) {
      calls.push(argv.join(' '));
      switch (argv[0]) {
        case 'lsblk': return ok(argv, lsblk);
        case 'parted': if (!o.parted) throw missing(argv); return ok(argv, parted);
        case 'blkid': return blkid[argv[argv.length - 1]] ? ok(argv, blkid[argv[argv.length - 1]]) : ok(argv, '', 2);
        default: throw missing(argv);
      }
    },
    async readFile(path: string) {
      return (o.files ?? { '/etc/fstab': fstab })[path];
    },
  };
}

describe('layout/gather.ts', () => {
  it('reads a machine through its source: parted\'s table, blkid, fstab options and mount points', async () => {
    const src = fake({ parted: true });
    const input = await gatherCapture(src);
    expect(input.disks).toEqual([{ path: '/dev/vda', size: 4 * GiB, sectorSize: 512, label: 'gpt', partitions: [
      { number: 1, start: MiB, size: 256 * MiB, name: 'esp', flags: ['boot', 'esp'] },
      { number: 2, start: 257 * MiB, size: 3 * GiB, name: 'root', flags: [] },
      { number: 3, start: 257 * MiB + 3 * GiB, size: 4 * GiB - 3 * GiB - 258 * MiB, name: 'swap', flags: ['swap'] },
    ] }]);
    // The ESP is not mounted now: fstab (by PARTUUID) says where it goes and with which options.
    expect(input.filesystems.find((f) => f.device === '/dev/vda1')).toMatchObject({ type: 'vfat', mountpoint: '/boot/efi', options: 'umask=0077,shortname=winnt' });
    expect(input.filesystems.find((f) => f.device === '/dev/vda2')).toMatchObject({ mountpoint: '/', options: 'errors=remount-ro' });
    // The read-only CD drive is not a disk to capture; no LVM tools: no groups, no error.
    expect(src.calls.filter((c) => c.startsWith('parted'))).toEqual(['parted -s -m /dev/vda unit B print']);
    expect(input.volumeGroups).toEqual([]);
    const xml = captureToXml(input);
    expect(xml).toContain('mp="/boot/efi" fs="vfat" mkfs_opts="-F 32" options="umask=0077,shortname=winnt"');
    // It is a layout Ferry takes (parseLayout throws on any error).
    expect(parseLayout(xml).disks).toHaveLength(1);
  });

  it('without parted on the machine, lsblk\'s own table gives the same layout (flags from the partition types)', async () => {
    const withParted = captureToXml(await gatherCapture(fake({ parted: true })));
    const src = fake({ parted: false });
    const without = captureToXml(await gatherCapture(src));
    // parted's "boot" on a GPT ESP is the same flag as "esp"; the layout writes what lsblk's type says.
    expect(without).toBe(withParted.replace('flags="boot,esp"', 'flags="esp"'));
    expect(without).toContain('size="*"');
    // parted is tried once, not once per disk.
    expect(src.calls.filter((c) => c.startsWith('parted'))).toHaveLength(1);
  });

  it('a --root tree: its fstab, mount points relative to it', async () => {
    const input = await gatherCapture(fake({ parted: false, files: { '/mnt/t/etc/fstab': fstab } }), { root: '/mnt/t' });
    const xml = captureToXml(input);
    expect(xml).toContain('mp="/boot/efi"');
    expect(xml).toContain('mp="/" fs="ext4"');
  });

  it('msdos from lsblk: the boot flag, and an extended partition stretched over its logical ones', () => {
    const t = tableFromLsblk({ name: 'sda', path: '/dev/sda', type: 'disk', pttype: 'dos', children: [
      { name: 'sda1', path: '/dev/sda1', type: 'part', start: 2048, size: 512 * MiB, parttype: '0x83', partflags: '0x80' },
      { name: 'sda2', path: '/dev/sda2', type: 'part', start: 2048 + 1024 * 512, size: 1024, parttype: '0x5' },
      { name: 'sda5', path: '/dev/sda5', type: 'part', start: 2048 + 1024 * 512 + 2048, size: 100 * MiB, parttype: '0x82' },
      { name: 'sda6', path: '/dev/sda6', type: 'part', start: 2048 + 1024 * 512 + 2048 + 102 * 2048, size: 200 * MiB, parttype: '0xfd' },
    ] });
    expect(t.label).toBe('msdos');
    expect(t.partitions.map((p) => [p.number, p.flags])).toEqual([[1, ['boot']], [2, []], [5, ['swap']], [6, ['raid']]]);
    const ext = t.partitions[1];
    expect(ext.start + ext.size).toBe(t.partitions[3].start + t.partitions[3].size);
    expect(t.partitions[0].name).toBeUndefined();
  });

  it('without udev (lsblk knows no types, labels or table): blkid -p\'s PART_ENTRY fields give the table', () => {
    const probe: Record<string, Record<string, string>> = {
      '/dev/vdb': { PTTYPE: 'gpt' },
      '/dev/vdb1': { PART_ENTRY_NUMBER: '1', PART_ENTRY_OFFSET: '2048', PART_ENTRY_SIZE: '65536', PART_ENTRY_TYPE: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', PART_ENTRY_NAME: 'esp' },
      '/dev/vdb2': { PART_ENTRY_NUMBER: '2', PART_ENTRY_OFFSET: '67584', PART_ENTRY_SIZE: '4096', PART_ENTRY_TYPE: 'a19d880f-05fc-4d3b-a006-743f0f84911e' },
    };
    const t = tableFromLsblk({ name: 'vdb', path: '/dev/vdb', type: 'disk', pttype: null, children: [
      { name: 'vdb1', path: '/dev/vdb1', type: 'part', size: 32 * MiB, start: null, parttype: null },
      { name: 'vdb2', path: '/dev/vdb2', type: 'part', size: 2 * MiB, start: null, parttype: null },
    ] }, (p) => probe[p] ?? {});
    expect(t).toEqual({ label: 'gpt', partitions: [
      { number: 1, start: MiB, size: 32 * MiB, name: 'esp', flags: ['esp'] },
      { number: 2, start: 33 * MiB, size: 2 * MiB, name: undefined, flags: ['raid'] },
    ] });
  });

  it('fstab: escapes, comments, every way to name a file system', () => {
    const e = parseFstab('# c\n\nLABEL="my\\040disk" /srv/my\\040data ext4 noatime 0 2\n/dev/md0 /var xfs defaults 0 0\n');
    expect(e).toEqual([
      { spec: 'LABEL="my disk"', file: '/srv/my data', type: 'ext4', options: 'noatime' },
      { spec: '/dev/md0', file: '/var', type: 'xfs', options: 'defaults' },
    ]);
    expect(fstabEntryOf(e, { device: '/dev/sdb1', type: 'ext4', label: 'my disk' })?.file).toBe('/srv/my data');
    expect(fstabEntryOf(e, { device: '/dev/md0', type: 'xfs' })?.file).toBe('/var');
    expect(fstabEntryOf(e, { device: '/dev/sdc1', type: 'xfs', label: 'other' })).toBeUndefined();
  });
});

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageClosure, parseAptDepends, parseAptShow } from '../../../initrd/apt.js';
import { mergedUsr, resolveLink } from '../../../initrd/plan.js';
import { newcHeader, sortEntries, writeCpio, type CpioEntry } from '../../../initrd/cpio.js';
import { readElf } from '../../../initrd/elf.js';
import { parseModuleIndex, selectModules } from '../../../initrd/modules.js';
import { parseDriverSet, parsePackageList } from '../../../initrd/spec.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const src = (f: string) => readFileSync(join(ROOT, 'initrd', f), 'utf8');

describe('package list', () => {
  it('reads initrd/packages.txt', () => {
    const s = parsePackageList(src('packages.txt'));
    expect(s.kernel).toBe('linux-image-amd64');
    const names = s.packages.map((p) => p.name);
    for (const n of ['busybox-static', 'parted', 'e2fsprogs', 'dosfstools', 'xfsprogs', 'btrfs-progs', 'lvm2', 'mdadm', 'util-linux', 'mount', 'fdisk', 'zstd', 'kmod', 'tar', 'gdisk']) {
      expect(names).toContain(n);
    }
    const ul = s.packages.find((p) => p.name === 'util-linux')!;
    for (const t of ['lsblk', 'blkid', 'wipefs', 'partx', 'mkswap']) expect(ul.programs).toContain(t);
    expect(s.packages.find((p) => p.name === 'mount')!.programs).toEqual(expect.arrayContaining(['mount', 'losetup']));
    expect(s.packages.find((p) => p.name === 'fdisk')!.programs).toContain('sfdisk');
    expect(s.packages.find((p) => p.name === 'e2fsprogs')).toMatchObject({ programs: ['*'], files: ['/etc/mke2fs.conf'] });
    expect(s.packages.find((p) => p.name === 'libstdc++6')).toMatchObject({ librariesOnly: true, programs: [] });
    expect(s.exclude).toContain('debconf');
  });

  it('reports every problem with its line', () => {
    try {
      parsePackageList('parted\nparted\nBad_Name\n!x y\nfoo :libraries bar\nbaz ../etc\nok :libraries /etc/x\n');
      expect.unreachable();
    } catch (e: any) {
      expect(e.code).toBe('FERRY_E_INITRD_SPEC');
      expect(e.problems.map((p: any) => p.line)).toEqual([2, 3, 4, 5, 6, undefined]);
      expect(e.problems.at(-1).message).toMatch(/no "kernel PACKAGE"/);
    }
  });
});

describe('driver sets', () => {
  const load = (n: string) => {
    try {
      return src(`drivers/${n}.txt`);
    } catch {
      return undefined;
    }
  };
  it('generic includes virtual and adds the driver trees', () => {
    const v = parseDriverSet('virtual', load);
    const g = parseDriverSet('generic', load);
    for (const m of ['virtio_blk', 'virtio_net', 'e1000', 'ahci', 'nvme', 'md_mod', 'raid1', 'dm_mod', 'vfat', 'ext4', 'xfs', 'btrfs', 'crc32c_generic', 'nls_cp437']) {
      expect(v.modules).toContain(m);
    }
    expect(v.dirs).toEqual([]);
    expect(g.modules).toEqual(v.modules);
    expect(g.dirs).toEqual(expect.arrayContaining(['kernel/drivers/ata/', 'kernel/drivers/net/ethernet/', 'kernel/drivers/scsi/', 'kernel/drivers/nvme/']));
  });
  it('refuses unknown sets, cycles and bad lines', () => {
    expect(() => parseDriverSet('nope', () => undefined)).toThrow(/no driver set "nope"/);
    const sets: Record<string, string> = { a: '@b\n', b: '@a\n', c: 'ok\nkernel/../x/\nwhat ever\n' };
    expect(() => parseDriverSet('a', (n) => sets[n])).toThrow(/includes itself/);
    try {
      parseDriverSet('c', (n) => sets[n]);
      expect.unreachable();
    } catch (e: any) {
      expect(e.problems.map((p: any) => p.line)).toEqual([2, 3]);
    }
  });
});

describe('module closure', () => {
  const idx = parseModuleIndex({
    dep: [
      'kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko',
      'kernel/lib/crc16.ko:',
      'kernel/fs/mbcache.ko:',
      'kernel/fs/jbd2/jbd2.ko:',
      'kernel/crypto/crc32c_generic.ko:',
      'kernel/arch/x86/crypto/crc32c-intel.ko:',
      'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio.ko:',
      'kernel/drivers/net/ethernet/intel/e1000/e1000.ko:',
      'kernel/drivers/net/ethernet/realtek/r8169.ko: kernel/drivers/net/phy/realtek.ko',
      'kernel/drivers/net/phy/realtek.ko:',
    ].join('\n'),
    softdep: 'softdep ext4 pre: crc32c\n',
    alias: 'alias crc32c crc32c_generic\nalias crc32c crc32c_intel\nalias pci:v00008086d* e1000\n',
    builtin: 'kernel/drivers/tty/serial/8250/8250.ko\n',
  });
  it('follows dependencies, soft dependencies through aliases, and directories', () => {
    const s = selectModules(idx, { name: 't', modules: ['ext4', 'virtio_blk', '8250'], dirs: ['kernel/drivers/net/ethernet/'] });
    expect(s.paths).toEqual([
      'kernel/arch/x86/crypto/crc32c-intel.ko',
      'kernel/crypto/crc32c_generic.ko',
      'kernel/drivers/block/virtio_blk.ko',
      'kernel/drivers/net/ethernet/intel/e1000/e1000.ko',
      'kernel/drivers/net/ethernet/realtek/r8169.ko',
      'kernel/drivers/net/phy/realtek.ko',
      'kernel/drivers/virtio/virtio.ko',
      'kernel/fs/ext4/ext4.ko',
      'kernel/fs/jbd2/jbd2.ko',
      'kernel/fs/mbcache.ko',
      'kernel/lib/crc16.ko',
    ]);
    expect(s.builtin).toEqual(['8250']);
  });
  it('refuses a module the kernel does not have', () => {
    expect(() => selectModules(idx, { name: 't', modules: ['ext5'], dirs: ['kernel/nothing/'] })).toThrow(/2 problem/);
  });
});

describe('ELF dependencies', () => {
  it('reads the interpreter and DT_NEEDED of a real executable', () => {
    const fd = openSync(process.execPath, 'r');
    const info = readElf((o, n) => {
      const b = Buffer.alloc(n);
      return b.subarray(0, readSync(fd, b, 0, n, o));
    });
    closeSync(fd);
    expect(info?.interpreter).toMatch(/ld-linux-x86-64\.so\.2$/);
    expect(info?.needed).toContain('libc.so.6');
  });
  it('says undefined for what is not ELF', () => {
    const b = Buffer.from('#!/bin/sh\necho hi\n'.padEnd(200));
    expect(readElf((o, n) => b.subarray(o, o + n))).toBeUndefined();
  });
});

describe('merged /usr', () => {
  it('maps Debian paths and symlink targets', () => {
    expect(mergedUsr('bin/mount')).toBe('usr/bin/mount');
    expect(mergedUsr('/sbin/mkfs.ext4')).toBe('usr/sbin/mkfs.ext4');
    expect(mergedUsr('lib64/ld-linux-x86-64.so.2')).toBe('usr/lib64/ld-linux-x86-64.so.2');
    expect(mergedUsr('usr/bin/zstd')).toBe('usr/bin/zstd');
    expect(mergedUsr('etc/mke2fs.conf')).toBe('etc/mke2fs.conf');
    expect(resolveLink('usr/sbin/modprobe', '/bin/kmod')).toBe('usr/bin/kmod');
    expect(resolveLink('usr/sbin/mkfs.ext4', 'mke2fs')).toBe('usr/sbin/mke2fs');
    expect(resolveLink('usr/lib/x86_64-linux-gnu/libz.so.1', 'libz.so.1.2.13')).toBe('usr/lib/x86_64-linux-gnu/libz.so.1.2.13');
    expect(resolveLink('usr/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2')).toBe('usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  });
});

describe('cpio newc archive', () => {
  it('writes the header the kernel expects', () => {
    const h = newcHeader({ ino: 1, mode: 0o100755, nlink: 1, mtime: 0, size: 5, name: 'init' });
    expect(h.toString('latin1')).toBe('070701' + '00000001' + '000081ed' + '00000000'.repeat(2) + '00000001' + '00000000' + '00000005' + '00000000'.repeat(4) + '00000005' + '00000000' + 'init\0\0');
    expect(h.length % 4).toBe(0);
  });
  it('puts parents first, in byte order, whatever the input order', () => {
    const es: CpioEntry[] = [
      { path: 'usr/bin/sh', kind: 'symlink', mode: 0o777, target: 'busybox' },
      { path: 'usr-x', kind: 'dir', mode: 0o755 },
      { path: 'usr', kind: 'dir', mode: 0o755 },
      { path: 'usr/bin', kind: 'dir', mode: 0o755 },
    ];
    expect(sortEntries(es).map((e) => e.path)).toEqual(['usr', 'usr-x', 'usr/bin', 'usr/bin/sh']);
    expect(() => sortEntries([{ path: '/abs', kind: 'dir', mode: 0 }])).toThrow(/bad archive path/);
    expect(() => sortEntries([{ path: 'a/../b', kind: 'dir', mode: 0 }])).toThrow(/bad archive path/);
  });
  it('gives the same bytes for the same entries in any order', async () => {
    const es: CpioEntry[] = [
      { path: 'init', kind: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\n') },
      { path: 'dev', kind: 'dir', mode: 0o755 },
      { path: 'dev/console', kind: 'char', mode: 0o600, major: 5, minor: 1 },
      { path: 'bin', kind: 'symlink', mode: 0o777, target: 'usr/bin' },
      { path: 'etc/x', kind: 'file', mode: 0o644, source: 'virtual' },
      { path: 'etc', kind: 'dir', mode: 0o755 },
    ];
    const write = async (list: CpioEntry[]) => {
      const chunks: Buffer[] = [];
      const n = await writeCpio(list, { mtime: 1700000000, write: (b) => void chunks.push(b), content: () => Buffer.from('abc') });
      const all = Buffer.concat(chunks);
      expect(all.length).toBe(n);
      return all;
    };
    const a = await write(es);
    const b = await write([...es].reverse());
    expect(a.equals(b)).toBe(true);
    expect(a.length % 4).toBe(0);
    const text = a.toString('latin1');
    expect(text.endsWith('TRAILER!!!\0\0\0\0') || /TRAILER!!!\0+$/.test(text)).toBe(true);
    // dev/console: a character device 5:1 with mode 0600.
    const at = text.indexOf('dev/console\0');
    const head = text.slice(at - 110, at);
    expect(head.slice(14, 22)).toBe('00002180');
    expect(head.slice(78, 94)).toBe('0000000500000001');
  });
});

describe('apt output', () => {
  it('follows Depends and Pre-Depends, first real alternative, skipping excluded groups', () => {
    const d = parseAptDepends(
      [
        'mdadm',
        '  PreDepends: init-system-helpers',
        ' |Depends: debconf',
        '  Depends: <debconf-2.0>',
        '  Depends: libc6',
        '  Depends: libudev1',
        'libudev1',
        '  Depends: libc6',
        'libc6',
        '  Depends: libgcc-s1',
        'libgcc-s1',
        '  Depends: gcc-12-base',
        '  Depends: libc6',
        'gcc-12-base',
        '<debconf-2.0>',
        '  debconf',
        'init-system-helpers',
        '  Depends: perl-base',
      ].join('\n'),
    );
    expect(packageClosure(d, ['mdadm'], ['debconf', 'init-system-helpers'])).toEqual(['gcc-12-base', 'libc6', 'libgcc-s1', 'libudev1', 'mdadm']);
  });
  it('names the .deb as apt-get download does', () => {
    const v = parseAptShow(
      'Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: amd64\nFilename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb\nSize: 928188\nSHA256: ab\n\nPackage: parted\nVersion: 3.5-3\nArchitecture: amd64\nFilename: pool/main/p/parted/parted_3.5-3_amd64.deb\nSize: 1\n',
    );
    expect(v.map((x) => x.deb)).toEqual(['busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb', 'parted_3.5-3_amd64.deb']);
    expect(v[0]).toMatchObject({ version: '1:1.35.0-4+deb12u1+b1', sha256: 'ab', size: 928188 });
  });
});

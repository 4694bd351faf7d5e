/**
 * The archive plan of the boot environment, decided from a small fake package tree given
 * as data (listings, ELF facts, busybox's applets, staged modules, rootfs): compared with
 * test/fixtures/initrd/plan-small.txt (FERRY_UPDATE_GOLDEN=1 rewrites it; review the diff),
 * and the ways a plan fails.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ElfInfo } from '../../../initrd/elf.js';
import { busyboxOf, partSizes, planArchive, renderPlan, type PackageTree, type PlanInputs, type RootfsFile, type TreeFile } from '../../../initrd/plan.js';
import { parsePackageList } from '../../../initrd/spec.js';

const GOLDEN = join(import.meta.dirname, '..', '..', 'fixtures', 'initrd', 'plan-small.txt');
const HOST = '/cache/unpacked';

const FILE = 0o100644;
const EXEC = 0o100755;
const file = (pkg: string, rel: string, mode = EXEC): TreeFile => ({ rel, kind: 'file', mode, host: `${HOST}/${pkg}/${rel}` });
const link = (pkg: string, rel: string, target: string): TreeFile => ({ rel, kind: 'symlink', mode: 0o120777, target, host: `${HOST}/${pkg}/${rel}` });
const tree = (name: string, files: (pkg: string) => TreeFile[]): PackageTree => ({ name, files: files(name) });

const SPEC = parsePackageList(
  [
    'kernel linux-image-amd64',
    'busybox-static',
    'dash',
    'util-linux lsblk blkid',
    'e2fsprogs * /etc/mke2fs.conf',
    'libfoo1 :libraries',
    '!debconf',
    '',
  ].join('\n'),
  'fixture packages.txt',
);

const PACKAGES: PackageTree[] = [
  // Dependencies first: the listed packages still win a path both ship.
  tree('libc6', (p) => [
    file(p, 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    file(p, 'lib/x86_64-linux-gnu/libc.so.6', FILE),
    file(p, 'lib/x86_64-linux-gnu/libm.so.6', FILE),
    link(p, 'lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    file(p, 'usr/share/doc/libc6/copyright', FILE),
  ]),
  tree('libblkid1', (p) => [link(p, 'lib/x86_64-linux-gnu/libblkid.so.1', 'libblkid.so.1.1.0'), file(p, 'lib/x86_64-linux-gnu/libblkid.so.1.1.0', FILE)]),
  tree('busybox-static', (p) => [file(p, 'bin/busybox')]),
  tree('dash', (p) => [file(p, 'bin/dash'), link(p, 'bin/sh', 'dash'), file(p, 'usr/share/man/man1/dash.1.gz', FILE)]),
  tree('util-linux', (p) => [
    file(p, 'bin/lsblk'),
    // Set-id bits are dropped.
    file(p, 'sbin/blkid', 0o104755),
    file(p, 'usr/bin/chrt'),
    // Also in libc6's listing: the listed package's copy wins.
    file(p, 'lib/x86_64-linux-gnu/libm.so.6', FILE),
  ]),
  tree('e2fsprogs', (p) => [file(p, 'sbin/mke2fs'), link(p, 'sbin/mkfs.ext4', 'mke2fs'), file(p, 'etc/mke2fs.conf', FILE), file(p, 'usr/share/doc/e2fsprogs/README', FILE)]),
  tree('libfoo1', (p) => [file(p, 'usr/lib/x86_64-linux-gnu/libfoo.so.1', FILE)]),
];

const LDSO = '/lib64/ld-linux-x86-64.so.2';
const ELF: Record<string, ElfInfo> = {
  [`${HOST}/busybox-static/bin/busybox`]: { needed: [], runpath: [] },
  [`${HOST}/dash/bin/dash`]: { interpreter: LDSO, needed: ['libc.so.6'], runpath: [] },
  [`${HOST}/util-linux/bin/lsblk`]: { interpreter: LDSO, needed: ['libblkid.so.1', 'libc.so.6'], runpath: [] },
  [`${HOST}/util-linux/sbin/blkid`]: { interpreter: LDSO, needed: ['libblkid.so.1', 'libc.so.6'], runpath: [] },
  [`${HOST}/e2fsprogs/sbin/mke2fs`]: { interpreter: LDSO, needed: ['libc.so.6'], runpath: [] },
  [`${HOST}/libblkid1/lib/x86_64-linux-gnu/libblkid.so.1.1.0`]: { needed: ['libc.so.6'], runpath: [] },
  [`${HOST}/libc6/lib/x86_64-linux-gnu/libc.so.6`]: { interpreter: LDSO, needed: [], runpath: [] },
  [`${HOST}/libc6/lib/x86_64-linux-gnu/libm.so.6`]: { needed: ['libc.so.6'], runpath: [] },
  [`${HOST}/libc6/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2`]: { needed: [], runpath: [] },
  '/build/ferry-installer': { interpreter: LDSO, needed: ['libm.so.6', 'libc.so.6'], runpath: [] },
};

const ROOTFS: RootfsFile[] = [
  { rel: 'etc', kind: 'dir', mode: 0o040775 },
  { rel: 'etc/hostname', kind: 'file', mode: 0o100664, data: Buffer.from('ferry\n') },
  // Overrides the package's copy.
  { rel: 'etc/mke2fs.conf', kind: 'file', mode: 0o100644, data: Buffer.from('[defaults]\n') },
  { rel: 'init', kind: 'file', mode: 0o100775, data: Buffer.from('#!/bin/sh\necho init\n') },
  { rel: 'usr', kind: 'dir', mode: 0o040755 },
  { rel: 'usr/lib', kind: 'dir', mode: 0o040755 },
  { rel: 'usr/lib/ferry', kind: 'dir', mode: 0o040755 },
  { rel: 'usr/lib/ferry/udhcpc.script', kind: 'file', mode: 0o100755, data: Buffer.from('#!/bin/sh\n') },
  { rel: 'usr/lib/ferry/lib.sh', kind: 'symlink', mode: 0o120777, target: 'udhcpc.script' },
];

const KVER = '6.1.0-99-amd64';
const STAGED = '/cache/stage';

function inputs(over: Partial<PlanInputs> = {}): PlanInputs {
  return {
    spec: SPEC,
    packages: PACKAGES,
    installer: '/build/ferry-installer',
    elf: (host) => ELF[host],
    busyboxApplets: ['bin/ls', 'bin/sh', 'sbin/blkid', 'sbin/lsblk', 'usr/bin/busybox', 'linuxrc', 'sbin/modprobe', 'usr/bin/wget'],
    modules: {
      kver: KVER,
      files: ['kernel/fs/ext4/ext4.ko', 'kernel/lib/crc16.ko', 'modules.alias', 'modules.dep', 'modules.dep.bin'].map((rel) => ({ rel, host: `${STAGED}/lib/modules/${KVER}/${rel}` })),
    },
    rootfs: ROOTFS,
    drivers: 'virtual',
    versions: [
      { name: 'util-linux', version: '2.38.1-5+deb12u3' },
      { name: 'busybox-static', version: '1:1.35.0-4+b3' },
      { name: 'dash', version: '0.5.12-2' },
      { name: 'e2fsprogs', version: '1.47.0-2' },
      { name: 'libblkid1', version: '2.38.1-5+deb12u3' },
      { name: 'libc6', version: '2.36-9+deb12u10' },
      { name: 'libfoo1', version: '1.0-1' },
      { name: 'linux-image-6.1.0-99-amd64', version: '6.1.99-1' },
    ],
    ...over,
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 12);

describe('initrd archive plan', () => {
  it('plans a small package tree exactly as the golden file says', () => {
    const text = renderPlan(planArchive(inputs()), { hostRoot: '/cache', hash: sha });
    if (process.env.FERRY_UPDATE_GOLDEN === '1') {
      mkdirSync(dirname(GOLDEN), { recursive: true });
      writeFileSync(GOLDEN, text);
    }
    expect(existsSync(GOLDEN), `golden file ${GOLDEN} is missing: run with FERRY_UPDATE_GOLDEN=1 and review it`).toBe(true);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('is the same for the same inputs, and names every path once', () => {
    const a = planArchive(inputs());
    const b = planArchive(inputs());
    expect(renderPlan(a)).toBe(renderPlan(b));
    const paths = a.entries.map((e) => e.path);
    expect(new Set(paths).size).toBe(paths.length);
    // Read back a few decisions directly.
    const by = new Map(a.entries.map((e) => [e.path, e]));
    expect(by.get('usr/sbin/blkid')).toMatchObject({ kind: 'file', mode: 0o755 });
    expect(by.get('usr/bin/sh')).toMatchObject({ kind: 'symlink', target: 'dash' });
    expect(by.has('usr/sbin/lsblk')).toBe(false); // the real lsblk is in usr/bin
    expect(by.has('usr/bin/chrt')).toBe(false); // not listed for util-linux
    expect(by.has('usr/lib/x86_64-linux-gnu/libfoo.so.1')).toBe(false); // nothing needs it
    expect(a.origin.get('usr/lib/x86_64-linux-gnu/libm.so.6')).toBe('util-linux');
    expect(a.origin.get('etc/mke2fs.conf')).toBe('rootfs');
  });

  it('says what each part weighs: the installer, the modules, each package with its libraries, the rest', () => {
    const plan = planArchive(inputs());
    // A size per host file: its path's length, so every entry has a distinct, known size.
    const sizeOf = (e: { source?: string; data?: Buffer }) => e.data?.length ?? e.source!.length;
    const parts = partSizes(plan, sizeOf);
    const files = plan.entries.filter((e) => e.kind === 'file');
    expect(parts.reduce((n, p) => n + p.bytes, 0)).toBe(files.reduce((n, e) => n + sizeOf(e), 0));
    for (let i = 1; i < parts.length; i++) expect(parts[i].bytes).toBeLessThanOrEqual(parts[i - 1].bytes);
    const names = parts.map((p) => p.part);
    expect(names).toContain('installer');
    expect(names).toContain('e2fsprogs');
    expect(new Set(names).size).toBe(names.length);
    const installer = files.filter((e) => plan.origin.get(e.path) === 'ferry-installer');
    expect(parts.find((p) => p.part === 'installer')!.bytes).toBe(installer.reduce((n, e) => n + sizeOf(e), 0));
  });

  it('finds busybox in the merged tree', () => {
    expect(busyboxOf(SPEC, PACKAGES)).toBe(`${HOST}/busybox-static/bin/busybox`);
    expect(busyboxOf(SPEC, PACKAGES.filter((p) => p.name !== 'busybox-static'))).toBeUndefined();
  });

  it('names everything that is missing at once', () => {
    const elf = (host: string) => (host.endsWith('/bin/dash') ? { interpreter: LDSO, needed: ['libc.so.6', 'libtinfo.so.6'], runpath: [] } : ELF[host]);
    const spec = parsePackageList('kernel linux-image-amd64\nbusybox-static\ndash\nutil-linux lsblk nosuchprogram /etc/nosuchfile\n');
    const e = (() => {
      try {
        planArchive(inputs({ spec, elf, busyboxApplets: undefined }));
      } catch (err) {
        return err as { code: string; message: string; details: { missing: string[] } };
      }
      throw new Error('planArchive did not fail');
    })();
    expect(e.code).toBe('FERRY_E_INITRD_MISSING');
    expect(e.details.missing).toEqual([
      'program nosuchprogram (package util-linux, initrd/packages.txt line 4)',
      'file /etc/nosuchfile (package util-linux, initrd/packages.txt line 4)',
      'library libtinfo.so.6 (needed by usr/bin/dash)',
      'usr/bin/busybox (package busybox-static)',
    ]);
  });

  it('refuses busybox as /bin/sh', () => {
    const spec = parsePackageList('kernel linux-image-amd64\nbusybox-static\nutil-linux lsblk\n');
    expect(() => planArchive(inputs({ spec }))).toThrow(/a shell other than busybox \(package dash\)/);
  });

  it('reports a path that two inputs disagree about', () => {
    const rootfs: RootfsFile[] = [...ROOTFS, { rel: 'var', kind: 'symlink', mode: 0o120777, target: '/run' }];
    expect(() => planArchive(inputs({ rootfs }))).toThrow(expect.objectContaining({ code: 'FERRY_E_INITRD_CONFLICT', message: expect.stringMatching(/"var" is a symlink in the initrd but "var\/tmp" needs it/) }));
  });
});

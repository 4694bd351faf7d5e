/**
 * The boot environment build, for real (Debian packages from the cache, depmod, zstd):
 * two builds from the same inputs give the same bytes, and the archive holds what
 * the installer needs, owned by root with one fixed time.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { buildInitrd, type BuildResult } from '../../../initrd/build.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const INSTALLER = join(ROOT, 'build', 'ferry-installer');
const EPOCH = 1_700_000_000;

describe('initrd build', () => {
  let dir: string;
  let a: BuildResult;
  let b: BuildResult;

  beforeAll(async () => {
    // The installer binary comes from `make installer`; build it if this tier runs alone.
    if (!existsSync(INSTALLER)) await run([join(ROOT, 'scripts', 'make-installer.sh')], { timeoutMs: 600_000 });
    dir = mkdtempSync(join(tmpdir(), 'ferry-initrd-build-'));
    const opts = (out: string) => ({
      drivers: 'virtual',
      outDir: join(dir, out),
      installer: INSTALLER,
      cacheDir: join(process.env.FERRY_CACHE || '/var/cache/ferry', 'bootenv'),
      srcDir: join(ROOT, 'initrd'),
      level: 1,
      epoch: EPOCH,
      makeDefault: false,
      log: () => {},
    });
    a = await buildInitrd(opts('a'));
    b = await buildInitrd(opts('b'));
  }, 900_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the same bytes for the same inputs', () => {
    expect(b.sha256).toBe(a.sha256);
    expect(readFileSync(b.manifest, 'utf8')).toBe(readFileSync(a.manifest, 'utf8'));
    expect(readFileSync(join(dir, 'a', 'vmlinuz')).equals(readFileSync(join(dir, 'b', 'vmlinuz')))).toBe(true);
  });

  it('carries the tools, libraries, modules, init and installer, owned by root with one time', async () => {
    const list = await run(['sh', '-c', 'zstd -dc "$1" | cpio -itv --quiet', 'sh', a.initrd], { timeoutMs: 120_000 });
    // MODE LINKS OWNER GROUP SIZE|MAJOR, MINOR MONTH DAY TIME|YEAR PATH[ -> TARGET]
    const entries = list.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const m = /^(\S+)\s+\d+\s+(\S+)\s+(\S+)\s+(?:\d+,\s*\d+|\d+)\s+(\w{3}\s+\d+\s+[\d:]+)\s+(.*)$/.exec(l);
        if (!m) throw new Error(`cannot read the cpio listing line: ${l}`);
        return { line: l, owner: `${m[2]}:${m[3]}`, time: m[4], path: m[5].split(' -> ')[0] };
      });
    const byPath = new Map(entries.map((e) => [e.path, e.line]));
    for (const p of [
      'init',
      'dev/console',
      'usr/bin/ferry-installer',
      'usr/bin/busybox',
      'usr/bin/dash',
      'usr/sbin/mdadm',
      'usr/sbin/lvm',
      'usr/sbin/parted',
      'usr/sbin/sgdisk',
      'usr/sbin/sfdisk',
      'usr/sbin/mkfs.xfs',
      'usr/sbin/mkfs.fat',
      'usr/sbin/mkfs.btrfs',
      'usr/sbin/mke2fs',
      'usr/bin/lsblk',
      'usr/sbin/blkid',
      'usr/sbin/wipefs',
      'usr/bin/partx',
      'usr/bin/mount',
      'usr/sbin/losetup',
      'usr/bin/zstd',
      'usr/bin/tar',
      'usr/bin/kmod',
      'usr/lib/x86_64-linux-gnu/libc.so.6',
      'usr/lib/x86_64-linux-gnu/libstdc++.so.6',
      `usr/lib/modules/${a.kernelVersion}/modules.alias`,
      `usr/lib/modules/${a.kernelVersion}/kernel/fs/ext4/ext4.ko`,
      `usr/lib/modules/${a.kernelVersion}/kernel/drivers/md/raid1.ko`,
    ]) {
      expect(byPath.has(p), p).toBe(true);
    }
    expect(byPath.get('usr/bin/sh')).toMatch(/ -> dash$/);
    expect(byPath.get('dev/console')).toMatch(/^crw-------/);
    // Every entry: owner root, and the same time (cpio -tv prints it as a date).
    expect([...new Set(entries.map((e) => e.owner))]).toEqual(['root:root']);
    expect([...new Set(entries.map((e) => e.time))]).toEqual(['Nov 14  2023']);
  });
});

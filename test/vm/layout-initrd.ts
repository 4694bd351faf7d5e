/**
 * A small test initrd for the layout vm tests: the harness's busybox initrd plus Node, the
 * bundled ferry-installer and the disk tools, copied from this Debian host with the shared
 * libraries they link (ldd). The guest runs Debian's kernel, which has the vfat, md and
 * device-mapper drivers this host's kernel lacks.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../common/run.js';
import { buildBusyboxInitrd, type DebianKernel } from './harness.js';

/** Programs the layout code runs, found on the host. */
const TOOLS = [
  'node', 'parted', 'wipefs', 'partx', 'blkid', 'lsblk', 'blockdev', 'mdadm', 'lvm', 'dmsetup',
  'mke2fs', 'mkfs.ext4', 'mkfs.fat', 'mkfs.xfs', 'mkfs.btrfs', 'mkswap', 'mount', 'umount', 'modprobe',
];
/** LVM's commands are one binary that looks at argv[0]. */
const LVM_NAMES = ['pvcreate', 'vgcreate', 'lvcreate', 'vgchange', 'pvs', 'vgs', 'lvs', 'vgremove', 'pvremove'];

/** Kernel modules for virtio disks and everything the example layouts use. */
export const LAYOUT_MODULES = [
  'virtio_pci', 'virtio_blk', 'md_mod', 'raid1', 'raid0', 'dm_mod', 'ext4', 'crc32c_generic',
  'vfat', 'nls_cp437', 'nls_utf8', 'nls_ascii', 'xfs', 'btrfs',
];

/** Where the copied programs live in the guest; the tests put it first on PATH. */
export const TOOL_DIR = '/opt/ferry/bin';

async function which(name: string): Promise<string> {
  const r = await run(['sh', '-c', 'command -v "$1"', 'sh', name], { quiet: true });
  return realpathSync(r.stdout.trim());
}

async function libraries(bin: string): Promise<string[]> {
  const r = await run(['ldd', bin], { okCodes: [0, 1], quiet: true });
  const out: string[] = [];
  for (const l of r.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(l) ?? /^\s*(\/\S+)\s*\(/.exec(l);
    if (m) out.push(m[1]);
  }
  return out;
}

export async function buildLayoutInitrd(kernel: DebianKernel, installerBundle: string, out: string): Promise<string> {
  if (!existsSync(installerBundle)) throw new Error(`${installerBundle} is missing: run node scripts/bundle.mjs`);
  const files: Record<string, string | Buffer> = {};
  const libs = new Set<string>();
  for (const t of TOOLS) {
    const p = await which(t);
    files[`${TOOL_DIR}/${t}`] = readFileSync(p);
    for (const l of await libraries(p)) libs.add(l);
  }
  for (const l of libs) files[l] = readFileSync(l);
  files['/opt/ferry/ferry-installer.cjs'] = readFileSync(installerBundle);
  const links = LVM_NAMES.map((n) => `ln -sf lvm ${TOOL_DIR}/${n}`).join('\n');
  const init = [
    '#!/bin/sh',
    'export PATH=/bin:/sbin:/usr/bin:/usr/sbin',
    'mount -t proc proc /proc',
    'mount -t sysfs sys /sys',
    'mount -t devtmpfs dev /dev',
    'mkdir -p /dev/pts /tmp /run /run/lock /mnt && mount -t devpts devpts /dev/pts',
    `chmod 755 ${TOOL_DIR}/* /lib64/ld-linux-x86-64.so.2`,
    links,
    ...LAYOUT_MODULES.map((m) => `modprobe ${m} || echo "init: modprobe ${m} failed"`),
    'echo FERRY-VM-SHELL-READY',
    'while true; do setsid cttyhack sh; done',
    '',
  ].join('\n');
  return buildBusyboxInitrd({ kernel, out, modules: LAYOUT_MODULES, files, init });
}

/** The shell prefix that runs the real tools rather than busybox's applets. */
export const GUEST_ENV = `export PATH=${TOOL_DIR}:$PATH LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu FERRY_LOG_LEVEL=warn`;

export function installerCommand(args: string): string {
  return `node /opt/ferry/ferry-installer.cjs ${args}`;
}


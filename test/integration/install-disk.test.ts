/**
 * A whole install onto a loop-device disk: the layouts code partitions and formats it from
 * layouts/bios-msdos.xml, the layers go on, fstab comes from the plan, and the image's own GRUB
 * is installed for BIOS from inside the target (the MBR then holds GRUB's boot code).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import type { ProgressEvent } from '../../common/progress.js';
import { runInstall } from '../../installer/install.js';
import { FerryServer } from './helpers/ferry-server.js';
import { Scratch } from './layout-helpers.js';

const ROOT = path.join(__dirname, '..', '..');
let work: string;
let server: FerryServer;
let scratch: Scratch;

beforeEach(async () => {
  scratch = new Scratch();
  work = scratch.dir;
  server = await FerryServer.start();
});
afterEach(async () => {
  await server.close();
  await scratch.cleanup();
});

describe('install onto a loop-device disk', () => {
  it('partitions, installs, writes fstab and installs BIOS GRUB from the image', async () => {
    const src = path.join(work, 'src');
    await run([path.join(__dirname, 'helpers/grub-image.sh'), src]);
    fs.writeFileSync(path.join(src, 'etc/marker'), 'installed by ferry\n');
    // A kernel for GRUB's 10_linux to make a boot entry of (it only lists the file): the host has
    // no udev, so grub-mkconfig names the root by its device and the installer must rewrite it.
    fs.writeFileSync(path.join(src, 'boot/vmlinuz-6.1.0-ferry-test'), Buffer.alloc(4096, 1));
    await server.image('grubby', src, [{ kind: 'hostname' }]);
    const layout = fs.readFileSync(path.join(ROOT, 'layouts/bios-msdos.xml'), 'utf8');
    const armed = server.arm('disk1', 'grubby', { layout });
    const { file, dev: loop } = await scratch.loop(1 << 30);
    const events: ProgressEvent[] = [];
    const outcome = await runInstall({
      server: server.url, token: armed.token, disks: [loop], yes: true, initramfs: false, console: () => {},
      mountRoot: path.join(work, 'target'), onEvent: (e) => events.push(e),
    });
    expect(outcome.result, JSON.stringify(events.filter((e) => e.state === 'error'), null, 2)).toEqual({ status: 'success' });
    // Unmounted cleanly before reporting.
    expect(fs.readFileSync('/proc/mounts', 'utf8')).not.toContain(loop);
    const mbr = Buffer.alloc(512);
    const fd = fs.openSync(loop, 'r');
    fs.readSync(fd, mbr, 0, 512, 0);
    fs.closeSync(fd);
    expect(mbr.includes(Buffer.from('GRUB'))).toBe(true);
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);
    const cmds = events.filter((e) => e.phase === 'bootloader' && e.state === 'info' && e.object?.includes('grub-install')).map((e) => e.object);
    expect(cmds).toContain(`/usr/sbin/grub-install --target=i386-pc --recheck ${loop}`);
    // Look inside: root on partition 6, /boot on partition 1.
    const mnt = path.join(work, 'check');
    fs.mkdirSync(mnt);
    await run(['mount', '-o', 'ro', `${loop}p6`, mnt]);
    try {
      await run(['mount', '-o', 'ro', `${loop}p1`, path.join(mnt, 'boot')]);
      try {
        expect(fs.readFileSync(path.join(mnt, 'etc/marker'), 'utf8')).toBe('installed by ferry\n');
        expect(fs.readFileSync(path.join(mnt, 'etc/hostname'), 'utf8')).toBe('disk1\n');
        const fstab = fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8');
        const planned = events.find((e) => e.phase === 'disks' && e.details?.fstab)!.details!.fstab;
        expect(fstab).toBe(planned);
        const uuid = (await run(['blkid', '-s', 'UUID', '-o', 'value', `${loop}p6`])).stdout.trim();
        expect(fstab).toMatch(new RegExp(`^UUID=${uuid}\\s+/\\s+ext4`, 'm'));
        expect(fstab).toMatch(/\s\/boot\s+ext4/);
        expect(fstab).toMatch(/\sswap\s/);
        const cfg = fs.readFileSync(path.join(mnt, 'boot/grub/grub.cfg'), 'utf8');
        expect(cfg).toContain('BEGIN /etc/grub.d/00_header');
        // The kernel command lines name the root by UUID, never by the loop device's name.
        expect(fs.existsSync('/dev/disk/by-uuid/' + uuid), 'this host has /dev/disk/by-uuid: the test would not show the fix').toBe(false);
        const kernels = cfg.split('\n').filter((l) => /^\s*linux\s/.test(l));
        expect(kernels.length, cfg).toBeGreaterThan(0);
        for (const l of kernels) expect(l).toMatch(new RegExp(`\\sroot=UUID=${uuid}\\s`));
        expect(cfg).not.toContain(`root=${loop}`);
        // GRUB itself wrote the device name (no udev here); the installer said what it changed.
        const fixed = events.find((e) => e.phase === 'bootloader' && e.object === '/boot/grub/grub.cfg');
        expect(fixed?.message).toMatch(new RegExp(`^root=${loop}p6 became root=UUID=${uuid} on \\d+ kernel line`));
        expect(fs.existsSync(path.join(mnt, 'boot/grub/i386-pc/core.img'))).toBe(true);
      } finally {
        await run(['umount', path.join(mnt, 'boot')]);
      }
    } finally {
      await run(['umount', mnt]);
    }
    expect(server.deployment(armed.id).row.status).toBe('success');
  });
});

/**
 * The installed system boots by UUID (issue 17): grub-mkconfig names the root by its device
 * when /dev/disk/by-uuid is missing (no udev: the boot environment, hosts writing a disk onto a
 * loop device); the installer rewrites those kernel lines to root=UUID=….
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { planBootloader, rootByUuid } from '../../installer/bootloader.js';
import type { TargetView } from '../../installer/customize/plan.js';
import { parseLayout } from '../../layout/parse.js';
import { planDisks } from '../../layout/plan.js';

const ROOT = join(import.meta.dirname, '..', '..');
const has = (...paths: string[]): TargetView => ({ readText: () => undefined, exists: (p) => paths.includes(p), list: () => [] });
const UUID = '3f1c2a4e-8d55-4c8e-9d1b-2a3b4c5d6e7f';

// What Debian 12's grub-mkconfig writes on a host without udev (abridged).
const CFG = `menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-${UUID}' {
	load_video
	insmod ext2
	search --no-floppy --fs-uuid --set=root ${UUID}
	echo	'Loading Linux 6.1.0-18-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-18-amd64 root=/dev/loop0p1 ro  quiet
	initrd	/boot/initrd.img-6.1.0-18-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-${UUID}' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)' {
		linux	/boot/vmlinuz-6.1.0-18-amd64 root=/dev/loop0p1 ro single
		initrd	/boot/initrd.img-6.1.0-18-amd64
	}
}
# root=/dev/loop0p1 in a comment stays
`;

describe('root=UUID on the kernel command line', () => {
  it('rewrites every kernel line that names the root device, nothing else', () => {
    const r = rootByUuid(CFG, '/dev/loop0p1', UUID);
    expect(r).toMatchObject({ changed: 2, byUuid: 2, kernels: 2 });
    expect(r.text).not.toMatch(/^\s*linux.*root=\/dev\//m);
    expect(r.text).toContain(`linux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=${UUID} ro  quiet`);
    expect(r.text).toContain(`root=UUID=${UUID} ro single`);
    expect(r.text).toContain('# root=/dev/loop0p1 in a comment stays');
    expect(r.text.split('\n').length).toBe(CFG.split('\n').length);
  });

  it('leaves a config already by UUID, another device and a longer name alone', () => {
    const byUuid = rootByUuid(rootByUuid(CFG, '/dev/loop0p1', UUID).text, '/dev/loop0p1', UUID);
    expect(byUuid).toMatchObject({ changed: 0, byUuid: 2, kernels: 2 });
    expect(rootByUuid(CFG, '/dev/loop0p', UUID)).toMatchObject({ changed: 0, byUuid: 0, kernels: 2 });
    expect(rootByUuid(CFG.replace(/loop0p1/g, 'md0'), '/dev/md0', UUID).changed).toBe(2);
    // A regexp character in a device name is literal.
    expect(rootByUuid('linux /vmlinuz root=/dev/sdaX1', '/dev/sda.1', UUID).changed).toBe(0);
  });

  it('the plan carries the root UUID to the bootloader decision; a logical volume keeps its name', () => {
    const layout = parseLayout(readFileSync(join(ROOT, 'layouts/bios-msdos.xml'), 'utf8'));
    const plan = planDisks(layout, [{ path: '/dev/loop0', size: 8 * 1024 ** 3, sectorSize: 512 }], { seed: 's' });
    const root = plan.filesystems.find((f) => f.mountpoint === '/')!;
    expect(plan.bootloader).toMatchObject({ rootDevice: root.device, rootUuid: root.uuid });
    const d = planBootloader({ override: 'auto', request: plan.bootloader, firmwareEfi: false, view: has('/usr/sbin/grub-install', '/usr/sbin/update-grub') });
    expect(d.rootByUuid).toEqual({ config: '/boot/grub/grub.cfg', device: root.device, uuid: root.uuid });
    const lvm = planDisks(parseLayout(readFileSync(join(ROOT, 'layouts/lvm.xml'), 'utf8')), [{ path: '/dev/vda', size: 20 * 1024 ** 3, sectorSize: 512 }], { seed: 's' });
    expect(lvm.bootloader.rootDevice).toMatch(/^\/dev\/mapper\//);
    expect(lvm.bootloader.rootUuid).toBeUndefined();
  });
});

describe('a layout without <bootloader> (SystemImager fixture 06)', () => {
  const si06 = () => parseLayout(readFileSync(join(ROOT, 'test/fixtures/systemimager-layouts/06-systeminstaller-generated-2018-no-bootloader.xml'), 'utf8'));
  it('puts BIOS boot code on the one disk holding /boot, and says so', () => {
    const p = planDisks(si06(), [{ path: '/dev/loop3', size: 4 * 1024 ** 3, sectorSize: 512 }], { seed: 's' });
    expect(p.bootloader.targets).toEqual(['/dev/loop3']);
    expect(p.warnings.find((w) => w.code === 'FERRY_W_PLAN_BOOTLOADER_DISK')?.message).toMatch(/onto \/dev\/loop3 \(layout \/dev\/sda\), the disk holding \/boot/);
    const d = planBootloader({ override: 'auto', request: p.bootloader, firmwareEfi: false, view: has('/usr/sbin/grub-install', '/usr/sbin/update-grub') });
    expect(d.commands[0]).toEqual(['/usr/sbin/grub-install', '--target=i386-pc', '--recheck', '/dev/loop3']);
  });
  it('a layout that names its bootloader keeps its own targets, with no such warning', () => {
    const p = planDisks(parseLayout(readFileSync(join(ROOT, 'layouts/bios-msdos.xml'), 'utf8')), [{ path: '/dev/vda', size: 8 * 1024 ** 3, sectorSize: 512 }], { seed: 's' });
    expect(p.bootloader.targets).toEqual(['/dev/vda']);
    expect(p.warnings.map((w) => w.code)).not.toContain('FERRY_W_PLAN_BOOTLOADER_DISK');
  });
});

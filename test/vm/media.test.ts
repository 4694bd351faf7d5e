/**
 * Restore media in QEMU: the sample image's medium (ferry media build) as a CD on a BIOS guest
 * with a blank virtio disk and a network card but no server (the medium names none, so nothing
 * of the install goes over the network; without any card the one run on a loaded host did not
 * reach the login prompt in 8 minutes, with one it takes about 3 on a quiet host). The firmware tries the blank disk first and falls through
 * to the CD (the order a machine to restore has); the boot environment finds the medium by its
 * label, shows what it will erase and counts down, verifies the layers, installs, and reboots; the
 * disk now boots, to the installed system's login prompt with the hostname the medium gave it.
 *
 * The same medium file as a USB stick on a UEFI guest with a blank NVMe disk: the ISO attached
 * as a usb-storage device on an xHCI controller is the byte image `ferry media write` (or `dd`)
 * puts on a stick, so OVMF finds the hybrid ISO's EFI system partition and its removable path
 * EFI/BOOT/BOOTX64.EFI, GRUB finds the ISO by its label, and the boot environment finds it by
 * the same label on /dev/sdX (the usb_storage/uas drivers), never planning onto it. That medium
 * names the server (--server): the install itself stays offline, and the installed system's
 * first boot posts its install record, which the server keeps as a deployment record.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_DIR, FerryEnv, LAYOUTS, loginAsRoot } from './ferry-env.js';
import { GuestSet } from './harness.js';

const MIN = 60_000;
// Deadlines under TCG on a busy 2-core machine; a healthy run needs a fraction of each.
const T = { medium: 4 * MIN, install: 15 * MIN, login: 8 * MIN, report: 4 * MIN };

describe('restore media', () => {
  const guests = new GuestSet();
  let env: FerryEnv;
  let failed = false;

  beforeAll(async () => {
    env = await FerryEnv.start();
    await env.importSample('sample');
  });
  afterEach(async (ctx) => {
    const f = ctx.task.result?.state === 'fail';
    failed ||= f;
    await guests.closeAll(f);
  });
  afterAll(async () => {
    await env?.close(failed);
  });

  it('BIOS, CD, blank virtio disk: boots the medium, installs offline, boots the installed disk to its login prompt', async () => {
    const t0 = Date.now();
    const iso = join(env.dataDir, 'restore.iso');
    await env.ferry('media', 'build', '--out', iso, '--image', 'sample', '--layout', join(LAYOUTS, 'bios-msdos.xml'), '--set', 'hostname=ferry-cd', '--label', 'FERRY-CD-TEST', '--boot-dir', BOOT_DIR);
    process.stderr.write(`[vm media] media build: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const g = await guests.start({
      name: 'media-cd',
      firmware: 'bios',
      memoryMiB: 1536,
      disks: [{ size: '3G', bus: 'virtio' }],
      net: {},
      extraArgs: ['-drive', `file=${iso},format=raw,if=none,id=cd0,media=cdrom,readonly=on`, '-device', 'ide-cd,drive=cd0,bus=ide.2,bootindex=9'],
    });
    const ms = (what: string) => process.stderr.write(`[vm media] ${what} after ${((Date.now() - g.startedAt) / 1000).toFixed(0)} s\n`);
    await g.waitFor(/ferry-init: medium FERRY-CD-TEST on \/dev\/sr0/, { timeoutMs: T.medium, what: 'the boot environment to find and mount the medium by its label' });
    ms('medium mounted');
    await g.waitFor(/ferry: this install ERASES:\s+\/dev\/vda\s+3221225472 bytes/, { timeoutMs: T.medium, what: 'the list of what the install erases' });
    await g.waitFor(/erasing in 9 s/, { timeoutMs: MIN, what: 'the countdown' });
    await g.waitFor(/ferry: install finished successfully/, { timeoutMs: T.install, what: 'the install from the medium', failOn: /FERRY-INSTALL-FAILED|Kernel panic/ });
    ms('install finished');
    expect(g.console).toMatch(/medium FERRY-CD-TEST: node ferry-cd, image sample@1 \(\d+ layers, all verified\)/);
    expect(g.console).not.toMatch(/\/dev\/sr0 .*ERASES|ERASES:[^\n]*\n\s+\/dev\/sr0/);
    const from = g.console.length;
    await g.waitFor(/^ferry-cd login:/m, { timeoutMs: T.login, what: 'the installed system\'s login prompt showing ferry-cd', from });
    ms('login prompt');
    await loginAsRoot(g, 'ferry-cd');
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /')).trim()).toMatch(/^\/dev\/vda\d\s+ext4$/);
    expect((await g.sh('hostname')).trim()).toBe('ferry-cd');
    process.stderr.write(`[vm media] total ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  });

  it('UEFI, USB stick, blank NVMe disk: boots the stick, installs offline, boots the installed disk to its login prompt', async () => {
    const t0 = Date.now();
    const stick = join(env.dataDir, 'restore-usb.iso');
    // --server: the installed system's first boot posts the offline install record to it.
    await env.ferry('media', 'build', '--out', stick, '--image', 'sample', '--layout', join(LAYOUTS, 'uefi-gpt.xml'), '--set', 'hostname=ferry-usb', '--label', 'FERRY-USB-TEST', '--unattended', '--server', env.server.publicUrl, '--boot-dir', BOOT_DIR);
    const g = await guests.start({
      name: 'media-usb',
      firmware: 'uefi',
      memoryMiB: 1536,
      disks: [{ size: '3G', bus: 'nvme' }],
      net: {},
      extraArgs: ['-device', 'qemu-xhci,id=xhci', '-drive', `file=${stick},format=raw,if=none,id=stick0,readonly=on`, '-device', 'usb-storage,bus=xhci.0,drive=stick0,removable=on,bootindex=9'],
    });
    const ms = (what: string) => process.stderr.write(`[vm media] usb: ${what} after ${((Date.now() - g.startedAt) / 1000).toFixed(0)} s\n`);
    await g.waitFor(/ferry-init: medium FERRY-USB-TEST on \/dev\/sd[a-z]+\d* \(disk \/dev\/sd[a-z]+\)/, { timeoutMs: T.medium, what: 'the boot environment to find the stick by its label' });
    ms('medium mounted');
    await g.waitFor(/ferry: install finished successfully/, { timeoutMs: T.install, what: 'the install from the stick', failOn: /FERRY-INSTALL-FAILED|Kernel panic/ });
    ms('install finished');
    expect(g.console).toMatch(/medium FERRY-USB-TEST: node ferry-usb, image sample@1 \(\d+ layers, all verified\)/);
    const from = g.console.length;
    await g.waitFor(/^ferry-usb login:/m, { timeoutMs: T.login, what: 'the installed system\'s login prompt showing ferry-usb', from });
    ms('login prompt');
    await loginAsRoot(g, 'ferry-usb');
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /')).trim()).toMatch(/^\/dev\/nvme0n1p\d\s+ext4$/);
    expect((await g.sh('hostname')).trim()).toBe('ferry-usb');
    // The offline record: posted at first boot (nothing of the install went over the network), then the unit is gone.
    const deadline = Date.now() + T.report;
    while (env.deployments('ferry-usb').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2000));
    const recs = env.deployments('ferry-usb');
    expect(recs, 'the first boot\'s post of the install record (ferry-report-install.service)').toHaveLength(1);
    expect(recs[0]).toMatchObject({ status: 'success', createdBy: 'medium:FERRY-USB-TEST', image: 'sample@1' });
    expect([...new Set(env.events(recs[0].id).map((e) => e.phase))]).toEqual(expect.arrayContaining(['config', 'disks', 'layers', 'customize', 'bootloader', 'finish']));
    ms('install record on the server');
    expect((await g.sh('test -e /etc/systemd/system/ferry-report-install.service && echo left || echo gone')).trim()).toBe('gone');
    process.stderr.write(`[vm media] usb total ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  });
});

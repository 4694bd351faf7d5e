/**
 * Restore media in QEMU: the sample image's medium (ferry media build) as a CD on a BIOS guest
 * with a blank virtio disk and a network card but no server (the medium names none, so nothing
 * of the install goes over the network; without any card the one run on a loaded host did not
 * reach the login prompt in 8 minutes, with one it takes about 3 on a quiet host). The firmware tries the blank disk first and falls through
 * to the CD (the order a machine to restore has); the boot environment finds the medium by its
 * label, shows what it will erase and counts down, verifies the layers, installs, and reboots; the
 * disk now boots, to the installed system's login prompt with the hostname the medium gave it.
 * Before that, the same guest boots the same medium with one byte of its last layer flipped: the
 * install is refused in the config stage with the layer named, the record stays on the console (a
 * CD is never written), and the disk image's sha256 is unchanged; the byte is put back and the
 * guest restarted from the boot environment's shell (no second guest). After the good install
 * the installer ejects the CD (util-linux eject), and the machine boots the installed disk.
 *
 * The same medium file as a USB stick on a UEFI guest with a blank NVMe disk: the ISO attached
 * as a usb-storage device on an xHCI controller is the byte image `ferry media write` (or `dd`)
 * puts on a stick, so OVMF finds the hybrid ISO's EFI system partition and its removable path
 * EFI/BOOT/BOOTX64.EFI, GRUB finds the ISO by its label, and the boot environment finds it by
 * the same label on /dev/sdX (the usb_storage/uas drivers), never planning onto it. That medium
 * names the server (--server): the install itself stays offline, and the installed system's
 * first boot posts its install record, which the server keeps as a deployment record.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_DIR, FerryEnv, LAYOUTS, loginAsRoot } from './ferry-env.js';
import { GuestSet, sha256File } from './harness.js';
import { decodeMediumSlot } from '../../common/medium.js';
import { run } from '../../common/run.js';

/** Flip one byte in the middle of the medium's last layer, in the ISO file; restore() puts it back. */
async function corruptLastLayer(iso: string): Promise<{ index: number; count: number; digest: string; restore(): Promise<void> }> {
  const x = await fsp.mkdtemp(join(tmpdir(), 'ferry-vm-medium-'));
  await run(['xorriso', '-osirrox', 'on', '-indev', iso, '-extract', '/ferry/medium.0', join(x, 'medium.0')], { quiet: true });
  const d = decodeMediumSlot(await fsp.readFile(join(x, 'medium.0')));
  await fsp.rm(x, { recursive: true, force: true });
  if (!d.ok) throw new Error(`the medium's description: ${d.why}`);
  const layers = d.manifest.layers;
  const last = layers[layers.length - 1];
  const r = await run(['xorriso', '-indev', iso, '-find', '/' + last.path, '-exec', 'report_lba', '--'], { quiet: true });
  const m = /File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*\d+\s*,\s*(\d+)/.exec(r.stdout + r.stderr);
  if (!m) throw new Error(`no extent for ${last.path} in ${iso}`);
  const at = Number(m[1]) * 2048 + Math.floor(Number(m[2]) / 2);
  const fh = await fsp.open(iso, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  const orig = b[0];
  await fh.write(Buffer.from([orig ^ 0xff]), 0, 1, at);
  await fh.close();
  return {
    index: layers.length,
    count: layers.length,
    digest: last.digest,
    async restore() {
      const f = await fsp.open(iso, 'r+');
      await f.write(Buffer.from([orig]), 0, 1, at);
      await f.close();
    },
  };
}

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

  it('BIOS, CD, blank virtio disk: refuses a medium with a corrupted layer (disk untouched), then boots the good medium, installs offline, ejects it, boots the installed disk to its login prompt', async () => {
    const t0 = Date.now();
    const iso = join(env.dataDir, 'restore.iso');
    await env.ferry('media', 'build', '--out', iso, '--image', 'sample', '--layout', join(LAYOUTS, 'bios-msdos.xml'), '--set', 'hostname=ferry-cd', '--label', 'FERRY-CD-TEST', '--boot-dir', BOOT_DIR);
    process.stderr.write(`[vm media] media build: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    // First the same guest boots the medium with one byte of its last layer flipped (in the ISO
    // file itself: the guest reads it as it is), which the install refuses before any disk write.
    const bad = await corruptLastLayer(iso);
    const g = await guests.start({
      name: 'media-cd',
      firmware: 'bios',
      memoryMiB: 1536,
      disks: [{ size: '3G', bus: 'virtio' }],
      net: {},
      extraArgs: ['-drive', `file=${iso},format=raw,if=none,id=cd0,media=cdrom,readonly=on`, '-device', 'ide-cd,drive=cd0,bus=ide.2,bootindex=9'],
    });
    const ms = (what: string) => process.stderr.write(`[vm media] ${what} after ${((Date.now() - g.startedAt) / 1000).toFixed(0)} s\n`);
    const blank = await sha256File(g.disks[0].file);
    await g.waitFor(/ferry-init: medium FERRY-CD-TEST on \/dev\/sr0/, { timeoutMs: T.medium, what: 'the boot environment to find and mount the corrupted medium by its label' });
    await g.waitFor(/FERRY-INSTALL-FAILED/, { timeoutMs: T.medium, what: 'the refusal of the corrupted medium', failOn: /ferry: this install ERASES|Kernel panic/ });
    ms('corrupted medium refused');
    expect(g.console).toContain('FERRY INSTALL FAILED in stage "config"');
    expect(g.console).toContain(`FERRY_E_MEDIUM_LAYER_BAD: layer ${bad.index} of ${bad.count} (${bad.digest}) on the medium`);
    expect(g.console).toContain('the install record is on this console only: /dev/sr0 is a CD');
    expect(await sha256File(g.disks[0].file), 'the disk after the refused medium').toBe(blank);
    // The good medium: the byte back, and the same guest restarted from the rescue shell.
    await bad.restore();
    const second = g.mark();
    g.send('reboot -f\n');
    await g.waitFor(/ferry-init: medium FERRY-CD-TEST on \/dev\/sr0/, { timeoutMs: T.medium, what: 'the boot environment to find and mount the medium by its label', from: second });
    ms('medium mounted');
    await g.waitFor(/ferry: this install ERASES:\s+\/dev\/vda\s+3221225472 bytes/, { timeoutMs: T.medium, what: 'the list of what the install erases', from: second });
    await g.waitFor(/erasing in 9 s/, { timeoutMs: MIN, what: 'the countdown', from: second });
    await g.waitFor(/ferry: install finished successfully/, { timeoutMs: T.install, what: 'the install from the medium', failOn: /FERRY-INSTALL-FAILED|Kernel panic/, from: second });
    ms('install finished');
    const after = g.console.slice(second);
    expect(after).toMatch(/medium FERRY-CD-TEST: node ferry-cd, image sample@1 \(\d+ layers, all verified\)/);
    expect(after).not.toMatch(/\/dev\/sr0 .*ERASES|ERASES:[^\n]*\n\s+\/dev\/sr0/);
    await g.waitFor(/ferry: ejected the medium \/dev\/sr0: the machine boots the installed disk next/, { timeoutMs: MIN, what: 'the CD ejected', from: second });
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

/**
 * The real boot environment (make initrd → build/boot/vmlinuz, build/boot/initrd.img)
 * under QEMU: the init loads the drivers the hardware asks for, brings the network up,
 * and starts the installer, whose first event reaches a Ferry server on the host, booted
 * directly and through legacy pxelinux (the iPXE chain is what every e2e and demo install
 * boots through); an install cancelled under it stops and leaves a rescue shell.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import { kernelCommandLine } from '../../server/boot/ipxe.js';
import { cancelDeployments } from '../../server/db/deployment-lifecycle.js';
import { SHELL_READY } from '../../initrd/build.js';
import { FerryServer } from '../integration/helpers/ferry-server.js';
import { busyboxImage } from '../integration/helpers/images.js';
import { GuestSet } from './harness.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BOOT = join(ROOT, 'build', 'boot');
const VMLINUZ = join(BOOT, 'vmlinuz');
const INITRD = join(BOOT, 'initrd.img');

/** Wait until the deployment has an event at the server; returns the first one. */
function firstEvent(srv: FerryServer, id: number) {
  return waitFor(() => srv.deployment(id).events[0], { what: "the installer's first event at the server", timeoutMs: 180_000, intervalMs: 500 });
}

describe('boot environment', () => {
  const guests = new GuestSet();
  let srv: FerryServer;
  let work: string;
  let publicUrl: string;

  beforeAll(async () => {
    if (!existsSync(VMLINUZ) || !existsSync(INITRD)) {
      throw new Error(`${VMLINUZ} and ${INITRD} are missing: run \`make initrd\` (make test-vm does it first)`);
    }
    work = mkdtempSync(join(tmpdir(), 'ferry-bootenv-vm-'));
    srv = await FerryServer.start();
    // The guest reaches the host's loopback as 10.0.2.2 (QEMU user networking).
    publicUrl = `http://10.0.2.2:${srv.srv.port}`;
    mkdirSync(join(work, 'ferry-tftp'));
    await srv.restart({ publicUrl, bootDir: BOOT, tftp: { listen: '127.0.0.1:0', root: join(work, 'ferry-tftp') } });
    const tree = join(work, 'tree');
    busyboxImage(tree);
    await srv.image('bootenv-test', tree);
  });
  afterEach(async (ctx) => guests.closeAll(ctx.task.result?.state === 'fail'));
  afterAll(async () => {
    await srv?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('gives a shell with the drivers, the network and the tools when booted with ferry.shell=1', async () => {
    const g = await guests.start({
      name: 'bootenv-shell',
      memoryMiB: 1536,
      net: {},
      disks: [
        { size: '256M', bus: 'virtio' },
        { size: '512M', bus: 'nvme' },
        { size: '256M', bus: 'sata' },
      ],
      kernel: { kernel: VMLINUZ, initrd: INITRD, append: 'console=ttyS0,115200n8 no_timer_check ferry.shell=1 panic=-1' },
    });
    await g.waitFor(new RegExp(SHELL_READY), { timeoutMs: 300_000, what: 'the boot environment shell' });
    // Drivers came from the devices' modaliases, not a fixed list.
    const mods = await g.sh('cut -d" " -f1 /proc/modules | sort');
    for (const m of ['virtio_pci', 'virtio_net', 'virtio_blk', 'nvme', 'ahci']) expect(mods).toContain(m);
    expect(g.console).toMatch(/ferry-init: network up on eth0: 10\.0\.2\.15\/24 gateway 10\.0\.2\.2/);
    // NVMe namespaces appear asynchronously: a bounded wait.
    await g.sh('for i in $(seq 100); do [ -e /sys/block/nvme0n1 ] && [ -e /sys/block/sda ] && break; sleep 0.1; done');
    const disks = await g.sh('lsblk -dn -o NAME,SIZE | sort');
    expect(disks.trim().split('\n').map((l) => l.trim().split(/\s+/))).toEqual([
      ['nvme0n1', '512M'],
      ['sda', '256M'],
      ['vda', '256M'],
    ]);
    // The tools the installer calls, with their libraries and the kernel modules they need.
    await g.sh('mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 /dev/vda /dev/sda', { timeoutMs: 120_000 });
    await g.sh('pvcreate -q /dev/md0 && vgcreate -q vg0 /dev/md0 && lvcreate -q -y -L 64M -n root vg0', { timeoutMs: 120_000 });
    await g.sh('mkfs.ext4 -q /dev/vg0/root && mkfs.xfs -q -f /dev/nvme0n1', { timeoutMs: 120_000 });
    await g.sh('lvcreate -q -y -L 64M -n efi vg0 && mkfs.vfat /dev/vg0/efi && mkdir -p /mnt/a /mnt/b /mnt/c && mount /dev/vg0/efi /mnt/a && mount /dev/vg0/root /mnt/b && mount /dev/nvme0n1 /mnt/c', {
      timeoutMs: 120_000,
    });
    const fs = await g.sh('awk \'$2 ~ /^\\/mnt\\// { print $2, $3 }\' /proc/mounts | sort');
    expect(fs.trim().split('\n')).toEqual(['/mnt/a vfat', '/mnt/b ext4', '/mnt/c xfs']);
    await g.sh('echo hello | zstd -q | zstd -dq | grep -qx hello && sgdisk --version >/dev/null && parted --version >/dev/null && mkfs.btrfs --version >/dev/null && wipefs --version >/dev/null && sfdisk --version >/dev/null && tar --version >/dev/null');
    expect((await g.sh('ferry-installer --version')).trim()).toMatch(/^ferry-installer \d/);
    // The host's server answers from inside the guest.
    expect(await g.sh(`wget -q -O - ${publicUrl}/boot/ipxe?mac=02:00:00:00:00:01`)).toMatch(/^#!ipxe/);
  });

  // One boot for two checks: the installer starts and reports, then the deployment is cancelled
  // under it, and the boot environment shows the error and leaves a rescue shell. The iPXE chain
  // (TFTP boot.ipxe → GET /boot/ipxe → kernel and initrd over HTTP) is what every install of the
  // e2e and demo tests boots through, so it has no boot of its own here.
  it('starts the installer, whose first event reaches the server; cancelled under it, the installer stops and leaves a shell (direct kernel boot)', async () => {
    const mac = '52:54:00:f0:0d:01';
    const armed = srv.arm('bootenv-direct', 'bootenv-test', { macs: [mac] });
    const append = kernelCommandLine({ serverUrl: publicUrl, token: armed.token, mac, console: ['console=ttyS0,115200n8'], extraArgs: ['panic=-1'] });
    const g = await guests.start({ name: 'bootenv-direct', memoryMiB: 1536, net: { mac }, disks: [{ size: '1G', bus: 'virtio' }], kernel: { kernel: VMLINUZ, initrd: INITRD, append } });
    await g.waitFor(/ferry-init: network up on eth0/, { timeoutMs: 300_000, what: 'the init to configure the network' });
    await g.waitFor(/ferry-init: starting ferry-installer run/, { timeoutMs: 60_000, what: 'the init to start the installer' });
    const first = await firstEvent(srv, armed.id);
    expect(first.phase).toBe('identify');
    // The figure the README keeps: from power-on (direct kernel boot) to the installer's first event.
    process.stderr.write(`[vm bootenv] power-on to the installer's first event at the server: ${((Date.now() - g.startedAt) / 1000).toFixed(0)} s (load average ${(await import('node:os')).loadavg()[0].toFixed(1)})\n`);
    const out = cancelDeployments(srv.data, ['bootenv-direct'], 'test');
    expect(out.cancelled.map((c) => c.id)).toEqual([armed.id]);
    // Its next call to the server (the configuration or a layer) is refused: the install stops.
    await g.waitFor(/FERRY-INSTALL-FAILED: ferry-installer exited with status [1-9]/, { timeoutMs: 400_000, what: 'the init to report the stopped install' });
    // The refusal names the ended token (the configuration) or its HTTP status (a layer).
    expect(g.console).toMatch(/FERRY_E_TOKEN_(ENDED|REJECTED)|HTTP 4[01]\d/);
    await g.waitFor(/starting a shell on the console/, { timeoutMs: 30_000, what: 'the rescue shell' });
    const r = await g.exec('echo rescue-$((20 + 22)); cat /proc/cmdline');
    expect(r.status).toBe(0);
    expect(r.output).toContain('rescue-42');
    expect(r.output).toContain(`ferry.token=${armed.token}`);
    expect(srv.deployment(armed.id).row.status).toBe('cancelled');
  });

  it('boots legacy pxelinux: lpxelinux.0 → pxelinux.cfg/01-MAC from Ferry\'s TFTP → kernel and initrd over HTTP → installer event', async () => {
    const mac = '52:54:00:f0:0d:03';
    const armed = srv.arm('bootenv-pxelinux', 'bootenv-test', { macs: [mac] });
    // QEMU's own TFTP serves the guest; the per-machine file is what `ferry serve --tftp` answers.
    const tftp = join(work, 'tftp-pxelinux');
    mkdirSync(join(tftp, 'pxelinux.cfg'), { recursive: true });
    copyFileSync('/usr/lib/PXELINUX/lpxelinux.0', join(tftp, 'lpxelinux.0'));
    copyFileSync('/usr/lib/syslinux/modules/bios/ldlinux.c32', join(tftp, 'ldlinux.c32'));
    const cfg = join(tftp, 'pxelinux.cfg', '01-52-54-00-f0-0d-03');
    await run(['tftp', '-m', 'binary', '127.0.0.1', String(srv.srv.tftp!.port), '-c', 'get', 'pxelinux.cfg/01-52-54-00-f0-0d-03', cfg], { timeoutMs: 30_000 });
    const g = await guests.start({ name: 'bootenv-pxelinux', memoryMiB: 1536, net: { mac, tftpDir: tftp, bootfile: 'lpxelinux.0', boot: true }, disks: [{ size: '1G', bus: 'virtio' }] });
    await g.waitFor(/PXELINUX/, { timeoutMs: 180_000, what: 'pxelinux to start' });
    await g.waitFor(/ferry-init: starting ferry-installer run/, { timeoutMs: 600_000, what: 'the init to start the installer' });
    expect(g.console).toContain(`ferry.token=${armed.token} BOOTIF=01-52-54-00-f0-0d-03`);
    const first = await firstEvent(srv, armed.id);
    expect(first.phase).toBe('identify');
  });
});

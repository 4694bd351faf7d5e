/**
 * A disk written on the host boots (issue 17): SystemImager's own generated layout, which has no
 * <bootloader> (fixture 06: msdos, /boot ext4, swap on a logical partition, / xfs), installed
 * on this host with `ferry install --disk LOOPDEV --yes` (the sample image, the image's own
 * GRUB onto the one disk), then that loop device's backing file booted as a BIOS guest's only
 * disk. It reaches its login prompt with /boot and swap mounted by the UUIDs fstab names, and
 * the kernel command line names the root by UUID (GRUB on a host without udev wrote
 * root=/dev/loopNpM, which the guest does not have). One boot; KVM when the probe allows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { FERRY, FerryEnv, loginAsRoot, REPO } from './ferry-env.js';
import { GuestSet } from './harness.js';

const MIN = 60_000;
const FIXTURE = join(REPO, 'test/fixtures/systemimager-layouts/06-systeminstaller-generated-2018-no-bootloader.xml');

describe('a disk written on the host', () => {
  const guests = new GuestSet();
  let env: FerryEnv;
  let failed = false;
  let loop: string | undefined;

  beforeAll(async () => {
    env = await FerryEnv.start({ hostInstall: true });
    await env.importSample('sample');
  }, 20 * MIN);
  afterEach(async (ctx) => {
    const f = ctx.task.result?.state === 'fail';
    failed ||= f;
    await guests.closeAll(f);
  });
  afterAll(async () => {
    if (loop) await run(['losetup', '-d', loop]).catch(() => {});
    await env?.close(failed);
  });

  it('fixture 06 via ferry install --disk onto a loop device boots in a guest by UUID to its login prompt', async () => {
    const t0 = Date.now();
    const say = (what: string) => process.stderr.write(`[vm host-disk] ${what} after ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    const file = join(env.dataDir, 'host-disk.img');
    await run(['truncate', '-s', '4G', file]);
    loop = (await run(['losetup', '-f', '--show', '-P', file])).stdout.trim();
    await env.ferry('node', 'add', 'hostdisk', '--mac', '52:54:00:17:06:01', '--image', 'sample', '--layout', FIXTURE, '--set', 'hostname=hostdisk');
    const r = await run([FERRY, 'install', '--server', env.server.url, '--node', 'hostdisk', '--data', env.dataDir, '--disk', loop, '--yes'], { timeoutMs: 15 * MIN, okCodes: [0, 1, 2] });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    say('host install');
    // What the guest will read: fstab's UUIDs and grub.cfg, straight from the disk (blkid -p).
    const uuid = async (dev: string) => (await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', dev])).stdout.trim();
    const [boot, swap, root] = [await uuid(`${loop}p1`), await uuid(`${loop}p5`), await uuid(`${loop}p6`)];
    await run(['losetup', '-d', loop]);
    loop = undefined;

    const g = await guests.start({ name: 'host-disk', firmware: 'bios', memoryMiB: 1024, net: false, disks: [{ file, format: 'raw', bus: 'virtio' }] });
    await g.waitFor(/^hostdisk login:/m, { timeoutMs: 10 * MIN, what: 'the login prompt of the disk written on the host', failOn: /Kernel panic|emergency mode|ALERT!/ });
    say('login prompt');
    await loginAsRoot(g, 'hostdisk');
    const cmdline = (await g.sh('cat /proc/cmdline')).trim();
    expect(cmdline).toMatch(new RegExp(`(^|\\s)root=UUID=${root}(\\s|$)`));
    expect(cmdline).not.toMatch(/root=\/dev\/loop/);
    const fstab = await g.sh('cat /etc/fstab');
    expect(fstab).toMatch(new RegExp(`^UUID=${boot}\\s+/boot\\s`, 'm'));
    expect(fstab).toMatch(new RegExp(`^UUID=${swap}\\s+none\\s+swap`, 'm'));
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /')).trim()).toMatch(/^\/dev\/vda6\s+xfs$/);
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /boot')).trim()).toMatch(/^\/dev\/vda1\s+ext4$/);
    expect(await g.sh('cat /proc/swaps')).toMatch(/^\/dev\/vda5\s/m);
    expect((await g.sh('systemctl is-system-running || true')).trim()).not.toMatch(/maintenance|degraded/);
    say('checked');
  });
});

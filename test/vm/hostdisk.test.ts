/**
 * A disk written on the host boots (issue 17): `ferry install --disk` onto a loop device with
 * SystemImager's own generated layout (fixture 06: no <bootloader>, so the one disk holding
 * /boot gets GRUB) and the sample image, on this host, which has no udev; then that disk is the
 * only disk of a BIOS guest, which must come up from it to its login prompt with the root named
 * by UUID on its kernel command line (GRUB alone would have written root=/dev/loopNp6).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { FERRY, loginAsRoot, REPO, sampleImageTarball } from './ferry-env.js';
import { GuestSet } from './harness.js';

const MIN = 60_000;
const FIXTURE = join(REPO, 'test', 'fixtures', 'systemimager-layouts', '06-systeminstaller-generated-2018-no-bootloader.xml');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('a disk written on the host', () => {
  const guests = new GuestSet();
  let server: RunningServer | undefined;
  let dir: string | undefined;
  let loop: string | undefined;
  let failed = false;

  afterAll(async () => {
    if (loop) await run(['losetup', '-d', loop]).catch(() => {});
    await guests.closeAll(failed);
    await server?.close();
    if (dir && !failed && process.env.FERRY_VM_KEEP !== '1') await rm(dir, { recursive: true, force: true });
  });

  it('ferry install --disk onto a loop device, then boots in a BIOS guest with root=UUID', async () => {
    failed = true;
    dir = await mkdtemp(join(tmpdir(), 'ferry-hostdisk-'));
    const data = join(dir, 'data');
    const port = await freePort();
    server = await startServer({ dataDir: data, listen: `127.0.0.1:${port}`, publicUrl: `http://127.0.0.1:${port}` });
    const ferry = async (...args: string[]) => (await run([FERRY, ...args, '--data', data], { timeoutMs: 15 * MIN })).stdout;
    await ferry('image', 'import', 'sample', '--tar', await sampleImageTarball(), '--customizations', join(REPO, 'scripts', 'sample-image', 'customizations.json'));
    // SystemImager's generated file, unchanged: 500 MB /boot, 512 MB swap, xfs / taking the rest.
    expect(readFileSync(FIXTURE, 'utf8')).not.toContain('<bootloader');
    await ferry('node', 'add', 'usb1', '--mac', '52:54:00:17:06:01', '--image', 'sample', '--layout', FIXTURE, '--set', 'hostname=ferry-usb');

    const disk = join(dir, 'disk.img');
    writeFileSync(disk, '');
    await run(['truncate', '-s', '3G', disk]);
    loop = (await run(['losetup', '-f', '--show', '-P', disk])).stdout.trim();
    const t0 = Date.now();
    const out = await run([FERRY, 'install', '--server', `http://127.0.0.1:${port}`, '--node', 'usb1', '--data', data, '--disk', loop, '--yes'], { timeoutMs: 15 * MIN });
    process.stderr.write(`[vm hostdisk] host install took ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    expect(existsSync('/dev/disk/by-uuid'), 'this host has udev links: the test would not show the fix').toBe(false);
    const rootUuid = (await run(['blkid', '-p', '-s', 'UUID', '-o', 'value', `${loop}p6`])).stdout.trim();
    expect(rootUuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.stdout + out.stderr).toMatch(new RegExp(`root=${loop}p6 became root=UUID=${rootUuid}`));
    await run(['losetup', '-d', loop]);
    loop = undefined;

    // The disk alone, in a BIOS guest with no network: GRUB from the MBR, then the system.
    const g = await guests.start({ name: 'hostdisk', firmware: 'bios', memoryMiB: 1024, disks: [{ file: disk, format: 'raw', bus: 'virtio' }], net: false });
    await g.waitFor(/^ferry-usb login:/m, { timeoutMs: 6 * MIN, what: 'the login prompt of the system written on the host' });
    process.stderr.write(`[vm hostdisk] login prompt after ${((Date.now() - g.startedAt) / 1000).toFixed(0)} s\n`);
    await loginAsRoot(g, 'ferry-usb');
    const cmdline = await g.sh('cat /proc/cmdline');
    expect(cmdline).toMatch(new RegExp(`(^|\\s)root=UUID=${rootUuid}(\\s|$)`));
    expect((await g.sh('findmnt -n -o SOURCE,FSTYPE /')).trim()).toMatch(/^\/dev\/vda6\s+xfs$/);
    failed = false;
  });
});

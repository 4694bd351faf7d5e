import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxInitrd, ensureDebianKernel, GuestSet, probeKvm, SHELL_READY, type DebianKernel } from './harness.js';

// The harness itself: boot Debian's kernel with a busybox initrd straight into a shell on the
// serial console, drive it, and read disks on the three buses from inside the guest.
describe('vm harness', () => {
  const guests = new GuestSet();
  let kernel: DebianKernel;
  let work: string;
  let initrd: string;

  beforeAll(async () => {
    kernel = await ensureDebianKernel();
    work = await mkdtemp(join(tmpdir(), 'ferry-harness-test-'));
    initrd = await buildBusyboxInitrd({ kernel, out: join(work, 'initrd.img'), modules: ['virtio_pci', 'virtio_blk', 'nvme', 'ahci', 'sd_mod'] });
  });
  afterEach(async (ctx) => guests.closeAll(ctx.task.result?.state === 'fail'));
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('boots a kernel and initrd to a shell and runs commands with their output and status', async () => {
    const g = await guests.start({
      name: 'harness-shell',
      memoryMiB: 512,
      net: false,
      kernel: { kernel: kernel.vmlinuz, initrd, append: 'console=ttyS0 no_timer_check quiet panic=-1' },
      disks: [
        { size: '64M', bus: 'virtio', serial: 'VIRTDISK' },
        { size: '96M', bus: 'nvme', serial: 'NVMEDISK' },
        { size: '128M', bus: 'sata', serial: 'SATADISK', format: 'raw' },
      ],
    });
    await g.waitFor(new RegExp(SHELL_READY), { timeoutMs: 120_000, what: 'the busybox shell' });
    const u = await g.exec('uname -r');
    expect(u.status).toBe(0);
    expect(u.output.trim()).toBe(kernel.version);
    const f = await g.exec('ls /nonexistent-path');
    expect(f.status).not.toBe(0);
    expect(f.output).toMatch(/No such file/);
    // NVMe and AHCI probe asynchronously: a bounded wait for the three block devices.
    await g.sh('for i in $(seq 100); do [ -e /sys/block/vda ] && [ -e /sys/block/nvme0n1 ] && [ -e /sys/block/sda ] && break; sleep 0.1; done');
    // Sizes in 512-byte sectors, by bus: virtio → vda, NVMe → nvme0n1, SATA → sda.
    const sizes = await g.sh('cat /sys/block/vda/size /sys/block/nvme0n1/size /sys/block/sda/size', { timeoutMs: 60_000 });
    expect(sizes.trim().split(/\s+/).map(Number)).toEqual([(64 << 20) / 512, (96 << 20) / 512, (128 << 20) / 512]);
    // Write on the raw SATA disk in the guest, read it back on the host after power-off.
    await g.sh('echo ferry-harness-was-here | dd of=/dev/sda bs=512 count=1 conv=sync,fsync 2>/dev/null');
    g.send('poweroff -f\n');
    const exit = await g.wait({ timeoutMs: 60_000, what: 'the guest to power off' });
    expect(exit.code).toBe(0);
    const { readFile } = await import('node:fs/promises');
    const head = (await readFile(g.disks[2].file)).subarray(0, 22).toString();
    expect(head).toBe('ferry-harness-was-here');
  });

  // Network boot through QEMU's TFTP and iPXE, on BIOS and UEFI, is how every install of the e2e
  // and demo tests starts (UEFI: e2e uefi1; BIOS: the demo and the pair test), so the harness has
  // no boot of its own for it.

  it('names what it waited for and keeps the guest files when a wait times out', async () => {
    const g = await guests.start({ name: 'harness-timeout', memoryMiB: 256, net: false, kernel: { kernel: kernel.vmlinuz, initrd, append: 'console=ttyS0 no_timer_check quiet' } });
    await g.waitFor(new RegExp(SHELL_READY), { timeoutMs: 120_000, what: 'the busybox shell' });
    const err = await g.waitFor(/this text never appears/, { timeoutMs: 1500, what: 'a line that never comes' }).catch((e) => e);
    expect(err.code).toBe('FERRY_E_TIMEOUT');
    expect(err.message).toMatch(/a line that never comes/);
    expect(err.message).toContain(SHELL_READY); // the console tail
    expect(err.message).toContain(g.dir);
    // How busy QEMU was during the wait tells a hang from slowness: an idle shell is idle…
    expect(err.message).toMatch(/the console has been silent for \d+ s; QEMU used \d+ s of CPU in the 2 s wait: the guest was mostly idle/);
    // …and a guest spinning in a loop is not.
    g.send('while :; do :; done &\n');
    const busy = await g.waitFor(/this text never appears/, { timeoutMs: 4000, what: 'a line that never comes' }).catch((e) => e);
    expect(busy.message).toMatch(/QEMU used \d+ s of CPU in the 4 s wait: the guest was (running|partly busy)/);
    await g.close({ keep: true });
    expect(existsSync(join(g.dir, 'console.log'))).toBe(true);
    await rm(g.dir, { recursive: true, force: true });
  });

  it('probes KVM and says why it is or is not usable', async () => {
    const p = await probeKvm(20_000);
    if (!existsSync('/dev/kvm')) {
      expect(p).toEqual({ usable: false, reason: '/dev/kvm does not exist' });
    } else {
      expect(p.reason).toMatch(p.usable ? /reached its shell/ : /not writable|did not boot/);
    }
  });
});

/**
 * Acceleration: TCG unless a short KVM probe boot succeeds under a deadline (on the project's
 * machines /dev/kvm is absent or KVM guests hang, see MACHINE-NOTES). FERRY_VM_ACCEL=tcg|kvm
 * forces a choice.
 */
import { existsSync, readFileSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchGuest, type Guest } from './guest.js';
import { buildBusyboxInitrd, SHELL_READY } from './initrd.js';
import { CACHE_DIR, ensureDebianKernel } from './kernel.js';

export interface KvmProbe {
  usable: boolean;
  reason: string;
}

let accelChoice: Promise<'tcg' | 'kvm'> | undefined;

export async function probeKvm(timeoutMs = 20_000): Promise<KvmProbe> {
  if (!existsSync('/dev/kvm')) return { usable: false, reason: '/dev/kvm does not exist' };
  try {
    await fsp.access('/dev/kvm', 2 /* W_OK */);
  } catch {
    return { usable: false, reason: '/dev/kvm is not writable' };
  }
  const kernel = await ensureDebianKernel();
  const work = await fsp.mkdtemp(join(tmpdir(), 'ferry-kvm-probe-'));
  const initrd = await buildBusyboxInitrd({ kernel, out: join(work, 'initrd.img') });
  let g: Guest | undefined;
  try {
    g = await launchGuest({ name: 'kvm-probe', memoryMiB: 256, kernel: { kernel: kernel.vmlinuz, initrd, append: 'console=ttyS0 no_timer_check quiet' }, net: false, baseDir: work }, 'kvm');
    await g.waitFor(new RegExp(SHELL_READY), { timeoutMs, what: 'the KVM probe guest to reach its shell' });
    return { usable: true, reason: 'a KVM guest reached its shell' };
  } catch (e) {
    return { usable: false, reason: `a KVM guest did not boot: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    await g?.close();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

/**
 * The probe's verdict for this boot of the host: every vm test file runs in its own process, and a
 * probe of a KVM that hangs costs its whole deadline, so the first file's verdict is kept in the
 * cache under the kernel's boot id (KVM does not become usable or unusable without a reboot).
 */
async function probeOncePerBoot(): Promise<KvmProbe & { cached?: boolean }> {
  const file = join(CACHE_DIR, 'kvm-probe.json');
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as KvmProbe & { bootId: string };
    if (c.bootId === bootId && typeof c.usable === 'boolean') return { usable: c.usable, reason: c.reason, cached: true };
  } catch {
    // no verdict yet, or an unreadable one: probe
  }
  const p = await probeKvm();
  await fsp.mkdir(CACHE_DIR, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fsp.writeFile(tmp, JSON.stringify({ bootId, ...p }) + '\n');
  await fsp.rename(tmp, file);
  return p;
}

export function chooseAccel(): Promise<'tcg' | 'kvm'> {
  const forced = process.env.FERRY_VM_ACCEL;
  if (forced === 'tcg' || forced === 'kvm') return Promise.resolve(forced);
  accelChoice ??= probeOncePerBoot().then((p) => {
    process.stderr.write(`[vm harness] accel ${p.usable ? 'kvm' : 'tcg'}: ${p.reason}${p.cached ? ' (probed earlier in this boot of the host)' : ''}\n`);
    return p.usable ? 'kvm' : 'tcg';
  });
  return accelChoice;
}

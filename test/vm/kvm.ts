/**
 * Acceleration: TCG unless a short KVM probe boot succeeds under a deadline (on the project's
 * machines /dev/kvm is absent or KVM guests hang, see MACHINE-NOTES). FERRY_VM_ACCEL=tcg|kvm
 * forces a choice.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchGuest, type Guest } from './guest.js';
import { buildBusyboxInitrd, SHELL_READY } from './initrd.js';
import { ensureDebianKernel } from './kernel.js';

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

export function chooseAccel(): Promise<'tcg' | 'kvm'> {
  const forced = process.env.FERRY_VM_ACCEL;
  if (forced === 'tcg' || forced === 'kvm') return Promise.resolve(forced);
  accelChoice ??= probeKvm().then((p) => {
    process.stderr.write(`[vm harness] accel ${p.usable ? 'kvm' : 'tcg'}: ${p.reason}\n`);
    return p.usable ? 'kvm' : 'tcg';
  });
  return accelChoice;
}

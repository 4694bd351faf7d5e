/**
 * The QEMU harness of the vm test tier: start guests (test/vm/guest.ts: the QEMU process and
 * its serial console; test/vm/qemu.ts: its command line) under the acceleration the KVM probe
 * chose (test/vm/kvm.ts), and the pieces of a small guest of its own: Debian's kernel
 * (test/vm/kernel.ts) and a busybox initrd (test/vm/initrd.ts, written with initrd/cpio.ts and
 * initrd/modules.ts). Tests import everything from here.
 */
import { launchGuest, type Guest } from './guest.js';
import type { GuestOptions } from './qemu.js';
import { chooseAccel } from './kvm.js';

export * from './guest.js';
export * from './initrd.js';
export * from './kernel.js';
export * from './kvm.js';
export * from './qemu.js';

/** Start a guest: with opts.accel 'auto' (the default), KVM only when the probe boot succeeded. */
export async function startGuest(opts: GuestOptions): Promise<Guest> {
  const accel = opts.accel === 'tcg' || opts.accel === 'kvm' ? opts.accel : await chooseAccel();
  return launchGuest(opts, accel);
}

/**
 * Guests started by one test file; `closeAll` keeps the directories of a failed test, and of
 * every test when FERRY_VM_KEEP=1 (to read a passing run's console, say where its time went).
 */
export class GuestSet {
  private guests: Guest[] = [];
  async start(opts: GuestOptions): Promise<Guest> {
    const g = await startGuest(opts);
    this.guests.push(g);
    return g;
  }
  async closeAll(failed: boolean): Promise<void> {
    const gs = this.guests;
    this.guests = [];
    const keep = failed || process.env.FERRY_VM_KEEP === '1';
    for (const g of gs) await g.close({ keep });
  }
}

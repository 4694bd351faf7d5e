/**
 * What the installed system needs from its image to come up on this disk plan: the tools its
 * initramfs and boot scripts use to assemble RAID arrays and activate LVM volume groups.
 *
 * An image without them installs without a single error and then fails at its first boot (the
 * initramfs cannot find the root, or the fstab mounts drop the machine into emergency mode),
 * far from the cause. So the installer checks right after unpacking the image, before the
 * customization and the bootloader, and stops with the missing package named: the node stays
 * armed, the machine does not reboot into a system that cannot start.
 */
import { FerryError } from '../common/errors.js';
import type { TargetView } from './customize/plan.js';
import type { DiskPlan } from './disk/index.js';

export interface BootNeed {
  /** The program the installed system runs at boot. */
  tool: string;
  /** The Debian package that provides it (the RPM one is named the same). */
  package: string;
  /** Which part of the plan needs it, in words. */
  why: string;
}

const SBIN_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** The boot-time tools a disk plan needs, in the order the plan uses them. */
export function bootNeeds(plan: Pick<DiskPlan, 'raids' | 'volumeGroups'>): BootNeed[] {
  const needs: BootNeed[] = [];
  if (plan.raids.length) {
    needs.push({ tool: 'mdadm', package: 'mdadm', why: `to assemble the RAID array${plan.raids.length > 1 ? 's' : ''} ${plan.raids.map((r) => r.device).join(', ')}` });
  }
  if (plan.volumeGroups.length) {
    needs.push({ tool: 'lvm', package: 'lvm2', why: `to activate the LVM volume group${plan.volumeGroups.length > 1 ? 's' : ''} ${plan.volumeGroups.map((v) => v.name).join(', ')}` });
  }
  return needs;
}

/** The needs the unpacked image does not meet. */
export function missingBootNeeds(plan: Pick<DiskPlan, 'raids' | 'volumeGroups'>, view: Pick<TargetView, 'exists'>): BootNeed[] {
  return bootNeeds(plan).filter((n) => !SBIN_DIRS.some((d) => view.exists(`${d}/${n.tool}`)));
}

/** Throws FERRY_E_IMAGE_CANNOT_BOOT when the image lacks a tool the disk plan needs at boot. */
export function checkBootNeeds(plan: Pick<DiskPlan, 'raids' | 'volumeGroups'>, view: Pick<TargetView, 'exists'>, image: string): void {
  const missing = missingBootNeeds(plan, view);
  if (!missing.length) return;
  const pkgs = missing.map((n) => n.package);
  const list = missing.map((n) => `${n.tool} (package ${n.package}) ${n.why}`).join('; ');
  throw new FerryError('FERRY_E_IMAGE_CANNOT_BOOT', `the image ${image} cannot boot from this layout: it has no ${list}`, {
    details: { image, missing },
    hint: `add ${pkgs.join(' and ')} to the image (ferry image export ${image} DIR; chroot DIR apt-get install ${pkgs.join(' ')}; ferry image commit ${image} DIR), or give the node a layout without ${missing.map((n) => (n.tool === 'mdadm' ? 'RAID' : 'LVM')).join(' or ')}`,
  });
}

/**
 * What a disk plan needs from the machine that applies it: kernel modules (md and its RAID
 * level, device-mapper, each file system type to be made and mounted) and the programs the plan
 * and the stages after it run on the node. Pure: the installer (installer/disk/support.ts) checks
 * each need on the node after discovery and before the first write, and reports every missing
 * one at once, with the disks untouched.
 *
 * Tools come from the plan's own steps (so a new step kind cannot be forgotten here) and the
 * installer's stages after the disks (chroot for the image's own grub-install and customization,
 * the mounts for it, sync and the finish action); each is named with its Debian package from the
 * one tool table (common/run.ts TOOLS). Programs run inside the installed image (grub-install,
 * efibootmgr, update-initramfs) are the image's and checked after it is unpacked (boot-needs.ts,
 * bootloader.ts).
 */
import { TOOLS } from '../common/run.js';
import { FS_MODULES } from './filesystems.js';
import { RAID_MODULE } from './raid.js';
import type { DiskPlan } from './types.js';

export interface ModuleNeed {
  /** The module modprobe loads (md_mod, raid1, dm_mod, ext4, vfat). */
  module: string;
  /** The file system type the kernel registers for it (/proc/filesystems), for file system modules. */
  fs?: string;
  /** Which part of the plan needs it, in words. */
  why: string;
}

export interface ToolNeed {
  tool: string;
  /** The Debian package that provides it (TOOLS), when known. */
  package?: string;
  why: string;
}

export interface PlanNeeds {
  modules: ModuleNeed[];
  tools: ToolNeed[];
}

export interface NeedsOptions {
  /** What the install does at its end (reboot and poweroff are programs on the node). */
  finish?: 'reboot' | 'poweroff' | 'stay';
  /** The image is unpacked and set up after the disks (chroot, bind mounts): false for `ferry layout apply`. */
  installs?: boolean;
}

const STEP_WHY: Record<string, string> = {
  release: 'to release arrays and volumes left on the disks', modprobe: 'to load kernel modules', wipe: 'to clear old signatures',
  partition: 'to write the partition tables', rescan: 'to have the kernel read the new partitions', raid: 'to create the RAID arrays',
  lvm: 'to create the LVM volumes', mkfs: 'to make the file systems', mount: 'to mount the file systems', umount: 'to unmount the file systems',
  deactivate: 'to deactivate volume groups on failure', stop: 'to stop arrays on failure',
};

/** Pure: every kernel module and program the plan needs, each once, in the order the plan first uses it. */
export function planNeeds(plan: Pick<DiskPlan, 'steps' | 'teardown' | 'raids' | 'volumeGroups' | 'filesystems'>, opts: NeedsOptions = {}): PlanNeeds {
  const modules: ModuleNeed[] = [];
  const addModule = (m: ModuleNeed) => {
    if (!modules.some((x) => x.module === m.module)) modules.push(m);
  };
  if (plan.raids.length) {
    const names = plan.raids.map((r) => r.device).join(', ');
    addModule({ module: 'md_mod', why: `software RAID (md) for ${names}` });
    for (const r of plan.raids) addModule({ module: RAID_MODULE[r.level], why: `the ${r.level} personality for ${r.device}` });
  }
  if (plan.volumeGroups.length) addModule({ module: 'dm_mod', why: `device-mapper for the LVM volume group${plan.volumeGroups.length > 1 ? 's' : ''} ${plan.volumeGroups.map((v) => v.name).join(', ')}` });
  for (const f of plan.filesystems) {
    if (!f.format && !f.mount) continue;
    // The file system's own module (ext4 also serves ext2 and ext3); helpers such as the nls
    // code pages stay best-effort modprobe steps of the plan.
    const m = FS_MODULES[f.fs]?.[0];
    if (!m) continue;
    const existing = modules.find((x) => x.module === m);
    if (existing) existing.why += `, ${f.mountpoint}`;
    else modules.push({ module: m, fs: f.fstabType, why: `the ${f.fstabType} file system for ${f.mountpoint}` });
  }

  const tools: ToolNeed[] = [];
  const addTool = (tool: string, why: string) => {
    const t = tools.find((x) => x.tool === tool);
    if (t) {
      if (!t.why.includes(why)) t.why += `; ${why}`;
      return;
    }
    tools.push({ tool, package: TOOLS[tool]?.package, why });
  };
  for (const s of plan.steps) addTool(s.argv[0], STEP_WHY[s.kind] ?? s.kind);
  for (const s of plan.teardown) addTool(s.argv[0], 'to undo the plan after a failure');
  if (opts.installs) {
    addTool('mount', 'to bind /dev, /proc and /sys into the target');
    addTool('umount', 'to unmount the target at the end');
    addTool('chroot', "to run the image's own grub-install and customization inside the target");
    addTool('sync', 'to flush the disks at the end');
    if (opts.finish === 'reboot' || opts.finish === 'poweroff') addTool(opts.finish, `to ${opts.finish === 'reboot' ? 'reboot' : 'power off'} at the end (--finish ${opts.finish})`);
  }
  return { modules, tools };
}

/** Module names as the kernel keys them: `md-mod.ko` and `md_mod` are one module. */
export function moduleName(s: string): string {
  return s.split('/').pop()!.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** Pure: the module names of /lib/modules/KVER/modules.builtin (one path a line). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.trim()).filter(Boolean).map(moduleName));
}

/** Pure: the file system types of /proc/filesystems (`nodev\tsysfs`, `\text4`). */
export function parseProcFilesystems(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.trim().split(/\s+/).pop() ?? '').filter(Boolean));
}

/** Pure: the needed modules that are neither built in nor registered file systems, so modprobe must load them. */
export function modulesToLoad(needs: ModuleNeed[], builtin: Set<string>, filesystems: Set<string>): ModuleNeed[] {
  return needs.filter((m) => !builtin.has(moduleName(m.module)) && !(m.fs && filesystems.has(m.fs)));
}

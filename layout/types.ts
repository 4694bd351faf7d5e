// Over 400 lines on purpose: types only (the layout and plan model with its doc comments); see test/unit/module-size.test.ts.
/**
 * The data model of disk layouts and disk plans. This file is a contract: the installer
 * (stages/disks, bootloader) programs against DiskPlan, the CLI prints it as JSON.
 *
 *   SystemImager XML --parseLayout--> Layout --planDisks(layout, disks)--> DiskPlan --apply
 *
 * A Layout keeps the names the XML used (`/dev/sda6`, `/dev/md0`, `/dev/systemvg/rootlv`);
 * a DiskPlan names the devices of the machine at hand (`/dev/vda6`, `/dev/nvme0n1p6`).
 * All byte counts in a plan are plain numbers (exact up to 8 PiB), so plans are JSON.
 */
import type { Problem } from '../common/errors.js';
import type { SizeSpec } from '../common/units.js';

/** Where an element stands in the XML: `/config/disk[1]/part[2]` and its 1-based line. */
export interface Where {
  path: string;
  line?: number;
}

export type LabelType = 'msdos' | 'gpt';
export type PartType = 'primary' | 'extended' | 'logical';

/**
 * A size with Ferry's adaptive bounds. `size` is what the layout asks for; `min` is the least
 * it may shrink to on a smaller disk (default: `size`, or 1 MiB for `*`); `max` the most it may
 * grow to on a bigger one (default: `size`, unbounded for `*`); `weight` its share when several
 * sizes shrink or grow together (default 1).
 */
export interface AdaptiveSize {
  size: SizeSpec;
  /** The size as written, for messages. */
  text: string;
  min?: SizeSpec;
  max?: SizeSpec;
  weight?: number;
}

/** Ferry's disk selection hints: every hint given must match, or planning fails. */
export interface DiskMatch {
  serial?: string;
  wwn?: string;
  /** A /dev/disk/by-path name or its last component (`pci-0000:00:04.0`). */
  byPath?: string;
  /** A substring of the model, compared without case. */
  model?: string;
  /** The least size in bytes the disk must have. */
  minSize?: number;
  /** The largest size in bytes the disk may have (`hw.disk.size<=…`). */
  maxSize?: number;
}

export interface LayoutPart {
  /** `num` as written (SystemImager's minor number). */
  num: number;
  type: PartType;
  size: AdaptiveSize;
  /** GPT partition name (`p_name`; SystemImager's "-" means none). */
  name?: string;
  /** Lower-case flags: boot, esp, bios_grub, lvm, raid, swap, hidden, lba, legacy_boot… */
  flags: string[];
  lvmGroup?: string;
  raidDev?: string;
  /** SystemImager's partition id (msdos hex type), kept for capture round trips. */
  id?: string;
  where: Where;
}

export interface LayoutDisk {
  /** The device name the layout was written for (`/dev/sda`): a hint, not a truth. */
  dev: string;
  label: LabelType;
  /** The default unit of bare numbers (`unit_of_measurement`, MB when absent). */
  unit: string;
  parts: LayoutPart[];
  match: DiskMatch;
  where: Where;
}

export type RaidLevel = 'linear' | 'raid0' | 'raid1' | 'raid4' | 'raid5' | 'raid6' | 'raid10';

export interface LayoutRaid {
  /** `/dev/md0` or `/dev/md/name`. */
  name: string;
  level: RaidLevel;
  /** Member devices as the layout names them: `devices` plus partitions with `raid_dev`. */
  devices: string[];
  /** Spare members (`spare_devices` when it lists devices rather than a count). */
  spares: string[];
  /** `raid_devices` / `spare_devices` counts when given, checked against the members. */
  raidDevices?: number;
  spareDevices?: number;
  layoutAlgorithm?: string;
  /** Chunk size in KiB. */
  chunkKiB?: number;
  lvmGroup?: string;
  where: Where;
}

export interface LayoutLv {
  name: string;
  size: AdaptiveSize;
  /** Extra lvcreate arguments (`lv_options`). */
  options: string[];
  where: Where;
}

export interface LayoutVolumeGroup {
  name: string;
  /** Physical extent size in bytes (`phys_extent_size`; default 4 MiB). */
  extentSize: number;
  lvs: LayoutLv[];
  where: Where;
}

/** Types with a mkfs Ferry knows. */
export const MKFS_TYPES = ['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'fat12', 'fat16', 'fat32', 'msdos', 'swap', 'reiserfs', 'jfs'] as const;
/** Types that are only written to fstab (kernel or network file systems, removable media). */
export const FSTAB_ONLY_TYPES = [
  'proc', 'sysfs', 'devpts', 'tmpfs', 'devtmpfs', 'securityfs', 'cgroup', 'cgroup2', 'debugfs', 'efivarfs',
  'hugetlbfs', 'mqueue', 'usbfs', 'usbdevfs', 'binfmt_misc', 'nfs', 'nfs4', 'cifs', 'smbfs', 'iso9660', 'udf',
  'auto', 'none', 'bind', 'fuse', 'overlay', 'squashfs',
] as const;

/** One `fsinfo` line: a file system to make and mount, or an fstab line to keep. */
export interface LayoutFs {
  /** SystemImager's `line`: the order in fstab. */
  line?: number;
  /** The device as the layout names it (`/dev/sda6`, `/dev/md0`, `proc`). */
  realDev: string;
  /** `LABEL=…` or `UUID=…`: how fstab names it. */
  mountDev?: string;
  /** Mount point, `swap` or `none`. */
  mp: string;
  fs: string;
  options: string;
  dump: number;
  pass: number;
  /** false when `format="no"`. */
  format: boolean;
  mkfsOpts: string[];
  /** Label from `LABEL=` in mount_dev, or Ferry's `label` attribute. */
  label?: string;
  /** UUID from `UUID=` in mount_dev. */
  uuid?: string;
  comment?: string;
  where: Where;
}

export interface LayoutBootloader {
  flavor: string;
  /** `install_type`: legacy or efi; absent when not given. */
  installType?: 'legacy' | 'efi' | 'none';
  defaultEntry?: string;
  timeout?: number;
  targets: { dev: string; path?: string; where: Where }[];
  where: Where;
}

export interface Layout {
  /** sha256 of the XML text: the default seed of plans. */
  digest: string;
  file?: string;
  disks: LayoutDisk[];
  raids: LayoutRaid[];
  volumeGroups: LayoutVolumeGroup[];
  filesystems: LayoutFs[];
  bootloader?: LayoutBootloader;
  /** Legacy `<boel devstyle=…>`: read and ignored. */
  boel?: { devstyle?: string };
  /** Warnings found while reading (errors make parseLayout throw). */
  warnings: Problem[];
}

// ---------------------------------------------------------------------------------------------
// Disks present on the machine

/** A disk to plan onto: a real one (discoverDisks) or a simulated one (`--disk-size`). */
export interface DiskTarget {
  /** `/dev/vda`, `/dev/nvme0n1`, `/dev/loop3`. */
  path: string;
  /**
   * Arrays and volumes built on the disk (by path, the topmost first), as discovery found
   * them: the plan releases them before anything else.
   */
  holders?: string[];
  size: number;
  /** Logical sector size in bytes (512 or 4096). */
  sectorSize: number;
  serial?: string;
  wwn?: string;
  model?: string;
  /** /dev/disk/by-path names of this disk (udev's links, or computed from sysfs without udev). */
  byPath?: string[];
  /** /dev/disk/by-id names of this disk (udev's links, or computed from sysfs without udev). */
  byId?: string[];
  /**
   * The disk holding the medium the node booted from (a restore medium's USB stick or virtio
   * disk, removable or not): only a layout disk that names it by a hint, a /dev/disk/by-id or
   * by-path name, or `--map` is planned onto it, never one in order or by a kernel name.
   */
  bootMedium?: boolean;
  /**
   * A removable disk (USB stick, card reader: lsblk RM): only a disk the operator or the
   * layout names (--disk, --map, a hint, the same path) is planned onto it, never one in order.
   */
  removable?: boolean;
}

/** A disk found on the machine by discoverDisks(), with what tells whether it is free. */
export interface BlockDevice extends DiskTarget {
  name: string;
  /** lsblk TYPE: disk, loop… */
  type: string;
  physicalSectorSize: number;
  removable: boolean;
  readOnly: boolean;
  /** Partition table type found (gpt, dos), if any. */
  pttype?: string;
  /** Mount points of the disk and everything on it (partitions, arrays, volumes on it). */
  mountpoints: string[];
  /** Devices built on it (md arrays, dm volumes), by path, the topmost first. */
  holders: string[];
  /** Its partitions, by path. */
  partitions: string[];
  /** Signatures on the disk itself (blkid TYPE / lsblk FSTYPE). */
  fstype?: string;
}

// ---------------------------------------------------------------------------------------------
// The plan

export interface PlannedPartition {
  /** The partition number on disk (may differ from the layout's `num`, see layoutNum). */
  number: number;
  layoutNum: number;
  /** The device node: `/dev/vda1`, `/dev/nvme0n1p1`, `/dev/loop0p1`. */
  device: string;
  /** What the layout called it: `/dev/sda1`. */
  layoutDevice: string;
  type: PartType;
  /** Offset and size in bytes; start and size are multiples of 1 MiB. */
  start: number;
  size: number;
  /** In the disk's logical sectors, as given to parted. */
  startSector: number;
  endSector: number;
  name?: string;
  flags: string[];
  /** GPT only: the partition's unique GUID (PARTUUID), seeded; set by `sfdisk --part-uuid`. */
  partUuid?: string;
}

export interface PlannedDisk {
  /** The device the plan writes to. */
  path: string;
  /** The layout's name for it. */
  layoutDev: string;
  size: number;
  sectorSize: number;
  label: LabelType;
  partitions: PlannedPartition[];
  /** The table's identifier, seeded: a GPT disk GUID, or an MBR id `0x…`; set by `sfdisk --disk-id`. */
  diskId?: string;
  /** Bytes at the end left unallocated (alignment, max_size caps). */
  unallocated: number;
}

export interface PlannedRaid {
  device: string;
  layoutName: string;
  level: RaidLevel;
  members: string[];
  spares: string[];
  /** Array UUID (deterministic), as mdadm prints it (`xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`). */
  uuid: string;
  /** Usable size of the array in bytes. */
  size: number;
  /** Per-member data size in KiB as given to `mdadm --size`. */
  componentKiB: number;
}

export interface PlannedLv {
  name: string;
  vg: string;
  /** `/dev/mapper/vg-lv`: the node device-mapper creates without udev. */
  device: string;
  /** The layout's names for it (`/dev/vg/lv`, `/dev/mapper/vg-lv`). */
  layoutDevice: string;
  extents: number;
  size: number;
}

export interface PlannedVolumeGroup {
  name: string;
  pvs: string[];
  /**
   * The PV UUID of each of `pvs` (same order), seeded: `pvcreate --uuid U --norestorefile`.
   * vgcreate and lvcreate take no UUID, so VG and LV UUIDs stay LVM's random ones.
   */
  pvUuids: string[];
  extentSize: number;
  /** Extents available in the group. */
  extents: number;
  lvs: PlannedLv[];
}

export interface PlannedFilesystem {
  /** The device to make it on (resolved), or the fstab source for fstab-only entries. */
  device: string;
  layoutDevice: string;
  /** The type as the layout wrote it (fat32) and as the kernel and fstab know it (vfat). */
  fs: string;
  fstabType: string;
  uuid?: string;
  label?: string;
  /** Mount point; `none` for swap. */
  mountpoint: string;
  options: string;
  dump: number;
  pass: number;
  /** Made by this plan (false for format="no" and fstab-only entries). */
  format: boolean;
  /** Mounted under the target root by applyDiskPlan. */
  mount: boolean;
  /** Size of the device in bytes when the plan creates it. */
  size?: number;
}

/** What the bootloader stage must install, with devices resolved to this machine. */
export interface BootloaderRequest {
  /** bios, uefi, none (layout says no bootloader), or undefined (layout says nothing: detect). */
  mode: 'bios' | 'uefi' | 'none' | undefined;
  flavor?: string;
  /** Disks (BIOS: where the boot code goes) or the ESP partition (UEFI), resolved. */
  targets: string[];
  /** The EFI system partition device and where it is mounted in the target, when there is one. */
  esp?: { device: string; mountpoint?: string };
  /** The device of the root file system. */
  rootDevice?: string;
  /**
   * The root file system's UUID, for `root=UUID=…` on the kernel command line; not for a
   * logical volume (its /dev/mapper name is stable and the initramfs activates it by name).
   */
  rootUuid?: string;
  defaultEntry?: string;
  timeout?: number;
}

/**
 * What a step does. Setup, in this order: `release` (stop arrays and volumes an earlier install
 * left on the disks), `modprobe`, `wipe`, `partition`, `rescan` (have the kernel read the new
 * table), `raid`, `lvm`, `mkfs`, `mount`. Teardown: `umount`, `deactivate` (volume groups),
 * `stop` (arrays).
 */
export type StepKind = 'release' | 'modprobe' | 'wipe' | 'partition' | 'rescan' | 'raid' | 'lvm' | 'mkfs' | 'mount' | 'umount' | 'deactivate' | 'stop';

/** Stands for the target root in the argv of mount steps (`mount -t ext4 /dev/vda2 $ROOT/boot`). */
export const TARGET_ROOT = '$ROOT';

/** One command of a plan; applyDiskPlan runs them in order. */
export interface PlanStep {
  kind: StepKind;
  argv: string[];
  /** The device this step writes to (disk, partition, array, volume). */
  device?: string;
  /**
   * Device nodes that must exist after this step before the next one starts; a planned
   * partition must also have the planned start and size in the kernel's view.
   */
  waitFor?: string[];
  /** A failure is logged and tolerated (modprobe on a kernel with built-in drivers, partx). */
  mayFail?: boolean;
  /** Extra environment (DM_DISABLE_UDEV=1 for LVM without udev). */
  env?: Record<string, string>;
  /** mount and umount: the mount point inside the target root (argv names it under $ROOT). */
  mountpoint?: string;
  /** Run only when this holds: `device` is present, or `mountpoint` is mounted under the root. */
  when?: 'present' | 'mounted';
  /** Teardown steps: the index in `steps` of the setup step this one undoes. */
  undoes?: number;
  /** Why, for people reading the plan. */
  comment?: string;
}

export interface PlannedMount {
  device: string;
  mountpoint: string;
  fstype: string;
}

export interface DiskPlan {
  seed: string;
  layoutDigest: string;
  disks: PlannedDisk[];
  raids: PlannedRaid[];
  volumeGroups: PlannedVolumeGroup[];
  filesystems: PlannedFilesystem[];
  /** Kernel modules the layout needs (loaded by modprobe steps). */
  modules: string[];
  /** Every command that sets the disks up, in order, mounts under the target root last. */
  steps: PlanStep[];
  /** Every argv of `steps`, in order: the plan's commands. */
  commands: string[][];
  /** What undoes the steps, in reverse: unmounts, then volume groups, then arrays. */
  teardown: PlanStep[];
  /** Mounts under the target root, parents first. */
  mounts: PlannedMount[];
  /** The target's /etc/fstab. */
  fstab: string;
  /** The target's /etc/mdadm/mdadm.conf ARRAY lines, when there are arrays. */
  mdadmConf?: string;
  bootloader: BootloaderRequest;
  /** Layout device name → device on this machine, for every disk, partition, array and volume. */
  deviceMap: Record<string, string>;
  warnings: Problem[];
}

export interface PlanOptions {
  /** Operator mapping of layout disks onto devices: {"/dev/sda": "/dev/vda"}. */
  map?: Record<string, string>;
  /** Seed of every UUID in the plan; default the layout's digest. */
  seed?: string;
  /** The disks were chosen by the operator (--disk): a removable one among them may be used in order. */
  chosenDisks?: boolean;
}

export interface ApplyOptions {
  /** Target root under which the file systems are mounted. */
  root: string;
  /** The operator confirmed destroying the disks' contents. Required. */
  yes: boolean;
  progress?: (e: import('../common/progress.js').ProgressEvent) => void;
  /** Deadline for each device node to appear (default 20 s). */
  nodeTimeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------
// The functions of installer/disk/index.ts, as types (the contract the installer codes against)

/** Block devices of this machine that a layout may be installed onto (lsblk). */
export type DiscoverDisksFn = (opts?: { only?: string[] }) => Promise<BlockDevice[]>;
/** Pure: map the layout's disks onto `disks`, size everything, and return the plan. */
export type PlanDisksFn = (layout: Layout, disks: DiskTarget[], opts?: PlanOptions) => DiskPlan;
/** Run a plan: partitions, RAID, LVM, mkfs, then mounts under opts.root. */
export type ApplyDiskPlanFn = (plan: DiskPlan, opts: ApplyOptions) => Promise<void>;
/** Undo applyDiskPlan's mounts and stop its arrays and volume groups (data stays). */
export type TeardownDiskPlanFn = (plan: DiskPlan, root: string) => Promise<void>;

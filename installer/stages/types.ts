/**
 * The stages' one small interface and the context they share. Each stage is a module in this
 * folder; installer/install.ts runs them in order and reports them.
 */
import type { MediumManifest } from '../../common/medium.js';
import type { ProgressEvent } from '../../common/progress.js';
import type { FinishAction, InstallConfig } from '../../common/protocol.js';
import type { PHASES, ProgressSink } from '../../common/progress.js';
import type { ServerClient } from '../client.js';
import type { ApplyDiskPlanFn, DiscoverDisksFn, DiskPlan, Layout, PlanDisksFn, TeardownDiskPlanFn } from '../disk/index.js';
import type { Backoff } from '../retry.js';
import type { TargetRoot } from '../../layers/target.js';

export interface InstallOptions {
  server: string;
  token: string;
  /** BOOTIF from the kernel command line, or a MAC. */
  bootif?: string;
  /** Only these disks may be planned onto (`ferry install --disk`). */
  disks?: string[];
  /** Install into this existing directory instead of partitioning disks (no fstab, no bootloader disk). */
  root?: string;
  /** The operator confirmed wiping the disks. */
  yes: boolean;
  /** Seconds a torrent install keeps seeding before the reboot, at most (--seed-wait; default 180). */
  seedWaitS?: number;
  /** Overrides the deployment's finish action. */
  finish?: FinishAction;
  /**
   * The installer runs on the machine it installs (`ferry-installer run` in the boot
   * environment): it may reboot or power it off, and the firmware's boot entries are that
   * machine's to change. A host install (a USB stick, a disk image, a loop device) always stays
   * and leaves the host's own firmware entries alone.
   */
  onNode?: boolean;
  /**
   * The initramfs: false never rebuilds it, true always does (when the image has the tools);
   * undefined rebuilds only when this machine needs it (installer/customize/initramfs.ts).
   */
  initramfs?: boolean;
  /**
   * Install from this restore medium (its root directory: the mounted ISO) instead of a server:
   * the configuration from its ferry/medium.{0,1}, every layer verified before the first disk
   * write, the layers by the local transport; no events or result are sent.
   */
  medium?: string;
  /**
   * The medium's own whole-disk device (/dev/sr0, /dev/sdb; or an ISO file): a failed install's
   * record is written into its records area when it is writable (a stick, never a CD).
   */
  mediumDevice?: string;
  /** The disk(s) of the medium the node booted from: planned onto only when the layout names them exactly (mapDisks). */
  excludeDisks?: string[];
  /** Before the first disk write, show what will be erased and wait this many seconds (a medium without --unattended). */
  countdownS?: number;
  /** Where the target is mounted (default: a fresh directory under /tmp). */
  mountRoot?: string;
  backoff?: Backoff;
  heartbeatMs?: number;
  /** Lines for people (the console). */
  console?: (line: string) => void;
  /** Sees every event as it is emitted (a JSON log, tests). */
  onEvent?: ProgressSink;
}

export interface InstallContext {
  opts: InstallOptions;
  client: ServerClient;
  emit: ProgressSink;
  /** What is being done right now, for the error report. */
  doing: string;
  mac?: string;
  config?: InstallConfig;
  layout?: Layout;
  plan?: DiskPlan;
  root?: string;
  target?: TargetRoot;
  /** Whether the disk plan's mounts are up (for teardown). */
  mounted: boolean;
  /**
   * A host install's target directory bound onto itself and made shared (see the disks stage),
   * unmounted by teardown after the plan's own mounts.
   */
  sharedRoot?: string;
  disk?: DiskModule;
  finish: FinishAction;
  warnings: string[];
  /** A medium install: its description (config stage) and the events kept for its offline record. */
  medium?: MediumManifest;
  recorded?: ProgressEvent[];
  startedAt?: string;
}

export interface Stage {
  name: (typeof PHASES)[number];
  run(ctx: InstallContext): Promise<void>;
}

export interface DiskModule {
  parseLayout: (xml: string, opts?: { file?: string }) => Layout;
  discoverDisks: DiscoverDisksFn;
  planDisks: PlanDisksFn;
  applyDiskPlan: ApplyDiskPlanFn;
  teardownDiskPlan: TeardownDiskPlanFn;
}

/** The layouts side (installer/disk), loaded when disks are installed; injectable for tests. */

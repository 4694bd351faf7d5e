/**
 * A recording fake of the machine a disk plan runs on (installer/disk/host.ts), for the unit
 * tier: it records every command with its environment, and plays the effects that applying
 * waits for or checks (parted makes partition nodes with the planned geometry, mdadm and
 * lvcreate make arrays and volumes, mount and umount change what is mounted). A command can be
 * made to fail; nothing on the real machine is touched.
 */
import { FerryError } from '../../common/errors.js';
import type { SystemView } from '../../installer/disk/in-use.js';
import type { RunOptions, RunResult } from '../../common/run.js';
import type { DiskHost } from '../../installer/disk/host.js';
import type { BlockDevice, DiskPlan } from '../../layout/types.js';

export interface Recorded {
  argv: string[];
  env?: Record<string, string | undefined>;
}

export class FakeDiskHost implements DiskHost {
  readonly calls: Recorded[] = [];
  readonly devices = new Set<string>();
  readonly mounted = new Set<string>();
  readonly dirs = new Set<string>();
  /** Holders the disks have now, by disk (lsblk's view). */
  holders = new Map<string, string[]>();
  /** Commands for which this returns true exit with code 1. */
  failOn: (argv: string[]) => boolean = () => false;
  /** Set mounts (as in /proc/self/mounts) to make a disk look in use. */
  procMounts = '';

  constructor(private plan: DiskPlan, o: { holders?: Record<string, string[]> } = {}) {
    for (const d of plan.disks) this.devices.add(d.path);
    for (const [disk, hs] of Object.entries(o.holders ?? {})) {
      this.holders.set(disk, hs);
      for (const h of hs) this.devices.add(h);
    }
  }

  /** The commands run so far, as one line each. */
  lines(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }

  run = async (argv: string[], opts: RunOptions = {}): Promise<RunResult> => {
    this.calls.push({ argv, env: opts.env });
    if (this.failOn(argv)) {
      throw new FerryError('FERRY_E_COMMAND_FAILED', `command exited with code 1: ${argv.join(' ')}`, { details: { argv, exitCode: 1 } });
    }
    const [tool, ...args] = argv;
    const last = args[args.length - 1];
    if (tool === 'parted') {
      const d = this.plan.disks.find((x) => x.path === last || args.includes(x.path))!;
      for (const p of d.partitions) this.devices.add(p.device);
    } else if (tool === 'mdadm' && args[0] === '--create') this.devices.add(args[1]);
    else if (tool === 'mdadm' && args[0] === '--stop') {
      this.devices.delete(args[1]);
      this.dropHolder(args[1]);
    } else if (tool === 'lvcreate') {
      const lv = this.plan.volumeGroups.flatMap((v) => v.lvs).find((l) => l.vg === last && args[args.indexOf('-n') + 1] === l.name);
      if (lv) this.devices.add(lv.device);
    } else if (tool === 'lvchange' || tool === 'vgchange') {
      const name = last.replace('/', '-');
      for (const h of [...this.devices]) if (h.startsWith('/dev/mapper/') && (h === `/dev/mapper/${name}` || h.startsWith(`/dev/mapper/${last}-`))) {
        this.devices.delete(h);
        this.dropHolder(h);
      }
    } else if (tool === 'mount') {
      if (!this.dirs.has(last)) throw new FerryError('FERRY_E_COMMAND_FAILED', `mount: ${last}: mount point does not exist`, { details: { argv } });
      this.mounted.add(last);
    } else if (tool === 'umount') this.mounted.delete(last);
    return { argv, code: 0, stdout: '', stderr: '', durationMs: 0 };
  };

  private dropHolder(h: string): void {
    for (const [disk, hs] of this.holders) this.holders.set(disk, hs.filter((x) => x !== h));
  }

  async discover(only: string[]): Promise<BlockDevice[]> {
    this.calls.push({ argv: ['(discover)', ...only] });
    return this.plan.disks.filter((d) => only.includes(d.path)).map((d) => ({
      path: d.path, name: d.path.slice(5), type: 'disk', size: d.size, sectorSize: d.sectorSize, physicalSectorSize: d.sectorSize,
      removable: false, readOnly: false, mountpoints: [], holders: this.holders.get(d.path) ?? [], partitions: [],
    }));
  }

  isBlockDevice(p: string): boolean {
    return this.devices.has(p);
  }

  partitionGeometry(dev: string): { start: number; size: number } | undefined {
    const p = this.plan.disks.flatMap((d) => d.partitions).find((x) => x.device === dev);
    return p && { start: p.start, size: p.size };
  }

  isMountpoint(dir: string): boolean {
    return this.mounted.has(dir);
  }

  mkdir(dir: string): void {
    this.dirs.add(dir);
  }

  /** The in-use check's view: only procMounts is ever busy; no loops, holders, exclusive openers or root. */
  system(): SystemView {
    return {
      mounts: () => this.procMounts,
      swaps: () => 'Filename\tType\tSize\tUsed\tPriority\n',
      loops: () => [],
      holders: () => [],
      tryExclusive: () => undefined,
      rootDevices: () => [],
      devNumber: () => undefined,
    };
  }
}

/**
 * Run commands inside the target: /dev, /dev/pts, /proc and /sys bound in (and efivars when the
 * host has it), always unmounted again, innermost first. Mount points are resolved through the
 * target root so an image whose /proc is a symlink can't make us mount over the host's.
 */
import * as fs from 'node:fs';
import { run, type RunOptions, type RunResult } from '../common/run.js';
import { TargetRoot } from '../layers/target.js';

export interface ChrootMount {
  /** argv of the mount command (planned). */
  argv: string[];
  where: string;
}

/** The mounts, in order (pure apart from the target path resolution). */
export function planChrootMounts(t: TargetRoot, opts: { efivars?: boolean } = {}): ChrootMount[] {
  const m = (image: string, argv: (host: string) => string[]): ChrootMount => {
    const host = t.resolve(image, { follow: true, mkdirs: true });
    return { argv: argv(host), where: host };
  };
  const out = [
    m('/dev', (h) => ['mount', '--bind', '/dev', h]),
    m('/dev/pts', (h) => ['mount', '--bind', '/dev/pts', h]),
    m('/proc', (h) => ['mount', '-t', 'proc', 'proc', h]),
    m('/sys', (h) => ['mount', '--bind', '/sys', h]),
  ];
  if (opts.efivars) out.push(m('/sys/firmware/efi/efivars', (h) => ['mount', '--bind', '/sys/firmware/efi/efivars', h]));
  return out;
}

export class Chroot {
  private mounted: string[] = [];
  constructor(readonly target: TargetRoot) {}

  async enter(): Promise<void> {
    const efivars = fs.existsSync('/sys/firmware/efi/efivars/.') && fs.readdirSync('/sys/firmware/efi/efivars').length > 0;
    for (const mnt of planChrootMounts(this.target, { efivars })) {
      if (!fs.existsSync(mnt.where)) fs.mkdirSync(mnt.where, { recursive: true });
      await run(mnt.argv, { quiet: true });
      this.mounted.push(mnt.where);
    }
  }

  run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(['chroot', this.target.root, ...argv], { ...opts, env: { HOME: '/root', ...opts.env } });
  }

  async leave(): Promise<void> {
    const errors: unknown[] = [];
    while (this.mounted.length) {
      const w = this.mounted.pop()!;
      try {
        await run(['umount', w], { quiet: true });
      } catch (e) {
        // A process started in the chroot may still hold it: detach so the disk can be unmounted.
        try {
          await run(['umount', '-l', w], { quiet: true });
        } catch {
          errors.push(e);
        }
      }
    }
    if (errors.length) throw errors[0];
  }

  /** Bind the kernel file systems, run fn, and unmount again whatever happens. */
  static async with<T>(t: TargetRoot, fn: (c: Chroot) => Promise<T>): Promise<T> {
    const c = new Chroot(t);
    try {
      await c.enter();
      return await fn(c);
    } finally {
      await c.leave();
    }
  }
}

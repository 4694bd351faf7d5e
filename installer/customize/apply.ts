/**
 * Apply a customization plan to the target: every write goes through TargetRoot; commands run
 * inside the target with the kernel file systems bound (one chroot session for all of them).
 */
import * as fs from 'node:fs';
import { FerryError } from '../../common/errors.js';
import type { ProgressSink } from '../../common/progress.js';
import { tail } from '../../common/run.js';
import { Chroot } from '../chroot.js';
import { TargetRoot, lstatOrUndefined } from '../../layers/target.js';
import type { Op, TargetView } from './plan.js';

export * from './plan.js';

/** A read-only view of the installed tree for the planner. */
export function targetView(t: TargetRoot): TargetView {
  return {
    readText: (p) => {
      try {
        const st = lstatOrUndefined(t.resolve(p, { follow: true }));
        return st?.isFile() ? t.readText(p) : undefined;
      } catch {
        return undefined;
      }
    },
    exists: (p) => {
      try {
        return lstatOrUndefined(t.resolve(p, { follow: true })) !== undefined;
      } catch {
        return false;
      }
    },
    list: (dir) => {
      try {
        return fs.readdirSync(t.resolve(dir, { follow: true })).sort();
      } catch {
        return [];
      }
    },
  };
}

export async function applyCustomization(ops: Op[], t: TargetRoot, progress?: ProgressSink): Promise<void> {
  let chroot: Chroot | undefined;
  try {
    for (const op of ops) {
      if (op.op === 'warn') {
        progress?.({ phase: 'customize', state: 'warning', object: op.path, code: op.code, message: op.message });
        continue;
      }
      progress?.({ phase: 'customize', state: 'info', object: 'path' in op ? op.path : op.argv.join(' '), message: op.why });
      switch (op.op) {
        case 'write': {
          const data = op.encoding === 'base64' ? Buffer.from(op.content, 'base64') : op.content;
          t.writeFile(op.path, data, { mode: op.mode, uid: op.uid, gid: op.gid });
          break;
        }
        case 'mkdir': {
          const host = t.mkdirs(op.path, op.mode);
          fs.chownSync(host, op.uid, op.gid);
          fs.chmodSync(host, op.mode);
          break;
        }
        case 'remove':
          t.remove(op.path);
          break;
        case 'symlink':
          t.symlink(op.target, op.path);
          break;
        case 'chroot': {
          if (!chroot) {
            chroot = new Chroot(t);
            await chroot.enter();
          }
          if (op.script) t.writeFile(op.script.path, op.script.content, { mode: 0o700 });
          try {
            const r = await chroot.run(op.argv, { env: op.env, timeoutMs: 30 * 60_000 });
            const out = (r.stdout + r.stderr).trim();
            if (out) progress?.({ phase: 'customize', state: 'info', object: op.why, message: tail(out, 2000) });
          } catch (e) {
            const fe = e as FerryError;
            throw new FerryError('FERRY_E_CUSTOMIZE_COMMAND', `customization step "${op.why}" failed inside the target: ${fe.message}`, {
              details: { ...(fe.details ?? {}), step: op.why }, cause: e,
              hint: 'the command\'s own output is in details (stdoutTail, stderrTail); fix the script or the image',
            });
          } finally {
            if (op.script) t.remove(op.script.path);
          }
          break;
        }
      }
    }
  } finally {
    await chroot?.leave();
  }
}

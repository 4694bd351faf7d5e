/**
 * The target root: every write into the installed system goes through here.
 *
 * Paths are resolved one component at a time with lstat, as openat(2) with RESOLVE_IN_ROOT
 * would: `..` never climbs above the root, an absolute symlink is read as pointing inside the
 * image (as it will once the image boots), and the final component is never followed when
 * it is replaced, so a symlink planted by an image can't redirect a write to the host.
 * Node has no openat; the installer is the only writer in the root while it runs, so a
 * check-then-use on host paths is safe here (no other process races us inside the target).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FerryError } from '../common/errors.js';

const MAX_SYMLINKS = 40;

export interface ResolveOptions {
  /** Follow a symlink in the final component (reading); never when replacing it. */
  follow?: boolean;
  /** Create missing parent directories (mode 0755, root-owned). */
  mkdirs?: boolean;
}

export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

export class TargetRoot {
  readonly root: string;

  constructor(root: string) {
    this.root = fs.realpathSync(root);
  }

  /**
   * Host path of an image path. Symlinks in parent components are followed inside the root;
   * the result contains no symlink except possibly its last component (when follow is false).
   */
  resolve(p: string, opts: ResolveOptions = {}): string {
    return this.join(this.resolveParts(p, opts));
  }

  /** The same, as components under the root (for cache keys and messages). */
  resolveParts(p: string, opts: ResolveOptions = {}): string[] {
    const queue = splitPath(p);
    const out: string[] = [];
    let hops = 0;
    while (queue.length) {
      const c = queue.shift()!;
      if (c === '.') continue;
      if (c === '..') {
        out.pop();
        continue;
      }
      const last = queue.length === 0;
      out.push(c);
      if (last && !opts.follow) break;
      const host = this.join(out);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(host);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        if (last) break;
        if (opts.mkdirs) {
          fs.mkdirSync(host, 0o755);
          continue;
        }
        // Nothing below exists: the rest only needs normalising.
        for (const r of queue) {
          if (r === '..') out.pop();
          else if (r !== '.') out.push(r);
        }
        break;
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINKS) {
          throw new FerryError('FERRY_E_TARGET_SYMLINK_LOOP', `too many symbolic links resolving "${p}" inside the target root`, {
            details: { path: p, root: this.root },
            hint: 'the image contains a symlink loop on this path; fix the image',
          });
        }
        const target = fs.readlinkSync(host);
        out.pop();
        if (target.startsWith('/')) out.length = 0;
        queue.unshift(...splitPath(target));
        continue;
      }
      if (!last && !st.isDirectory()) {
        throw new FerryError('FERRY_E_TARGET_NOT_DIR', `"${out.join('/')}" is not a directory in the target, so "${p}" cannot be reached`, {
          details: { path: p, component: '/' + out.join('/'), root: this.root },
          hint: 'an earlier layer or step put a file where this path needs a directory',
        });
      }
    }
    return out;
  }

  join(parts: string[]): string {
    return parts.length ? this.root + '/' + parts.join('/') : this.root;
  }

  /** The image path of a host path inside the root (for messages). */
  imagePath(host: string): string {
    return '/' + path.relative(this.root, host);
  }

  exists(p: string): boolean {
    try {
      fs.lstatSync(this.resolve(p));
      return true;
    } catch {
      return false;
    }
  }

  lstat(p: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(this.resolve(p));
    } catch {
      return undefined;
    }
  }

  readFile(p: string): Buffer {
    return fs.readFileSync(this.resolve(p, { follow: true }));
  }

  readText(p: string): string | undefined {
    try {
      return this.readFile(p).toString('utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Write a file atomically (temporary file, then rename over the old one). A symlink at the
   * path is followed when it resolves inside the root to a regular file (keeps e.g.
   * /etc/resolv.conf -> ../run/… working as the image intends); otherwise it is replaced.
   */
  writeFile(p: string, data: string | Buffer, opts: { mode?: number; uid?: number; gid?: number } = {}): string {
    let host = this.resolve(p, { mkdirs: true });
    const st = lstatOrUndefined(host);
    if (st?.isSymbolicLink()) {
      const followed = this.resolve(p, { follow: true, mkdirs: true });
      const fst = lstatOrUndefined(followed);
      if (!fst || fst.isFile()) host = followed;
    }
    const cur = lstatOrUndefined(host);
    if (cur?.isDirectory()) {
      throw new FerryError('FERRY_E_TARGET_NOT_DIR', `cannot write file "${p}" in the target: it is a directory`, {
        details: { path: p }, hint: 'choose a file path, not a directory',
      });
    }
    const mode = opts.mode ?? (cur?.isFile() ? cur.mode & 0o7777 : 0o644);
    const uid = opts.uid ?? (cur?.isFile() ? cur.uid : 0);
    const gid = opts.gid ?? (cur?.isFile() ? cur.gid : 0);
    const tmp = path.join(path.dirname(host), `.ferry-${process.pid}-${path.basename(host)}`);
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fchownSync(fd, uid, gid);
      fs.fchmodSync(fd, mode);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, host);
    return host;
  }

  /** Create a directory and its parents inside the root. */
  mkdirs(p: string, mode = 0o755): string {
    const host = this.resolve(p, { mkdirs: true, follow: true });
    if (!lstatOrUndefined(host)) fs.mkdirSync(host, mode);
    return host;
  }

  /** Remove a path (a symlink itself, never what it points to); directories recursively. */
  remove(p: string): boolean {
    const host = this.resolve(p);
    if (host === this.root) throw new FerryError('FERRY_E_TARGET_UNSAFE', 'refusing to remove the target root itself', { details: { path: p } });
    const st = lstatOrUndefined(host);
    if (!st) return false;
    fs.rmSync(host, { recursive: st.isDirectory(), force: true });
    return true;
  }

  symlink(target: string, p: string): void {
    const host = this.resolve(p, { mkdirs: true });
    if (lstatOrUndefined(host)) this.remove(p);
    fs.symlinkSync(target, host);
  }
}

export function lstatOrUndefined(host: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(host);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

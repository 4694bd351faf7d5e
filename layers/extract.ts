/**
 * Extract one layer's tar entries into the target root, applying OCI whiteouts.
 *
 * Synchronous fs calls and a cache of resolved parent directories: measured, this is what makes
 * a Node extractor keep up with GNU tar (per-entry promises and failing mkdir calls cost more
 * than the writes). Every path goes through TargetRoot's in-root resolution, so an entry can
 * only ever touch the target: `..` in a name or link is refused, absolute names and absolute
 * symlinks are read inside the root, and the final component is replaced, never followed.
 *
 * Device nodes and fifos need mknod(2), which Node lacks; xattrs need setxattr(2), likewise.
 * Both are collected and applied at the end of the layer through the command runner (mknod,
 * `setfattr --restore`, one process for all xattrs), after ownership so that chown can't drop
 * a file capability, and before directory times so that the times stay as the layer says.
 * A deferred operation keeps the entry's archive path and the host path it resolved to; at the
 * end of the layer the archive path is resolved again, and the operation runs only if it still
 * lands on the same host path. A later entry of the same layer that replaced a parent with a
 * symlink (`a/` … `a/dev` … `a -> /etc`) would otherwise send mknod, setfattr or utimes through
 * that link onto the host; such an operation is dropped (its entry was replaced) and warned about.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FerryError } from '../common/errors.js';
import { run } from '../common/run.js';
import { TargetRoot, lstatOrUndefined } from './target.js';
import { whiteoutOf } from './path-index.js';
import { escapeGetfattr } from './getfattr.js';
import type { TarHandler } from './tar.js';
import type { TarEntry } from './tar-header.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
// Files and directories are created by this process; its ids are what a new inode gets.
const ROOT_UID = process.getuid?.() ?? 0;
const ROOT_GID = process.getgid?.() ?? 0;

export interface ExtractStats {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  devices: number;
  /** Device nodes not created (ExtractOptions.devices false). */
  skippedDevices: number;
  whiteouts: number;
  bytes: number;
}

export interface ExtractOptions {
  /**
   * Create character and block device nodes (default true: an installed system needs them).
   * False for an export an operator reads on the server: a block device node of the image
   * (`/dev/sda`, 0666) would be the server's own disk there. Fifos are created either way.
   */
  devices?: boolean;
}

interface Pending {
  /** Archive path components, resolved again when the operation runs. */
  parts: string[];
  host: string;
  e: TarEntry;
}

function unsafe(message: string, entry: string, details: Record<string, unknown> = {}): FerryError {
  return new FerryError('FERRY_E_LAYER_UNSAFE_PATH', `${message}: "${entry}"`, {
    details: { entry, ...details },
    hint: 'the layer tries to write outside the target root; rebuild it from a clean tree, and do not deploy layers from an untrusted source',
  });
}

/** Archive name → components; refuses `..` anywhere (tar's own rule for safe extraction). */
export function entryParts(name: string): string[] {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw unsafe('a layer entry name contains ".."', name);
  return parts;
}

export class Extractor implements TarHandler {
  readonly stats: ExtractStats = { entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, devices: 0, skippedDevices: 0, whiteouts: 0, bytes: 0 };
  /** Archive directory path → host directory (no symlinks in it), valid while nothing is replaced. */
  private dirs = new Map<string, string>();
  private fd = -1;
  private dirTimes: Pending[] = [];
  private nodes = new Map<string, Pending>();
  private xattrs: Pending[] = [];
  /** Host paths this layer created: an opaque whiteout removes only what lower layers left. */
  private created = new Set<string>();
  private current?: TarEntry;
  private currentHost = '';

  constructor(private target: TargetRoot, private warn: (msg: string, details?: Record<string, unknown>) => void = () => {}, private opts: ExtractOptions = {}) {}

  private parentDir(parts: string[], name: string): string {
    const key = parts.slice(0, -1).join('/');
    const hit = this.dirs.get(key);
    if (hit !== undefined) return hit;
    const host = this.target.resolve(key, { follow: true, mkdirs: true });
    const st = lstatOrUndefined(host);
    if (!st) fs.mkdirSync(host, 0o755);
    else if (!st.isDirectory()) {
      throw new FerryError('FERRY_E_TARGET_NOT_DIR', `the parent of layer entry "${name}" is not a directory in the target`, {
        details: { entry: name, parent: this.target.imagePath(host) },
        hint: 'the layers put a file where a later layer expects a directory; rebuild the image',
      });
    }
    this.dirs.set(key, host);
    return host;
  }

  /** Make room for a new entry at `host`: whatever is there goes (a directory only for a non-directory). */
  private clear(host: string, keepDir: boolean): fs.Stats | undefined {
    const st = lstatOrUndefined(host);
    if (!st) return undefined;
    if (st.isDirectory()) {
      if (keepDir) return st;
      fs.rmSync(host, { recursive: true, force: true });
      this.dirs.clear();
    } else {
      fs.unlinkSync(host);
      if (st.isSymbolicLink()) this.dirs.clear();
    }
    if (this.nodes.size) this.nodes.delete(host);
    return undefined;
  }

  entry(e: TarEntry): void {
    this.stats.entries++;
    try {
      this.entryInner(e);
    } catch (err) {
      if (err instanceof FerryError) throw err;
      throw new FerryError('FERRY_E_LAYER_EXTRACT', `could not extract layer entry "${e.path}": ${(err as Error).message}`, {
        details: { entry: e.path, type: e.type, errno: (err as NodeJS.ErrnoException).code },
        hint: 'check the free space and the file system of the target (the message names the system error)',
        cause: err,
      });
    }
  }

  private entryInner(e: TarEntry): void {
    const parts = entryParts(e.path);
    if (parts.length === 0) {
      // "./" itself: the root directory's own attributes.
      if (e.type === 'dir') {
        fs.chownSync(this.target.root, e.uid, e.gid);
        fs.chmodSync(this.target.root, e.mode);
        this.dirTimes.push({ parts: [], host: this.target.root, e });
      }
      return;
    }
    const base = parts[parts.length - 1];
    if (whiteoutOf(parts)) {
      this.whiteout(parts, e.path);
      return;
    }
    const dir = this.parentDir(parts, e.path);
    const host = dir + '/' + base;
    this.created.add(host);
    if (e.xattrs.size) this.xattrs.push({ parts, host, e });
    switch (e.type) {
      case 'file': {
        let fd: number;
        // Created with its final permission bits (umask is 0 while extracting): no fchmod
        // needed unless special bits must survive the chown.
        try {
          fd = fs.openSync(host, CREATE_FLAGS, e.mode & 0o777);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          this.clear(host, false);
          fd = fs.openSync(host, CREATE_FLAGS, e.mode & 0o777);
        }
        if (e.sparse) fs.ftruncateSync(fd, e.sparse.realSize);
        this.fd = fd;
        this.current = e;
        this.currentHost = host;
        this.stats.files++;
        return;
      }
      case 'dir': {
        let made = true;
        try {
          fs.mkdirSync(host, e.mode & 0o777);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          made = false;
          if (!this.clear(host, true)) {
            fs.mkdirSync(host, e.mode & 0o777);
            made = true;
          }
        }
        if (!made || e.uid !== ROOT_UID || e.gid !== ROOT_GID) fs.chownSync(host, e.uid, e.gid);
        if (!made || e.mode & 0o7000) fs.chmodSync(host, e.mode);
        this.dirs.set(parts.join('/'), host);
        this.dirTimes.push({ parts, host, e });
        this.stats.dirs++;
        return;
      }
      case 'symlink': {
        this.clear(host, false);
        fs.symlinkSync(e.linkname, host);
        if (e.uid !== ROOT_UID || e.gid !== ROOT_GID) fs.lchownSync(host, e.uid, e.gid);
        fs.lutimesSync(host, e.mtime, e.mtime);
        this.stats.symlinks++;
        return;
      }
      case 'link': {
        const lp = entryParts(e.linkname);
        if (lp.length === 0) throw unsafe('a hard link points at the root directory', e.path, { linkname: e.linkname });
        const src = this.target.resolve(lp.join('/'));
        const sst = lstatOrUndefined(src);
        if (!sst) {
          throw new FerryError('FERRY_E_LAYER_EXTRACT', `hard link "${e.path}" points at "${e.linkname}", which does not exist in the target`, {
            details: { entry: e.path, linkname: e.linkname },
            hint: 'a hard link must follow the file it links to in the same or a lower layer; rebuild the layer',
          });
        }
        if (sst.isDirectory()) throw unsafe('a hard link points at a directory', e.path, { linkname: e.linkname });
        if (src === host) return;
        this.clear(host, false);
        fs.linkSync(src, host);
        this.stats.hardlinks++;
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        if (e.type !== 'fifo' && this.opts.devices === false) {
          this.stats.skippedDevices++;
          return;
        }
        this.clear(host, false);
        this.nodes.set(host, { parts, host, e });
        this.stats.devices++;
        return;
      }
    }
  }

  data(chunk: Buffer, offset: number): void {
    let o = 0;
    while (o < chunk.length) o += fs.writeSync(this.fd, chunk, o, chunk.length - o, offset + o);
    this.stats.bytes += chunk.length;
  }

  entryEnd(e: TarEntry): void {
    if (e !== this.current) return;
    const fd = this.fd;
    this.fd = -1;
    this.current = undefined;
    try {
      // A new file is root's already (the installer runs as root); chown only when it differs.
      if (e.uid !== ROOT_UID || e.gid !== ROOT_GID) fs.fchownSync(fd, e.uid, e.gid);
      // After chown: chown clears setuid/setgid bits, and open() ignores them.
      if (e.mode & 0o7000) fs.fchmodSync(fd, e.mode);
      fs.futimesSync(fd, e.mtime, e.mtime);
    } catch (err) {
      throw new FerryError('FERRY_E_LAYER_EXTRACT', `could not set the attributes of "${e.path}": ${(err as Error).message}`, {
        details: { entry: e.path, host: this.currentHost }, cause: err,
        hint: 'the target file system must support Unix owners and modes (ext4, xfs, btrfs)',
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  private whiteout(parts: string[], name: string): void {
    this.stats.whiteouts++;
    const w = whiteoutOf(parts);
    const dir = this.parentDir(parts, name);
    if (w?.kind === 'opaque') {
      for (const child of fs.readdirSync(dir)) {
        const h = dir + '/' + child;
        if (!this.created.has(h)) fs.rmSync(h, { recursive: true, force: true });
      }
      this.dirs.clear();
      return;
    }
    if (w?.kind !== 'hide') throw unsafe('a whiteout names no valid file', name);
    const host = dir + '/' + parts[parts.length - 1].slice(4);
    // A whiteout hides what lower layers left; an entry of this same layer stays whatever the
    // order of the two in the stream (`-x` sorts before `.wh.-x`).
    if (this.created.has(host)) return;
    const st = lstatOrUndefined(host);
    if (!st) return;
    fs.rmSync(host, { recursive: st.isDirectory(), force: true });
    if (st.isDirectory() || st.isSymbolicLink()) this.dirs.clear();
  }

  /**
   * The host path of a deferred operation, if its archive path still resolves there inside the
   * root (parents real directories, no symlink on the way); undefined when a later entry
   * replaced a parent (the operation's entry is gone with it).
   */
  private stillAt(p: Pending, quiet = false): string | undefined {
    if (p.parts.length === 0) return this.target.root;
    let now: string | undefined;
    try {
      now = this.target.resolve(p.parts.join('/'));
    } catch {
      now = undefined;
    }
    if (now === p.host) {
      // resolve() followed any symlink in the parents; the same host path means none was met.
      const parent = lstatOrUndefined(p.host.slice(0, p.host.lastIndexOf('/')) || '/');
      if (parent?.isDirectory()) return p.host;
    }
    if (!quiet) this.warn(`layer entry "${p.e.path}" was replaced by a later entry of the same layer before it could be created; skipped`, { entry: p.e.path });
    return undefined;
  }

  /**
   * Close the file a stream left half-written (an aborted transport, a corrupt layer): its
   * descriptor would otherwise stay open and keep the target's file system busy, so that the
   * install's teardown cannot unmount it (a multicast receiver told to leave mid-file, then the
   * HTTP fallback's extraction, then `umount` EBUSY: seen in the vm tier).
   */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    this.current = undefined;
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed: nothing to release */
    }
  }

  /** Apply what Node can't do inline: device nodes, fifos, xattrs; then directory times. */
  async finish(): Promise<void> {
    if (this.fd >= 0) throw new FerryError('FERRY_E_LAYER_CORRUPT', `the layer ended inside file "${this.current?.path}"`, { hint: 'the blob is truncated; rebuild it' });
    for (const pending of this.nodes.values()) {
      const host = this.stillAt(pending);
      if (!host) continue;
      const { e } = pending;
      const mode = (e.mode & 0o7777).toString(8);
      const argv = e.type === 'fifo' ? ['mknod', '-m', mode, host, 'p'] : ['mknod', '-m', mode, host, e.type === 'char' ? 'c' : 'b', String(e.devmajor), String(e.devminor)];
      await run(argv, { quiet: true });
      fs.lchownSync(host, e.uid, e.gid);
      fs.chmodSync(host, e.mode);
      fs.utimesSync(host, e.mtime, e.mtime);
    }
    this.nodes.clear();
    if (this.xattrs.length) await this.applyXattrs();
    for (const pending of this.dirTimes) {
      const host = this.stillAt(pending, true);
      if (host && lstatOrUndefined(host)?.isDirectory()) fs.utimesSync(host, pending.e.mtime, pending.e.mtime);
    }
    this.dirTimes = [];
  }

  private async applyXattrs(): Promise<void> {
    // getfattr's dump format; names and paths escaped as octal so any byte survives.
    const lines: string[] = [];
    for (const pending of this.xattrs) {
      const host = this.stillAt(pending, true);
      if (!host || !lstatOrUndefined(host)) continue;
      const { e } = pending;
      lines.push(`# file: ${escapeGetfattr(host)}`);
      for (const [k, v] of e.xattrs) lines.push(`${escapeGetfattr(k)}=0x${v.toString('hex')}`);
      lines.push('');
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-xattr-'));
    const file = path.join(dir, 'restore');
    try {
      fs.writeFileSync(file, lines.join('\n'));
      await run(['setfattr', '-h', `--restore=${file}`], { quiet: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    this.xattrs = [];
  }
}

/**
 * Exported image trees kept for `ferry update`: one tree per image digest under
 * DATA/cache/trees/<hex>/tree, reused across nodes and runs (rsync reads it; exporting a system
 * image takes far longer than an rsync that finds little to change). A tree is made whole or
 * not at all: exported into a temporary directory beside the cache, then renamed into place, so
 * a cut export never leaves a half tree that a later update would take for the image. At most
 * `keep` trees stay (the least recently used go first); `ferry image gc` also removes the trees
 * of images that no longer exist and any temporary directory left by a cut export. A tree an
 * update is reading (a mark named by its pid) is never removed.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataDir } from '../context.js';
import { exportImage } from './image-export.js';
import type { ImageRow } from './images.js';

/** How many exported trees the cache keeps by default. */
export const DEFAULT_TREE_CACHE_KEEP = 3;

export function treeCacheDir(d: DataDir): string {
  return join(d.dir, 'cache', 'trees');
}

/** Pure: the cache entry's name for an image digest (its hex part; nothing else reaches a path). */
export function treeEntryName(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not an image digest: ${digest}`);
  return m[1];
}

/**
 * The exported tree of an image version: from the cache, or exported now and kept. The tree's
 * root has the image's own mode (the cache's directories are 0700: an image holds password
 * hashes and host keys).
 */
export async function cachedTree(d: DataDir, row: Pick<ImageRow, 'name' | 'version' | 'digest'>, o: { keep?: number } = {}): Promise<{ tree: string; reused: boolean; release: () => void }> {
  const base = treeCacheDir(d);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const entry = join(base, treeEntryName(row.digest));
  const tree = join(entry, 'tree');
  if (existsSync(tree)) {
    touch(entry);
    return { tree, reused: true, release: hold(entry) };
  }
  const tmp = mkdtempSync(join(base, '.tmp-'));
  try {
    await exportImage(d, `${row.name}@${row.version}`, join(tmp, 'tree'), { devices: false, keepRootMode: true });
    // A layer without a "./" entry leaves the export's private 0700, which rsync would give the
    // node's / (no user but root could then run anything): a system root is 0755.
    if ((statSync(join(tmp, 'tree')).mode & 0o777) === 0o700) chmodSync(join(tmp, 'tree'), 0o755);
    try {
      renameSync(tmp, entry);
    } catch (e) {
      // Another update exported the same version meanwhile: use its tree, drop ours.
      if (!existsSync(tree)) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  touch(entry);
  const release = hold(entry);
  pruneTreeCache(d, { keep: o.keep ?? DEFAULT_TREE_CACHE_KEEP, protect: [row.digest] });
  return { tree, reused: false, release };
}

/**
 * Mark a tree as read by this process (a file named by its pid beside the tree), so that pruning
 * in another update or gc leaves it while rsync reads it. A mark whose process is gone counts
 * for nothing.
 */
function hold(entry: string): () => void {
  const dir = join(entry, 'users');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mark = join(dir, `${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  writeFileSync(mark, '');
  return () => rmSync(mark, { force: true });
}

function inUse(entry: string): boolean {
  let names: string[];
  try {
    names = readdirSync(join(entry, 'users'));
  } catch {
    return false;
  }
  return names.some((n) => {
    const pid = Number(n.split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      // EPERM: the process exists (another user's); only ESRCH says it is gone.
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  });
}

function touch(p: string): void {
  const t = new Date();
  try {
    utimesSync(p, t, t);
  } catch {
    /* only the order of removal depends on it */
  }
}

/**
 * Remove trees beyond `keep` (least recently used first), trees whose digest is not in
 * `live` (when given), and temporary directories of cut exports (when `temps`). Returns the
 * entries removed.
 */
export function pruneTreeCache(d: DataDir, o: { keep: number; live?: Set<string>; protect?: string[]; temps?: boolean }): string[] {
  const base = treeCacheDir(d);
  if (!existsSync(base)) return [];
  const removed: string[] = [];
  const protect = new Set((o.protect ?? []).map(treeEntryName));
  const entries: { name: string; mtime: number; held: boolean }[] = [];
  for (const name of readdirSync(base)) {
    const p = join(base, name);
    if (name.startsWith('.tmp-')) {
      // An export still running in another process is younger than an hour (its tree grows).
      if (o.temps && Date.now() - statSync(p).mtimeMs > 3600_000) {
        rmSync(p, { recursive: true, force: true });
        removed.push(name);
      }
      continue;
    }
    if (!/^[0-9a-f]{64}$/.test(name) || !lstatSync(p).isDirectory()) continue;
    const held = protect.has(name) || inUse(p);
    if (!held && o.live && !o.live.has('sha256:' + name)) {
      rmSync(p, { recursive: true, force: true });
      removed.push(name);
      continue;
    }
    entries.push({ name, mtime: statSync(p).mtimeMs, held });
  }
  // Newest first; trees held (just made, or being read) count towards the bound but never go.
  entries.sort((a, b) => Number(b.held) - Number(a.held) || b.mtime - a.mtime);
  let kept = 0;
  for (const e of entries) {
    if (e.held || kept < o.keep) {
      kept++;
      continue;
    }
    rmSync(join(base, e.name), { recursive: true, force: true });
    removed.push(e.name);
  }
  return removed;
}

/** For `ferry image gc`: trees of images that are gone, trees beyond the bound, temporary directories. */
export function gcTreeCache(d: DataDir, keep = DEFAULT_TREE_CACHE_KEEP, dryRun = false): string[] {
  const live = new Set((d.db.prepare('SELECT DISTINCT digest FROM images').all() as { digest: string }[]).map((r) => r.digest));
  if (dryRun) {
    const base = treeCacheDir(d);
    if (!existsSync(base)) return [];
    return readdirSync(base).filter((n) => n.startsWith('.tmp-') || (/^[0-9a-f]{64}$/.test(n) && !live.has('sha256:' + n)));
  }
  return pruneTreeCache(d, { keep, live, temps: true });
}

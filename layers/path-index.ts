/**
 * The entries of a layer, kept so that the server can answer "does image version V hold path P"
 * without reading its blobs again (issue 17: arm-time checks of customization items). A layer's
 * index is its sorted entry names, each with a one-letter type, NUL-separated (a tar name cannot
 * hold a NUL: server/store/layers.ts refuses one) and deflated. An image's tree is its layers'
 * indexes applied in order with the same whiteout rules the extractor (extract.ts) applies to disk.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { EntryType } from './tar-header.js';

export interface IndexEntry {
  /** The entry's name without "./", leading or trailing slashes (`etc/motd`). */
  path: string;
  type: EntryType;
}

const LETTER: Record<EntryType, string> = { file: 'f', link: 'h', symlink: 'l', char: 'c', block: 'b', dir: 'd', fifo: 'p' };
const TYPE_OF: Record<string, EntryType> = Object.fromEntries(Object.entries(LETTER).map(([t, l]) => [l, t as EntryType]));

/** An entry name as a relative path: "./etc/motd", "etc/motd/" and "/etc/motd" are all etc/motd. */
export function indexPath(name: string): string {
  return name.split('/').filter((c) => c !== '' && c !== '.').join('/');
}

/**
 * What a whiteout entry does (OCI image spec, "Whiteouts"): `.wh..wh..opq` hides everything the
 * lower layers left in its directory, `.wh.NAME` hides NAME; undefined for any other entry. A
 * whiteout hides only what lower layers left, never an entry of its own layer. The extractor and
 * the index both decide with this.
 */
export type Whiteout = { kind: 'opaque'; dir: string } | { kind: 'hide'; victim: string } | { kind: 'invalid' };

export function whiteoutOf(parts: readonly string[]): Whiteout | undefined {
  const base = parts[parts.length - 1];
  if (base === undefined || !base.startsWith('.wh.')) return undefined;
  const dir = parts.slice(0, -1).join('/');
  if (base === '.wh..wh..opq') return { kind: 'opaque', dir };
  const victim = base.slice(4);
  if (!victim || victim === '.' || victim === '..') return { kind: 'invalid' };
  return { kind: 'hide', victim: dir ? `${dir}/${victim}` : victim };
}

/**
 * The encoding's version, stored with each index: a later encoding (symlink targets, say) makes
 * the server build older rows again from their blobs.
 */
export const INDEX_FORMAT = 1;

/** A layer's entries as stored: sorted by name, one per name (the last one of a name wins, as on disk). */
export function encodeIndex(entries: readonly IndexEntry[]): Buffer {
  const byPath = new Map<string, EntryType>();
  for (const e of entries) {
    const p = indexPath(e.path);
    if (p) byPath.set(p, e.type);
  }
  const sorted = [...byPath.keys()].sort();
  return deflateRawSync(Buffer.from(sorted.map((p) => LETTER[byPath.get(p)!] + p).join('\0')));
}

export function decodeIndex(b: Buffer): IndexEntry[] {
  const text = inflateRawSync(b).toString();
  if (!text) return [];
  return text.split('\0').map((s) => ({ type: TYPE_OF[s[0]] ?? 'file', path: s.slice(1) }));
}

/** The kinds the checks care about: a hard link is a regular file. */
export type PathKind = 'file' | 'dir' | 'symlink' | 'other';

function kindOf(t: EntryType): PathKind {
  return t === 'file' || t === 'link' ? 'file' : t === 'dir' ? 'dir' : t === 'symlink' ? 'symlink' : 'other';
}

/** The tree an image's layers make, bottom layer first: what the installer will have on disk. */
export class ImageTree {
  private paths = new Map<string, PathKind>();

  constructor(layers: readonly (readonly IndexEntry[])[]) {
    for (const layer of layers) this.apply(layer);
  }

  private removeTree(p: string): void {
    this.paths.delete(p);
    const prefix = p + '/';
    for (const k of this.paths.keys()) if (k.startsWith(prefix)) this.paths.delete(k);
  }

  private apply(layer: readonly IndexEntry[]): void {
    const own = new Set<string>();
    const entries: IndexEntry[] = [];
    const whiteouts: Whiteout[] = [];
    // The directories on the way to this layer's entries: made by it, so not hidden by its opaque whiteouts.
    const ownParents = new Set<string>();
    for (const e of layer) {
      const path = indexPath(e.path);
      if (!path) continue;
      const w = whiteoutOf(path.split('/'));
      if (w) whiteouts.push(w);
      else {
        own.add(path);
        entries.push({ path, type: e.type });
        // Up the parents until one already seen (its own parents were added with it).
        for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
          const parent = path.slice(0, i);
          if (ownParents.has(parent)) break;
          ownParents.add(parent);
        }
      }
    }
    // Whiteouts act on what the lower layers left, whatever their place in this layer's stream.
    for (const w of whiteouts) {
      if (w.kind === 'hide') {
        if (!own.has(w.victim)) this.removeTree(w.victim);
      } else if (w.kind === 'opaque') {
        const prefix = w.dir ? w.dir + '/' : '';
        for (const k of [...this.paths.keys()]) if (k.startsWith(prefix) && k !== w.dir && !own.has(k) && !ownParents.has(k)) this.paths.delete(k);
      }
    }
    for (const e of entries) {
      const kind = kindOf(e.type);
      // The extractor makes missing parents as directories: up from the nearest parent until one
      // is a directory already (entries come sorted, so that is usually the first one).
      const missing: string[] = [];
      for (let i = e.path.lastIndexOf('/'); i > 0; i = e.path.lastIndexOf('/', i - 1)) {
        const parent = e.path.slice(0, i);
        const k = this.paths.get(parent);
        if (k === 'dir' || k === 'symlink') break;
        missing.push(parent);
      }
      for (const parent of missing.reverse()) {
        if (this.paths.has(parent)) this.removeTree(parent);
        this.paths.set(parent, 'dir');
      }
      // A non-directory replaces a directory and all it held; a directory keeps its contents.
      const before = this.paths.get(e.path);
      if (before === 'dir' && kind !== 'dir') this.removeTree(e.path);
      this.paths.set(e.path, kind);
    }
  }

  /**
   * What the image has at an absolute path (`/etc/motd`), or undefined when it has nothing there.
   * The index keeps no link targets: a path below a symbolic link (`/lib/systemd/…` where `/lib`
   * is a link to `usr/lib`, as in a merged-/usr Debian) is 'symlink', something that cannot be
   * told from here, never "missing".
   */
  kind(p: string): PathKind | undefined {
    const rel = indexPath(p);
    if (!rel) return 'dir';
    const k = this.paths.get(rel);
    if (k !== undefined) return k;
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
      const up = this.paths.get(rel.slice(0, i));
      if (up === 'symlink') return 'symlink';
      if (up !== undefined) return undefined;
    }
    return undefined;
  }

  /** The names in a directory of the image (`/etc` → ['hosts', 'motd', …]). */
  list(dir: string): string[] {
    const rel = indexPath(dir);
    const prefix = rel ? rel + '/' : '';
    const out: string[] = [];
    for (const k of this.paths.keys()) if (k.startsWith(prefix) && !k.slice(prefix.length).includes('/') && k !== rel) out.push(k.slice(prefix.length));
    return out.sort();
  }

  get size(): number {
    return this.paths.size;
  }
}

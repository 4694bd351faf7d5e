/**
 * Images: ordered layers plus metadata, versioned by name. `NAME` means the newest
 * version, `NAME@N` a given one. A clone starts with its master's layers (shared, not
 * copied) and carries its own customization inputs.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statfsSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import type { CustomizationItem, ImageManifest, LayerRef } from '../../common/protocol.js';
import { extractLayerFile } from '../../layers/apply.js';
import { TargetRoot } from '../../layers/target.js';
import { formatBytes } from '../../common/units.js';
import { now, type DataDir } from '../context.js';
import { j } from '../db/index.js';
import { readTarFile, storeLayer, type BuiltLayer, type Compression } from './layers.js';
import type { Lease } from './blobs.js';
import { tarName, tarStream, whiteoutEntry } from '../../layers/writer.js';
import { comparePaths, relinkHardlinks, scanTree, type TreeEntry, type TreeScan } from '../../layers/tree.js';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function assertName(kind: string, name: string): void {
  if (!NAME_RE.test(name)) {
    throw new FerryError('FERRY_E_BAD_NAME', `${kind} name "${name}" is not allowed`, {
      details: { kind, name },
      hint: 'use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit',
    });
  }
}

export interface ImageRow {
  id: number;
  name: string;
  version: number;
  digest: string;
  master: string | null;
  manifest: string;
  inputs: string;
  created_at: string;
}

/** The manifest the installer receives, plus what only the repository knows. */
export interface ImageInfo extends ImageManifest {
  inputs: Record<string, string>;
  size: number;
  uncompressedSize: number;
}

/** Canonical JSON: sorted keys, no spaces. What digests are computed over. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.keys(v as object).filter((k) => (v as any)[k] !== undefined).sort().map((k) => JSON.stringify(k) + ':' + canonicalJson((v as any)[k])).join(',') + '}';
  }
  return JSON.stringify(v);
}

export function manifestDigest(m: Omit<ImageManifest, 'digest'>): string {
  const { createdAt: _c, ...rest } = m as ImageManifest;
  return 'sha256:' + createHash('sha256').update(canonicalJson({ ...rest, digest: undefined })).digest('hex');
}

export function parseRef(ref: string): { name: string; version?: number } {
  const m = /^([^@]+)(?:@([0-9]+))?$/.exec(ref);
  if (!m) {
    throw new FerryError('FERRY_E_BAD_NAME', `image reference "${ref}" is not NAME or NAME@VERSION`, { details: { ref }, hint: 'write the image name, optionally with @VERSION' });
  }
  assertName('image', m[1]);
  return { name: m[1], version: m[2] ? Number(m[2]) : undefined };
}

export function findImage(d: DataDir, ref: string): ImageRow | undefined {
  const { name, version } = parseRef(ref);
  return (version === undefined
    ? d.db.prepare('SELECT * FROM images WHERE name = ? ORDER BY version DESC LIMIT 1').get(name)
    : d.db.prepare('SELECT * FROM images WHERE name = ? AND version = ?').get(name, version)) as ImageRow | undefined;
}

export function getImage(d: DataDir, ref: string): ImageRow {
  const row = findImage(d, ref);
  if (!row) {
    throw new FerryError('FERRY_E_IMAGE_NOT_FOUND', `no image "${ref}"`, { details: { image: ref }, hint: 'list the images with `ferry image ls`' });
  }
  return row;
}

export function manifestOf(row: ImageRow): ImageManifest {
  return JSON.parse(row.manifest) as ImageManifest;
}

export function imageInfo(row: ImageRow): ImageInfo {
  const m = manifestOf(row);
  return {
    name: row.name,
    version: row.version,
    digest: row.digest,
    master: row.master ?? undefined,
    layers: m.layers,
    customizations: m.customizations,
    inputs: j(row.inputs, {}),
    createdAt: row.created_at,
    size: m.layers.reduce((s, l) => s + l.size, 0),
    uncompressedSize: m.layers.reduce((s, l) => s + (l.uncompressedSize ?? 0), 0),
  };
}

export function listImages(d: DataDir): ImageInfo[] {
  return (d.db.prepare('SELECT * FROM images ORDER BY name, version').all() as ImageRow[]).map(imageInfo);
}

/** Refuse before writing when the store's file system lacks the room. */
export function checkRoom(d: DataDir, requiredBytes: number, what: string): void {
  const st = statfsSync(d.dir);
  const availableBytes = Number(st.bavail) * Number(st.bsize);
  if (requiredBytes > availableBytes) {
    throw new FerryError('FERRY_E_NO_ROOM', `${what} needs up to ${formatBytes(requiredBytes)} in ${d.dir}, but its file system has ${formatBytes(availableBytes)} free`, {
      details: { requiredBytes, availableBytes, dataDir: d.dir },
      hint: 'free space (ferry image gc removes unreferenced layers), or use a data directory on a larger file system',
    });
  }
}

function registerLayer(d: DataDir, l: BuiltLayer): LayerRef {
  d.db
    .prepare('INSERT OR IGNORE INTO layers (digest, size, media_type, uncompressed_size, diff_id, created_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(l.digest, l.size, l.mediaType, l.uncompressedSize, l.diffId, now());
  return { digest: l.digest, size: l.size, mediaType: l.mediaType, uncompressedSize: l.uncompressedSize };
}

/** Insert one image version (in a transaction with its layer rows). */
export function insertImage(
  d: DataDir,
  args: { name: string; version: number; master?: string; layers: LayerRef[]; customizations: CustomizationItem[]; inputs?: Record<string, string> },
  actor: string,
  action: string,
): ImageInfo {
  const createdAt = now();
  const base = { name: args.name, version: args.version, master: args.master, layers: args.layers, customizations: args.customizations, createdAt };
  const digest = manifestDigest(base);
  const manifest: ImageManifest = { ...base, digest };
  try {
    d.write(() => {
      const r = d.db
        .prepare('INSERT INTO images (name, version, digest, master, manifest, inputs, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(args.name, args.version, digest, args.master ?? null, JSON.stringify(manifest), JSON.stringify(args.inputs ?? {}), createdAt);
      const ins = d.db.prepare('INSERT INTO image_layers (image_id, position, digest) VALUES (?, ?, ?)');
      args.layers.forEach((l, i) => ins.run(r.lastInsertRowid, i, l.digest));
      d.audit(actor, action, `${args.name}@${args.version}`, { digest, layers: args.layers.map((l) => l.digest) });
    });
  } catch (e) {
    // Two commands raced for the same name and version: the other one won.
    if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
      throw new FerryError('FERRY_E_IMAGE_EXISTS', `${args.name}@${args.version} was created by another command at the same time`, {
        details: { image: `${args.name}@${args.version}` },
        hint: 'look at `ferry image ls`, then run the command again if it is still needed (its layers are stored; nothing is lost)',
      });
    }
    throw e;
  }
  return imageInfo(getImage(d, `${args.name}@${args.version}`));
}

export interface ImportOptions {
  dir?: string;
  tars?: string[];
  /**
   * A tar stream from elsewhere (`image capture`: the remote's GNU tar over SSH). Read with the
   * same inspection as --tar; when it throws (a dropped connection, tar's own failure) the layer
   * is not stored and no image is made.
   */
  stream?: { what: string; chunks: AsyncIterable<Buffer> };
  /** Uncompressed bytes and entries read so far (tar sources). */
  onProgress?: (bytes: number, entries: number) => void;
  compression?: Compression;
  customizations?: CustomizationItem[];
  inputs?: Record<string, string>;
  actor: string;
  /** The audit action (default image.import; image.capture for a capture). */
  action?: string;
  /** Called with the tree scan before anything is written (for messages about skipped files). */
  onScan?: (s: TreeScan) => void;
}

export async function importImage(d: DataDir, name: string, o: ImportOptions): Promise<ImageInfo> {
  assertName('image', name);
  if (findImage(d, name)) {
    throw new FerryError('FERRY_E_IMAGE_EXISTS', `an image named "${name}" already exists`, {
      details: { image: name },
      hint: 'choose another name, update it with `ferry image commit`, or remove it with `ferry image rm`',
    });
  }
  if ((o.dir ? 1 : 0) + (o.tars?.length ? 1 : 0) + (o.stream ? 1 : 0) !== 1) {
    throw new FerryError('FERRY_E_USAGE', 'give exactly one of --dir DIR or --tar FILE…', { hint: 'ferry image import NAME --dir DIR | --tar FILE…' });
  }
  const compression = o.compression ?? 'zstd';
  const layers: LayerRef[] = [];
  // Stored but not yet in an image: held against a concurrent `image gc` until registered.
  const lease = d.blobs.lease();
  try {
    if (o.dir) {
      const scan = await scanTree(o.dir);
      o.onScan?.(scan);
      checkRoom(d, scan.contentBytes + scan.entries.length * 1536 + (1 << 20), `importing ${o.dir}`);
      layers.push(registerLayer(d, await storeLayer(d.blobs, tarStream(scan.entries), compression, { inspect: false, lease })));
    } else if (o.stream) {
      // The size is not known in advance; a full disk fails the blob write (FERRY_E_NO_ROOM).
      checkRoom(d, 1 << 20, `capturing ${o.stream.what}`);
      layers.push(registerLayer(d, await storeLayer(d.blobs, o.stream.chunks, compression, { lease, onProgress: o.onProgress })));
    } else {
      const sizes = o.tars!.map((f) => {
        try {
          return lstatSync(f).size;
        } catch {
          throw new FerryError('FERRY_E_SOURCE_MISSING', `the tar file ${f} cannot be read`, { details: { path: f }, hint: 'give existing files with --tar' });
        }
      });
      // A plain tar compresses to less than itself; a compressed one recompresses to about its size.
      checkRoom(d, sizes.reduce((a, b) => a + b, 0) * 1.1 + (1 << 20), `importing ${o.tars!.join(', ')}`);
      for (const f of o.tars!) layers.push(registerLayer(d, await storeLayer(d.blobs, readTarFile(f), compression, { lease, onProgress: o.onProgress })));
    }
    return insertImage(d, { name, version: 1, layers, customizations: o.customizations ?? [], inputs: o.inputs }, o.actor, o.action ?? 'image.import');
  } catch (e) {
    throw dbFullIsNoRoom(d, e, lease);
  } finally {
    lease.release();
  }
}

/**
 * A full disk can fail the database's write after the blobs were stored (SQLITE_FULL): that is the
 * same FERRY_E_NO_ROOM as a failed blob write, and what this import stored and no image or other
 * import holds is removed, so nothing is left behind.
 */
function dbFullIsNoRoom(d: DataDir, e: unknown, lease: Lease): unknown {
  if ((e as { code?: string })?.code !== 'SQLITE_FULL') return e;
  const mine = lease.held();
  lease.release();
  const others = d.blobs.leased();
  for (const digest of mine) {
    const used = d.db.prepare('SELECT 1 FROM image_layers WHERE digest = ? LIMIT 1').get(digest);
    if (used || others.has(digest)) continue;
    try {
      d.db.prepare('DELETE FROM layers WHERE digest = ?').run(digest);
    } catch {
      // the row may never have been written; gc removes a stale one
    }
    try {
      d.blobs.remove(digest);
    } catch {
      // already gone
    }
  }
  return new FerryError('FERRY_E_NO_ROOM', `the data directory ${d.dir} ran out of space while recording the import (nothing was stored)`, {
    details: { dataDir: d.dir, errno: 'SQLITE_FULL' },
    hint: 'free space (ferry image gc removes unreferenced layers), or use a data directory on a larger file system',
    cause: e,
  });
}

export function setCustomizations(d: DataDir, ref: string, items: CustomizationItem[], actor: string): ImageInfo {
  const row = getImage(d, ref);
  const m = manifestOf(row);
  return insertImage(d, { name: row.name, version: nextVersion(d, row.name), master: row.master ?? undefined, layers: m.layers, customizations: items, inputs: j(row.inputs, {}) }, actor, 'image.customizations');
}

function nextVersion(d: DataDir, name: string): number {
  const r = d.db.prepare('SELECT MAX(version) v FROM images WHERE name = ?').get(name) as { v: number | null };
  return (r.v ?? 0) + 1;
}

export function cloneImage(d: DataDir, masterRef: string, name: string, o: { inputs?: Record<string, string>; customizations?: CustomizationItem[]; actor: string }): ImageInfo {
  assertName('image', name);
  const master = getImage(d, masterRef);
  if (findImage(d, name)) {
    throw new FerryError('FERRY_E_IMAGE_EXISTS', `an image named "${name}" already exists`, { details: { image: name }, hint: 'choose another name for the clone' });
  }
  const m = manifestOf(master);
  return insertImage(
    d,
    { name, version: 1, master: `${master.name}@${master.version}`, layers: m.layers, customizations: o.customizations ?? m.customizations, inputs: { ...j(master.inputs, {}), ...(o.inputs ?? {}) } },
    o.actor,
    'image.clone',
  );
}

export function removeImage(d: DataDir, ref: string, actor: string): string[] {
  const { version } = parseRef(ref);
  const target = getImage(d, ref);
  const rows = (version === undefined
    ? d.db.prepare('SELECT * FROM images WHERE name = ?').all(target.name)
    : [target]) as ImageRow[];
  const refs = rows.map((r) => `${r.name}@${r.version}`);
  const clones = d.db
    .prepare(`SELECT name, version, master FROM images WHERE master IN (${refs.map(() => '?').join(',')}) AND name <> ?`)
    .all(...refs, target.name) as { name: string; version: number }[];
  if (clones.length) {
    throw new FerryError('FERRY_E_IMAGE_IN_USE', `image ${ref} is the master of ${clones.map((c) => `${c.name}@${c.version}`).join(', ')}`, {
      details: { image: ref, clones: clones.map((c) => `${c.name}@${c.version}`) },
      hint: 'remove the clones first',
    });
  }
  const nodes = (d.db.prepare('SELECT name, image FROM nodes WHERE image IS NOT NULL').all() as { name: string; image: string }[]).filter(
    (n) => n.image === target.name || refs.includes(n.image),
  );
  const remaining = version === undefined ? 0 : (d.db.prepare('SELECT COUNT(*) c FROM images WHERE name = ?').get(target.name) as { c: number }).c - 1;
  const blocking = nodes.filter((n) => refs.includes(n.image) || (n.image === target.name && remaining === 0));
  if (blocking.length) {
    throw new FerryError('FERRY_E_IMAGE_IN_USE', `image ${ref} is assigned to node(s) ${blocking.map((n) => n.name).join(', ')}`, {
      details: { image: ref, nodes: blocking.map((n) => n.name) },
      hint: 'assign another image to those nodes (ferry node set NODE --image IMG) first',
    });
  }
  d.write(() => {
    for (const r of rows) d.db.prepare('DELETE FROM images WHERE id = ?').run(r.id);
    d.audit(actor, 'image.rm', ref, { removed: refs });
  });
  return refs;
}

/** Blobs no image and no pending deployment refers to are removed from the store. */
export function garbageCollect(d: DataDir, actor: string, dryRun = false): { removed: string[]; freedBytes: number; kept: number } {
  // List the blobs first, then what holds them: an import stores a blob only after its lease
  // names it and releases the lease only after its image row exists, so every blob listed here
  // is seen as held by one or the other.
  const stored = d.blobs.list();
  const keep = new Set<string>((d.db.prepare('SELECT DISTINCT digest FROM image_layers').all() as { digest: string }[]).map((r) => r.digest));
  for (const r of d.db.prepare("SELECT manifest FROM deployments WHERE status IN ('armed', 'running', 'lost')").all() as { manifest: string }[]) {
    for (const l of (JSON.parse(r.manifest) as ImageManifest).layers) keep.add(l.digest);
  }
  for (const digest of d.blobs.leased()) keep.add(digest);
  const removed: string[] = [];
  let freedBytes = 0;
  for (const digest of stored) {
    if (keep.has(digest)) continue;
    freedBytes += d.blobs.size(digest);
    removed.push(digest);
    if (!dryRun) d.blobs.remove(digest);
  }
  if (!dryRun) {
    d.write(() => {
      const del = d.db.prepare('DELETE FROM layers WHERE digest = ? AND NOT EXISTS (SELECT 1 FROM image_layers WHERE digest = ?)');
      for (const r of removed) del.run(r, r);
      // Layers whose rows outlived their blob (removed by hand) go too.
      for (const r of d.db.prepare('SELECT digest FROM layers WHERE digest NOT IN (SELECT digest FROM image_layers)').all() as { digest: string }[]) {
        if (!d.blobs.has(r.digest)) d.db.prepare('DELETE FROM layers WHERE digest = ?').run(r.digest);
      }
      d.audit(actor, 'image.gc', null, { removed, freedBytes });
    });
    d.blobs.cleanTemp();
  }
  return { removed, freedBytes, kept: keep.size };
}

export interface VerifyResult {
  digest: string;
  ok: boolean;
  problem?: string;
  images: string[];
}

/** Recompute every referenced blob's digest (and size). */
export async function verifyImages(d: DataDir, ref?: string): Promise<VerifyResult[]> {
  const rows = ref ? [getImage(d, ref)] : (d.db.prepare('SELECT * FROM images ORDER BY name, version').all() as ImageRow[]);
  const byDigest = new Map<string, { layer: LayerRef; images: string[] }>();
  for (const r of rows) {
    for (const l of manifestOf(r).layers) {
      const e = byDigest.get(l.digest) ?? { layer: l, images: [] };
      e.images.push(`${r.name}@${r.version}`);
      byDigest.set(l.digest, e);
    }
  }
  const out: VerifyResult[] = [];
  for (const [digest, { layer, images }] of [...byDigest].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (!d.blobs.has(digest)) {
      out.push({ digest, ok: false, problem: 'missing from the store', images });
      continue;
    }
    const size = d.blobs.size(digest);
    if (size !== layer.size) {
      out.push({ digest, ok: false, problem: `size ${size} differs from the recorded ${layer.size}`, images });
      continue;
    }
    const actual = await d.blobs.hash(digest);
    out.push(actual === digest ? { digest, ok: true, images } : { digest, ok: false, problem: `bytes hash to ${actual}`, images });
  }
  return out;
}

// ---------------------------------------------------------------- export and commit

/**
 * Unpack an image into an empty (or new) directory, made 0700: an image holds password hashes
 * and host keys. Device nodes are created only with `devices` (commit's own export, inside the
 * 0700 DATA/tmp, needs them to compare trees): an image's /dev/sda would be the server's disk.
 */
export async function exportImage(d: DataDir, ref: string, dir: string, o: { devices?: boolean } = {}): Promise<ImageInfo & { skippedDevices: number }> {
  const row = getImage(d, ref);
  const info = imageInfo(row);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new FerryError('FERRY_E_EXPORT_NOT_EMPTY', `the export directory ${dir} is not empty`, {
      details: { dir },
      hint: 'export into a new or empty directory',
    });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const root = new TargetRoot(dir);
  let skippedDevices = 0;
  for (const layer of info.layers) {
    if (!d.blobs.has(layer.digest)) {
      throw new FerryError('FERRY_E_BLOB_MISSING', `layer ${layer.digest} of image ${info.name}@${info.version} is missing from the store`, {
        details: { digest: layer.digest, image: `${info.name}@${info.version}` },
        hint: 'run `ferry image verify`; re-import the image if its layers were lost',
      });
    }
    // The one reader and extractor the installer uses (layers/): names are decided and written
    // by the same parser, every path (hard-link targets included) resolved inside the export
    // directory, symlinks left by lower layers followed inside it, never out of it.
    skippedDevices += (await extractLayerFile(d.blobs.path(layer.digest), layer, root, { devices: o.devices ?? false })).skippedDevices;
  }
  // The layers set the root's mode (0755 in a system image); the export itself stays 0700.
  chmodSync(dir, 0o700);
  return { ...info, skippedDevices };
}

function sameContent(a: string, b: string, size: number): boolean {
  if (size === 0) return true;
  const fa = openSync(a, 'r'), fb = openSync(b, 'r');
  const ba = Buffer.allocUnsafe(1 << 20), bb = Buffer.allocUnsafe(1 << 20);
  try {
    let pos = 0;
    while (pos < size) {
      const na = readSync(fa, ba, 0, ba.length, pos);
      const nb = readSync(fb, bb, 0, bb.length, pos);
      if (na !== nb || na === 0) return na === nb;
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      pos += na;
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

function sameXattrs(a: [string, Buffer][], b: [string, Buffer][]): boolean {
  return a.length === b.length && a.every(([k, v], i) => b[i][0] === k && b[i][1].equals(v));
}

export interface TreeDiff {
  /** Entries to store (added or changed), in layer order, hardlink groups complete. */
  changed: TreeEntry[];
  /** Paths removed (only the top-most of a removed subtree). */
  deleted: string[];
}

/** Compare a new tree with the old one: what a layer on top of the old must hold. */
/**
 * keepMissingDevices: a device node of the old tree missing from the new one is not a deletion
 * (`image export` leaves device nodes out unless --devices, so a commit from such an export
 * must not remove them from the image; removing their directory still does).
 */
export function diffTrees(oldScan: TreeScan, newScan: TreeScan, opts: { keepMissingDevices?: boolean } = {}): TreeDiff {
  const old = new Map(oldScan.entries.map((e) => [e.path, e]));
  const fresh = new Set(newScan.entries.map((e) => e.path));
  // The file an old hardlink entry stands for, to compare content through links.
  const oldFile = (e: TreeEntry) => (e.type === 'hardlink' ? old.get(e.linkname!) ?? e : e);
  const changed = new Set<TreeEntry>();
  const deleted: string[] = [];
  const byPath = new Map(newScan.entries.map((e) => [e.path, e]));
  const newFile = (e: TreeEntry) => (e.type === 'hardlink' ? byPath.get(e.linkname!) ?? e : e);
  for (const n of newScan.entries) {
    const o = old.get(n.path);
    if (!o) {
      changed.add(n);
      continue;
    }
    const of = oldFile(o), nf = newFile(n);
    const ot = of.type, nt = nf.type;
    const differs =
      ot !== nt ||
      // The root's mode is the image's own: an export shows it 0700 (exportImage).
      (of.mode !== nf.mode && n.path !== '.') ||
      of.uid !== nf.uid ||
      of.gid !== nf.gid ||
      // Microseconds: the export that gives the old tree sets times with utimes(2) through Node,
      // which carries microseconds (layers themselves keep nanoseconds).
      of.mtimeNs / 1000n !== nf.mtimeNs / 1000n ||
      (nt !== 'dir' && of.size !== nf.size) ||
      of.linkname !== nf.linkname ||
      of.devmajor !== nf.devmajor ||
      of.devminor !== nf.devminor ||
      !sameXattrs(of.xattrs, nf.xattrs) ||
      (o.type === 'hardlink') !== (n.type === 'hardlink') ||
      (o.type === 'hardlink' && n.type === 'hardlink' && o.linkname !== n.linkname) ||
      (nt === 'file' && !sameContent(of.abs, nf.abs, nf.size));
    if (differs) {
      changed.add(n);
      // A changed directory-vs-other type needs the old one removed first.
      if (o.type !== n.type && (o.type === 'dir' || n.type === 'dir')) deleted.push(n.path);
    }
  }
  for (const o of oldScan.entries) {
    if (fresh.has(o.path) || o.path === '.') continue;
    if (opts.keepMissingDevices && (o.type === 'char' || o.type === 'block')) continue;
    const slash = o.path.lastIndexOf('/');
    const parent = slash < 0 ? '.' : o.path.slice(0, slash);
    // Only the top of a removed subtree needs a whiteout.
    if (parent !== '.' && !fresh.has(parent)) continue;
    if (parent !== '.' && byPath.get(parent)?.type !== 'dir') continue;
    deleted.push(o.path);
  }
  // Hardlink groups travel whole: if one name of an inode is stored, all are.
  const inodes = new Set<string>();
  for (const e of changed) if (e.inode) inodes.add(e.inode);
  const out = newScan.entries.filter((e) => changed.has(e) || (e.inode && inodes.has(e.inode))).map((e) => ({ ...e }));
  relinkHardlinks(out);
  return { changed: out, deleted: [...new Set(deleted)].sort(comparePaths) };
}

/** The entries of a diff layer: whiteouts and changed entries in one sorted order. */
export function diffLayerEntries(diff: TreeDiff): TreeEntry[] {
  const wh = diff.deleted.map((p) => {
    const slash = p.lastIndexOf('/');
    return whiteoutEntry(slash < 0 ? `.wh.${p}` : `${p.slice(0, slash)}/.wh.${p.slice(slash + 1)}`);
  });
  return [...wh, ...diff.changed].sort((a, b) => (a.path === '.' ? -1 : b.path === '.' ? 1 : comparePaths(tarName(a), tarName(b))));
}

/**
 * Store the difference between DIR and the image as a new layer on top, creating the
 * image's next version. The old state is rebuilt by exporting into DATA/tmp (same file
 * system as the store), then both trees are compared entry by entry.
 */
export async function commitImage(d: DataDir, ref: string, dir: string, o: { actor: string; compression?: Compression }): Promise<{ image?: ImageInfo; added: number; deleted: number }> {
  const row = getImage(d, ref);
  const latest = getImage(d, row.name);
  const cur = imageInfo(row);
  checkRoom(d, cur.uncompressedSize * 1.1 + (1 << 20), `committing ${dir} onto ${row.name}@${row.version}`);
  const newScan = await scanTree(dir);
  const tmp = d.blobs.tempPath('commit');
  const lease = d.blobs.lease();
  try {
    await exportImage(d, ref, tmp, { devices: true });
    const oldScan = await scanTree(tmp);
    const diff = diffTrees(oldScan, newScan, { keepMissingDevices: true });
    if (diff.changed.length === 0 && diff.deleted.length === 0) return { added: 0, deleted: 0 };
    checkRoom(d, diff.changed.reduce((s, e) => s + e.size + 1536, 0) + (1 << 20), `committing ${dir}`);
    const layer = registerLayer(d, await storeLayer(d.blobs, tarStream(diffLayerEntries(diff)), o.compression ?? 'zstd', { inspect: false, lease }));
    const image = insertImage(
      d,
      { name: row.name, version: latest.version + 1, master: row.master ?? undefined, layers: [...cur.layers, layer], customizations: cur.customizations, inputs: cur.inputs },
      o.actor,
      'image.commit',
    );
    return { image, added: diff.changed.length, deleted: diff.deleted.length };
  } finally {
    lease.release();
    rmSync(tmp, { recursive: true, force: true });
  }
}

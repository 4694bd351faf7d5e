/**
 * Images: ordered layers plus metadata, versioned by name. `NAME` means the newest
 * version, `NAME@N` a given one. A clone starts with its master's layers (shared, not
 * copied) and carries its own customization inputs.
 *
 * This module holds names, rows, manifests and the catalogue operations (list, customize, clone,
 * remove); import is in image-import.ts, export and commit in image-export.ts, gc and verify in
 * image-gc.ts.
 */
import { createHash } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { FerryError } from '../../common/errors.js';
import type { CustomizationItem, ImageManifest, LayerRef } from '../../common/protocol.js';
import { formatBytes } from '../../common/units.js';
import { now, type DataDir } from '../context.js';
import { j } from '../db/index.js';
import type { BuiltLayer } from './layers.js';
import { INDEX_FORMAT } from '../../layers/path-index.js';
import type { ImageInfoBody } from '../../common/schema/responses.js';

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

/** The manifest the installer receives, plus what only the repository knows (common/schema/responses.ts ImageInfoSchema). */
export type ImageInfo = ImageInfoBody;

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

export function registerLayer(d: DataDir, l: BuiltLayer): LayerRef {
  d.db
    .prepare('INSERT OR IGNORE INTO layers (digest, size, media_type, uncompressed_size, diff_id, created_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(l.digest, l.size, l.mediaType, l.uncompressedSize, l.diffId, now());
  // The layer's entries, with its row: the server's knowledge of which paths an image holds.
  d.db.prepare('INSERT OR REPLACE INTO layer_index (digest, format, entries, paths, created_at) VALUES (?, ?, ?, ?, ?)').run(l.digest, INDEX_FORMAT, l.entries, l.index, now());
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

export function setCustomizations(d: DataDir, ref: string, items: CustomizationItem[], actor: string): ImageInfo {
  const row = getImage(d, ref);
  const m = manifestOf(row);
  return insertImage(d, { name: row.name, version: nextVersion(d, row.name), master: row.master ?? undefined, layers: m.layers, customizations: items, inputs: j(row.inputs, {}) }, actor, 'image.customizations');
}

export function nextVersion(d: DataDir, name: string): number {
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

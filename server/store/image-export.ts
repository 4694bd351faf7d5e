/**
 * `ferry image export` (unpack an image with the shared extractor, layers/apply.ts) and
 * `ferry image commit` (a new layer from the difference between an export and a changed tree).
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { extractLayerFile } from '../../layers/apply.js';
import { TargetRoot } from '../../layers/target.js';
import { tarName, tarStream, whiteoutEntry } from '../../layers/writer.js';
import { comparePaths, relinkHardlinks, scanTree, type TreeEntry, type TreeScan } from '../../layers/tree.js';
import type { DataDir } from '../context.js';
import { withAuthorizeFerryItem } from '../ssh/authorize.js';
import { storeLayer, type Compression } from './layers.js';
import { checkRoom, getImage, imageInfo, insertImage, registerLayer, type ImageInfo } from './images.js';

/**
 * Unpack an image into an empty (or new) directory, made 0700: an image holds password hashes
 * and host keys. Device nodes are created only with `devices` (commit's own export, inside the
 * 0700 DATA/tmp, needs them to compare trees): an image's /dev/sda would be the server's disk.
 */
export async function exportImage(d: DataDir, ref: string, dir: string, o: { devices?: boolean; keepRootMode?: boolean } = {}): Promise<ImageInfo & { skippedDevices: number }> {
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
  // The layers set the root's mode (0755 in a system image); the export itself stays 0700,
  // unless the caller keeps it inside a private directory and needs the image's own mode
  // (ferry update's rsync gives the source root's mode to the node's root).
  if (!o.keepRootMode) chmodSync(dir, 0o700);
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
export async function commitImage(d: DataDir, ref: string, dir: string, o: { actor: string; compression?: Compression; authorizeFerry?: boolean; /** The audit action (default image.commit). */ action?: string }): Promise<{ image?: ImageInfo; added: number; deleted: number }> {
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
      { name: row.name, version: latest.version + 1, master: row.master ?? undefined, layers: [...cur.layers, layer], customizations: o.authorizeFerry ? withAuthorizeFerryItem(cur.customizations) : cur.customizations, inputs: cur.inputs },
      o.actor,
      o.action ?? 'image.commit',
    );
    return { image, added: diff.changed.length, deleted: diff.deleted.length };
  } finally {
    lease.release();
    rmSync(tmp, { recursive: true, force: true });
  }
}

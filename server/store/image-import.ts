/**
 * `ferry image import` and `image capture`: one layer from a directory, a stream, or one layer per
 * tar file, stored in the blob store and recorded as version 1 of a new image.
 */
import { lstatSync } from 'node:fs';
import { FerryError } from '../../common/errors.js';
import type { CustomizationItem, LayerRef } from '../../common/protocol.js';
import { tarStream } from '../../layers/writer.js';
import { scanTree, type TreeScan } from '../../layers/tree.js';
import type { DataDir } from '../context.js';
import type { Lease } from './blobs.js';
import { readTarFile, storeLayer, type Compression } from './layers.js';
import { assertName, checkRoom, findImage, insertImage, registerLayer, type ImageInfo } from './images.js';

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

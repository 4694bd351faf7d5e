/**
 * Which paths an image version holds, from its layers' indexes (migration 9, layers/path-index.ts).
 * A layer's index is written where the layer enters the store (registerLayer: import, capture,
 * commit, diff); a layer stored before the index existed gets one on first use, by reading its
 * blob once (ensureImageIndex). gc removes an index with its layer's row (ON DELETE CASCADE).
 */
import type { ImageManifest, LayerRef } from '../../common/protocol.js';
import { decodeIndex, encodeIndex, ImageTree, INDEX_FORMAT, type IndexEntry } from '../../layers/path-index.js';
import { now, type DataDir } from '../context.js';
import { layerEntries } from './layers.js';

/** One layer's entries, when indexed. */
export function layerIndex(d: DataDir, digest: string): IndexEntry[] | undefined {
  const r = d.db.prepare('SELECT paths FROM layer_index WHERE digest = ? AND format = ?').get(digest, INDEX_FORMAT) as { paths: Buffer } | undefined;
  return r ? decodeIndex(r.paths) : undefined;
}

/** Index the layers of `m` that have none yet (each blob read once); a layer without a blob or not a tar stream is left out. */
export async function ensureImageIndex(d: DataDir, m: Pick<ImageManifest, 'layers'>): Promise<number> {
  let built = 0;
  for (const l of m.layers) {
    if (d.db.prepare('SELECT 1 FROM layer_index WHERE digest = ? AND format = ?').get(l.digest, INDEX_FORMAT)) continue;
    if (!d.blobs.has(l.digest) || !d.db.prepare('SELECT 1 FROM layers WHERE digest = ?').get(l.digest)) continue;
    let entries: IndexEntry[];
    try {
      entries = await layerEntries(d.blobs, l as LayerRef);
    } catch {
      // A blob that is not a tar stream (damaged: ferry image verify says so) gets no index; the
      // checks then say the paths are checked only on the node, where the install refuses it.
      continue;
    }
    d.write(() => d.db.prepare('INSERT OR REPLACE INTO layer_index (digest, format, entries, paths, created_at) VALUES (?, ?, ?, ?, ?)').run(l.digest, INDEX_FORMAT, entries.length, encodeIndex(entries), now()));
    built++;
  }
  return built;
}

/**
 * The last few trees built, by their layers' digests: a selection of many nodes with one image
 * builds its tree once (a Debian image's is about 140,000 paths). A tree never changes for
 * the same layers (blobs are content-addressed); only complete trees are kept.
 */
const trees = new Map<string, ImageTree>();
const TREES_KEPT = 4;

/** The tree an image's layers make (whiteouts applied), or undefined when a layer is not indexed. */
export function imageTree(d: DataDir, m: Pick<ImageManifest, 'layers'>): ImageTree | undefined {
  const key = m.layers.map((l) => l.digest).join(' ');
  const hit = trees.get(key);
  if (hit) return hit;
  const layers: IndexEntry[][] = [];
  for (const l of m.layers) {
    const e = layerIndex(d, l.digest);
    if (!e) return undefined;
    layers.push(e);
  }
  const tree = new ImageTree(layers);
  trees.set(key, tree);
  if (trees.size > TREES_KEPT) trees.delete(trees.keys().next().value!);
  return tree;
}

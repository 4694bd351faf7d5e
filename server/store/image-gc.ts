/**
 * Store upkeep: `ferry image gc` removes blobs nothing holds, `ferry image verify` recomputes
 * the digests of referenced blobs.
 */
import type { ImageManifest, LayerRef } from '../../common/protocol.js';
import type { DataDir } from '../context.js';
import { getImage, manifestOf, type ImageRow } from './images.js';
import { gcTreeCache } from './tree-cache.js';

/** Blobs no image and no pending deployment refers to are removed from the store. */
export function garbageCollect(d: DataDir, actor: string, dryRun = false): { removed: string[]; freedBytes: number; kept: number; trees: string[] } {
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
  // ferry update's exported trees (server/store/tree-cache.ts): those of removed images go.
  const trees = gcTreeCache(d, undefined, dryRun);
  return { removed, freedBytes, kept: keep.size, trees };
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

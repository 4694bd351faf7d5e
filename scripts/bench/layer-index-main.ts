/**
 * The layer index's size per entry and the time to build an image tree from it: prints entries,
 * the encoded bytes, bytes per entry, and the ImageTree build time relative to decoding alone.
 * Then the cost the index adds to every import: parsing the layer's tar stream (TarInspector,
 * which `--dir` imports skipped before) against the sha256 that storeLayer already computes over
 * the same bytes, same run (the stream is the tree's tar from the layer writer, held in memory).
 * Run: scripts/bench/layer-index [DIR]
 */
import { readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { decodeIndex, encodeIndex, ImageTree, type IndexEntry } from '../../layers/path-index.js';
import { scanTree } from '../../layers/tree.js';
import { tarStream } from '../../layers/writer.js';
import { TarInspector } from '../../server/store/layers.js';

function walk(root: string, rel: string, out: IndexEntry[]): void {
  let names: string[];
  try {
    names = readdirSync(join(root, rel));
  } catch {
    return;
  }
  for (const n of names) {
    const p = rel ? `${rel}/${n}` : n;
    const st = lstatSync(join(root, p));
    out.push({ path: p, type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file' });
    if (st.isDirectory()) walk(root, p, out);
  }
}

const root = process.argv[2] ?? '/usr/share/doc';
const entries: IndexEntry[] = [];
walk(root, '', entries);
const t0 = performance.now();
const b = encodeIndex(entries);
const t1 = performance.now();
const back = decodeIndex(b);
const t2 = performance.now();
const tree = new ImageTree([back]);
const t3 = performance.now();
console.log(JSON.stringify({ root, entries: entries.length, bytes: b.length, bytesPerEntry: +(b.length / entries.length).toFixed(2), encodeMs: +(t1 - t0).toFixed(1), decodeMs: +(t2 - t1).toFixed(1), treeMs: +(t3 - t2).toFixed(1), treeOverDecode: +((t3 - t2) / (t2 - t1)).toFixed(2), treeSize: tree.size }));

const scan = await scanTree(root);
const chunks: Buffer[] = [];
for await (const c of tarStream(scan.entries)) chunks.push(c);
const bytes = chunks.reduce((a, c) => a + c.length, 0);
const h0 = performance.now();
const h = createHash('sha256');
for (const c of chunks) h.update(c);
h.digest();
const h1 = performance.now();
const ins = new TarInspector(true, false);
for (const c of chunks) await ins.write(c);
await ins.end();
const h2 = performance.now();
console.log(JSON.stringify({ tarBytes: bytes, tarEntries: ins.count, sha256Ms: +(h1 - h0).toFixed(1), parseMs: +(h2 - h1).toFixed(1), parseOverSha256: +((h2 - h1) / (h1 - h0)).toFixed(2) }));

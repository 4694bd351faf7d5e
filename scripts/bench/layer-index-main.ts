/**
 * The layer index's size per entry and the time to build an image tree from it: prints entries,
 * the encoded bytes, bytes per entry, and the ImageTree build time relative to decoding alone.
 * Run: scripts/bench/layer-index [DIR]
 */
import { readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { decodeIndex, encodeIndex, ImageTree, type IndexEntry } from '../../layers/path-index.js';

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

const root = process.argv[2] ?? '/usr';
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

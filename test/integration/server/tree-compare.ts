/** Compare two directory trees attribute by attribute (for export/commit tests). */
import { createHash } from 'node:crypto';
import { readFileSync, lstatSync } from 'node:fs';
import { scanTree } from '../../../layers/tree.js';

export interface EntryView {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  /** Microseconds: exports set times through Node's utimes, which carries microseconds. */
  mtimeUs: string;
  size: number;
  link?: string;
  dev?: string;
  xattrs: Record<string, string>;
  sha256?: string;
}

export async function treeView(root: string, o: { ignoreRootMtime?: boolean } = {}): Promise<Record<string, EntryView>> {
  const scan = await scanTree(root);
  const out: Record<string, EntryView> = {};
  for (const e of scan.entries) {
    const v: EntryView = {
      type: e.type,
      mode: e.mode.toString(8),
      uid: e.uid,
      gid: e.gid,
      mtimeUs: e.path === '.' && o.ignoreRootMtime ? '-' : (e.mtimeNs / 1000n).toString(),
      size: e.size,
      xattrs: Object.fromEntries(e.xattrs.map(([k, b]) => [k, b.toString('hex')])),
    };
    if (e.linkname !== undefined) v.link = e.linkname;
    if (e.devmajor !== undefined) v.dev = `${e.devmajor}:${e.devminor}`;
    if (e.type === 'file') v.sha256 = createHash('sha256').update(readFileSync(e.abs)).digest('hex');
    out[e.path] = v;
  }
  return out;
}

/** Bytes actually allocated to a file. */
export function allocated(path: string): number {
  return lstatSync(path).blocks * 512;
}

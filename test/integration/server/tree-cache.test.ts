/**
 * ferry update's cache of exported trees (server/store/tree-cache.ts) on a real data directory:
 * one tree per version, reused; at most `keep` kept, least recently used first; a tree held by a
 * running update is never removed, and is free to go once released or once its process is gone;
 * gc removes the trees of removed images and old temporary directories.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataDir } from '../../../server/context.js';
import { importImage } from '../../../server/store/image-import.js';
import { getImage, removeImage } from '../../../server/store/images.js';
import { cachedTree, gcTreeCache, pruneTreeCache, treeCacheDir } from '../../../server/store/tree-cache.js';

describe('the exported tree cache', () => {
  let work: string;
  let d: DataDir;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ferry-trees-'));
    d = new DataDir(join(work, 'data'));
    for (const n of ['a', 'b', 'c', 'e']) {
      const src = join(work, 'src-' + n);
      mkdirSync(join(src, 'etc'), { recursive: true });
      writeFileSync(join(src, 'etc/name'), n + '\n');
      await importImage(d, n, { dir: src, actor: 'test' });
    }
  });
  afterAll(() => {
    d?.close();
    rmSync(work, { recursive: true, force: true });
  });
  const entries = () => readdirSync(treeCacheDir(d)).filter((x) => !x.startsWith('.')).sort();
  const hex = (ref: string) => getImage(d, ref).digest.slice(7);

  it('exports once, reuses, keeps the bound, and never removes a tree in use', async () => {
    const a = await cachedTree(d, getImage(d, 'a'), { keep: 1 });
    expect(a.reused).toBe(false);
    expect(statSync(a.tree).mode & 0o777).toBe(0o755);
    const again = await cachedTree(d, getImage(d, 'a'), { keep: 1 });
    expect(again).toMatchObject({ tree: a.tree, reused: true });
    again.release();
    // a is still held (its first use): b and c come in, the bound is 1, a stays.
    const b = await cachedTree(d, getImage(d, 'b'), { keep: 1 });
    b.release();
    // Make b the oldest: c's arrival removes it.
    utimesSync(join(treeCacheDir(d), hex('b')), new Date(0), new Date(0));
    const c = await cachedTree(d, getImage(d, 'c'), { keep: 1 });
    expect(entries()).toEqual([hex('a'), hex('c')].sort());
    expect(existsSync(a.tree)).toBe(true);
    a.release();
    c.release();
    pruneTreeCache(d, { keep: 1 });
    expect(entries()).toHaveLength(1);
  });

  it('a mark left by a process that is gone does not hold a tree', async () => {
    const e = await cachedTree(d, getImage(d, 'e'), { keep: 5 });
    e.release();
    // pid 2^22+1 is above Linux's pid_max default range: no such process.
    const eHex = hex('e');
    writeFileSync(join(treeCacheDir(d), eHex, 'users', '4194305-dead'), '');
    removeImage(d, 'e', 'test');
    const old = join(treeCacheDir(d), '.tmp-old');
    mkdirSync(old);
    utimesSync(old, new Date(0), new Date(0));
    const young = join(treeCacheDir(d), '.tmp-young');
    mkdirSync(young);
    const removed = gcTreeCache(d, 5);
    expect(removed).toEqual(expect.arrayContaining([eHex, '.tmp-old']));
    expect(existsSync(young)).toBe(true);
    expect(entries()).not.toContain(eHex);
  });
});

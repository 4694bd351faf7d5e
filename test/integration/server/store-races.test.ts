/**
 * The store under concurrent and interrupted commands: `image gc` while an import is between its
 * layers, and `kill -9` of `image commit` in the middle (its temporary export must be reclaimed).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { DataDir } from '../../../server/context.js';
import { garbageCollect, verifyImages } from '../../../server/store/image-gc.js';
import { getImage, imageInfo } from '../../../server/store/images.js';
import { importImage } from '../../../server/store/image-import.js';
import { tempDir } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
const t = tempDir('ferry-store-races-');
afterAll(() => t.cleanup());

/** The project's one waiter (common/wait.ts), polling often: the moments awaited are short. */
const until = (what: string, cond: () => boolean) => waitFor(cond, { what, timeoutMs: 60_000, intervalMs: 10 });

function exited(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

describe('the image store under concurrent and interrupted commands', () => {
  it('image gc while a multi-layer import waits for its second layer removes nothing the import holds', async () => {
    const dataDir = join(t.dir, 'gc');
    const d = new DataDir(dataDir);
    const src = join(t.dir, 'gc-src');
    mkdirSync(join(src, 'a'), { recursive: true });
    writeFileSync(join(src, 'a', 'one'), randomBytes(1 << 20));
    await run(['tar', '-C', join(src, 'a'), '-cf', join(t.dir, 'one.tar'), '.']);
    mkdirSync(join(src, 'b'));
    writeFileSync(join(src, 'b', 'two'), 'second layer');
    await run(['tar', '-C', join(src, 'b'), '-cf', join(t.dir, 'two.tar'), '.']);
    // The second layer is a FIFO: the import stores layer one, then waits on it.
    const fifo = join(t.dir, 'two.fifo');
    execFileSync('mkfifo', [fifo]);
    const child = spawn(FERRY, ['image', 'import', 'racy', '--tar', join(t.dir, 'one.tar'), '--tar', fifo, '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const done = exited(child);
    const tmp = join(dataDir, 'tmp');
    await until('the import to store and hold its first layer', () => readdirSync(tmp).some((f) => /^lease-\d+-[0-9a-f]{12}\.json$/.test(f)) && d.blobs.list().length === 1);
    const stored = d.blobs.list();
    expect(stored).toHaveLength(1);
    const gc = garbageCollect(d, 'test');
    expect(gc.removed).toEqual([]);
    expect(d.blobs.list()).toEqual(stored);
    await writeFile(fifo, await import('node:fs/promises').then((f) => f.readFile(join(t.dir, 'two.tar'))));
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    const info = imageInfo(getImage(d, 'racy'));
    expect(info.layers.map((l) => l.digest)).toContain(stored[0]);
    expect((await verifyImages(d, 'racy')).every((v) => v.ok)).toBe(true);
    // Released: nothing in DATA/tmp any more, and gc now sees only the image's own layers.
    expect(readdirSync(tmp)).toEqual([]);
    expect(garbageCollect(d, 'test').removed).toEqual([]);
    d.close();
  });

  it('kill -9 of image commit in the middle leaves a temporary export that the next command reclaims', async () => {
    const dataDir = join(t.dir, 'commit');
    const d = new DataDir(dataDir);
    const base = join(t.dir, 'commit-src');
    mkdirSync(base);
    for (let i = 0; i < 16; i++) writeFileSync(join(base, `f${i}`), randomBytes(4 << 20));
    await importImage(d, 'big', { dir: base, actor: 'test' });
    writeFileSync(join(base, 'new'), 'changed');
    const tmp = join(dataDir, 'tmp');
    const child = spawn(FERRY, ['image', 'commit', 'big', base, '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const done = exited(child);
    await until('the commit to start its temporary export', () => readdirSync(tmp).some((f) => f.startsWith('commit-')) || child.exitCode !== null);
    expect(child.exitCode, 'the commit ended before it could be killed').toBeNull();
    child.kill('SIGKILL');
    const r = await done;
    expect(r.signal).toBe('SIGKILL');
    const left = readdirSync(tmp).filter((f) => f.startsWith('commit-'));
    expect(left.length, 'what the killed commit left').toBe(1);
    // Any later command that cleans the store (gc here; `ferry serve` at start) reclaims it at
    // once: its owner is dead, whatever its age.
    garbageCollect(d, 'test');
    expect(existsSync(join(tmp, left[0]))).toBe(false);
    expect(imageInfo(getImage(d, 'big')).version).toBe(1);
    d.close();
  });
});

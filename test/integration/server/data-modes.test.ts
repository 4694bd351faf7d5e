/**
 * File modes of the data directory: one that already exists 0755 (made by hand or by an older
 * Ferry) is forced to 0700 by every command that opens it, and blobs are never group- or
 * world-readable, whatever the umask.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../common/run.js';
import { smallTree, tempDir } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

describe('data directory modes', () => {
  let t: ReturnType<typeof tempDir>;
  beforeAll(() => {
    t = tempDir('ferry-modes-');
    smallTree(join(t.dir, 'tree'));
  });
  afterAll(() => t?.cleanup());

  it('forces an existing 0755 data directory to 0700 and writes blobs 0600 under umask 000', async () => {
    const data = join(t.dir, 'data');
    mkdirSync(data);
    chmodSync(data, 0o755);
    // umask 000: nothing but Ferry's own modes protects the files.
    await run(['sh', '-c', `umask 000 && exec "$0" "$@"`, FERRY, 'image', 'import', 'base', '--dir', join(t.dir, 'tree'), '--data', data], { timeoutMs: 120_000 });
    expect(statSync(data).mode & 0o777).toBe(0o700);
    const blobs = walk(data).filter((p) => statSync(p).isFile() && /[0-9a-f]{64}/.test(p));
    expect(blobs.length).toBeGreaterThan(0);
    for (const b of blobs) expect(statSync(b).mode & 0o077, b).toBe(0);
    // A later admin command puts it back after someone opened it up again.
    chmodSync(data, 0o755);
    await run([FERRY, 'image', 'ls', '--data', data], { timeoutMs: 60_000 });
    expect(statSync(data).mode & 0o777).toBe(0o700);
  }, 180_000);
});

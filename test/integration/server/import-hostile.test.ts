/**
 * Hostile archives on `image import --tar`: random bytes (plain, gzip, zstd), huge meta
 * headers, truncations at random points. Every one ends at once with a coded error, stores
 * nothing and leaves no temporary file; none waits for input that never comes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { run } from '../../../common/run.js';
import { DataDir } from '../../../server/context.js';
import { importImage } from '../../../server/store/image-import.js';
import { listImages } from '../../../server/store/images.js';
import { MAX_META } from '../../../layers/tar-header.js';
import { tempDir } from './helpers.js';

const FERRY = join(__dirname, '..', '..', '..', 'bin', 'ferry');

function py(script: string): void {
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

describe('image import of hostile archives', () => {
  const t = tempDir('ferry-import-hostile-');
  let d: DataDir;
  let files: Record<string, string> = {};

  beforeAll(async () => {
    d = new DataDir(join(t.dir, 'data'));
    const f = (name: string) => join(t.dir, name);
    for (const n of [1, 511, 512, 1024, 20_000, 1 << 20]) {
      const b = randomBytes(n);
      writeFileSync(f(`rand-${n}`), b);
      writeFileSync(f(`rand-${n}.gz`), gzipSync(b));
    }
    await run(['zstd', '-q', '-f', f('rand-20000'), '-o', f('rand-20000.zst')]);
    const big = MAX_META + 4096;
    py(`
import tarfile, io
def one(path, fmt, **kw):
    t = tarfile.open(path, 'w', format=fmt, **kw)
    return t
t = tarfile.open('${f('pax-big.tar')}', 'w', format=tarfile.PAX_FORMAT)
ti = tarfile.TarInfo('a'); ti.pax_headers = {'comment': 'x' * ${big}}; ti.size = 1
t.addfile(ti, io.BytesIO(b'a')); t.close()
t = tarfile.open('${f('global-big.tar')}', 'w', format=tarfile.PAX_FORMAT, pax_headers={'comment': 'y' * ${big}})
ti = tarfile.TarInfo('b'); ti.size = 1
t.addfile(ti, io.BytesIO(b'b')); t.close()
t = tarfile.open('${f('longname-big.tar')}', 'w', format=tarfile.GNU_FORMAT)
ti = tarfile.TarInfo('d/' * ${big >> 1}); ti.size = 1
t.addfile(ti, io.BytesIO(b'c')); t.close()
`);
    // A good archive to cut short at random points.
    const tree = f('tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(tree, 'etc', `f${i}`), randomBytes(700 + i * 97));
    await run(['tar', '--format=pax', '--blocking-factor=1', '-C', tree, '-cf', f('good.tar'), '.']);
    const good = readFileSync(f('good.tar'));
    for (let i = 0; i < 12; i++) {
      const cut = 1 + Math.floor(Math.random() * (good.length - 1024));
      writeFileSync(f(`cut-${i}`), good.subarray(0, cut));
    }
    files = Object.fromEntries(readdirSync(t.dir).filter((n) => n !== 'data' && n !== 'tree' && n !== 'good.tar').map((n) => [n, f(n)]));
  });
  afterAll(() => {
    d?.close();
    t.cleanup();
  });

  it('refuses every one at once with FERRY_E_LAYER_INVALID, storing nothing', async () => {
    expect(Object.keys(files).length).toBeGreaterThan(20);
    const blobsBefore = d.blobs.list().length;
    for (const [name, file] of Object.entries(files)) {
      const started = Date.now();
      const r = await importImage(d, `hostile-${name.replace(/[^a-z0-9-]/g, '-')}`, { tars: [file], actor: 'test' }).then(
        () => 'imported',
        (e) => e.code as string,
      );
      // A cut that lands exactly on a header boundary is a shorter valid archive (GNU tar reads it too).
      if (name.startsWith('cut-') && r === 'imported') continue;
      expect({ name, r }).toEqual({ name, r: 'FERRY_E_LAYER_INVALID' });
      expect(Date.now() - started).toBeLessThan(10_000);
    }
    expect(listImages(d).filter((i) => !i.name.startsWith('hostile-cut-'))).toEqual([]);
    const imported = listImages(d).filter((i) => i.name.startsWith('hostile-')).length;
    // Only whole valid cuts may have become images; random bytes and huge headers never.
    expect(d.blobs.list().length).toBeLessThanOrEqual(blobsBefore + imported);
    const tmp = join(t.dir, 'data', 'tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  }, 120_000);

  it('the CLI ends in bounded time with the code and a fix line', () => {
    for (const n of ['rand-20000', 'pax-big.tar', 'global-big.tar', 'longname-big.tar']) {
      const r = spawnSync(FERRY, ['image', 'import', 'cli-hostile', '--tar', files[n]], {
        encoding: 'utf8', timeout: 20_000, env: { ...process.env, FERRY_DATA: join(t.dir, 'data') },
      });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^FERRY_E_LAYER_INVALID: /);
      expect(r.stderr).toMatch(/fix: /);
    }
  }, 90_000);
});

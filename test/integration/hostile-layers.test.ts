import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerRef } from '../../common/protocol.js';
import { run } from '../../common/run.js';
import { applyLayer } from '../../installer/transport/index.js';
import { TargetRoot } from '../../layers/target.js';
import { blobServer } from './helpers/net.js';
import { describeTree, sha256File } from './helpers/trees.js';

type Entry = { name: string; type?: 'file' | 'dir' | 'symlink' | 'link' | 'fifo' | 'char' | 'block'; data?: string; link?: string; mode?: number; mtime?: number; major?: number; minor?: number; pax?: Record<string, string> };
type Spec = Entry[] | { global: Record<string, string>; entries: Entry[] };

let work: string;
let outside: string;
let root: string;
let srv: Awaited<ReturnType<typeof blobServer>>;

beforeEach(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-hostile-'));
  // The "host": a directory next to the target whose content must never change.
  outside = path.join(work, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'host secret');
  fs.writeFileSync(path.join(outside, 'victim'), 'keep me');
  root = path.join(work, 'root');
  fs.mkdirSync(root);
  fs.mkdirSync(path.join(work, 'blobs'));
  srv = await blobServer(path.join(work, 'blobs'));
});
afterEach(async () => {
  await srv.close();
  fs.rmSync(work, { recursive: true, force: true });
});

async function layer(spec: Spec): Promise<LayerRef> {
  const tmp = path.join(work, 'l.tar');
  await run(['python3', path.join(__dirname, 'helpers/hostile.py'), tmp, JSON.stringify(spec)]);
  const digest = sha256File(tmp);
  fs.renameSync(tmp, path.join(work, 'blobs', digest));
  return { digest, size: fs.statSync(path.join(work, 'blobs', digest)).size, mediaType: 'application/vnd.oci.image.layer.v1.tar' };
}

async function apply(spec: Spec) {
  return applyLayer(await layer(spec), { baseUrl: srv.url, token: 'tok', target: new TargetRoot(root) });
}

describe('hostile layers: nothing outside the target changes', () => {
  let before: Awaited<ReturnType<typeof describeTree>>;
  beforeEach(async () => {
    before = await describeTree(outside);
  });
  afterEach(async () => {
    expect(await describeTree(outside)).toEqual(before);
    expect(fs.readdirSync(work).sort()).toEqual(['blobs', 'outside', 'root']);
  });

  it('refuses ".." in a name', async () => {
    const err = await apply([{ name: '../outside/pwned', data: 'x' }]).catch((e) => e);
    expect(err.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
    expect(err.details.entry).toBe('../outside/pwned');
    const err2 = await apply([{ name: 'a/../../outside/secret', data: 'x' }]).catch((e) => e);
    expect(err2.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
  });

  // Device nodes, fifos, xattrs and directory times are applied at the end of a layer: a later
  // entry of the same layer that turns their parent into a symlink must not send them out.
  it('never creates deferred device nodes, fifos, xattrs or directory times through a parent replaced later in the layer', async () => {
    const outsideMtime = fs.statSync(outside).mtimeMs;
    for (const link of [outside, '../outside', path.relative(root, outside)]) {
      const w = await apply([
        { name: 'a', type: 'dir', mtime: 1 },
        { name: 'a/f', type: 'fifo', mode: 0o666 },
        { name: 'a/null', type: 'char', major: 1, minor: 3, mode: 0o666 },
        { name: 'a/disk', type: 'block', major: 7, minor: 0, mode: 0o666 },
        { name: 'a/x', data: 'x', pax: { 'SCHILY.xattr.user.evil': 'pwned' } },
        { name: 'a', type: 'symlink', link },
      ]);
      expect(w.devices).toBe(3);
      expect(fs.lstatSync(path.join(root, 'a')).isSymbolicLink()).toBe(true);
      fs.rmSync(path.join(root, 'a'));
    }
    for (const n of ['f', 'null', 'disk', 'x']) expect(fs.existsSync(path.join(outside, n))).toBe(false);
    expect(fs.statSync(outside).mtimeMs).toBe(outsideMtime);
    expect((await run(['getfattr', '-d', '-m', '-', outside], { okCodes: [0, 1] })).stdout).not.toContain('user.evil');
  });

  it('still creates deferred entries whose parents stayed real directories, inside the root', async () => {
    await apply([
      { name: 'd', type: 'dir', mtime: 1000 },
      { name: 'd/f', type: 'fifo', mode: 0o600 },
      { name: 'd/x', data: 'x', pax: { 'SCHILY.xattr.user.ok': 'yes' } },
    ]);
    expect(fs.lstatSync(path.join(root, 'd/f')).isFIFO()).toBe(true);
    expect(fs.statSync(path.join(root, 'd')).mtimeMs).toBe(1000 * 1000);
    expect((await run(['getfattr', '-n', 'user.ok', '--only-values', path.join(root, 'd/x')])).stdout).toBe('yes');
  });

  it('reads a pax global header and GNU.sparse.name with the one reader: confined or refused, never outside', async () => {
    const e1 = await apply({ global: { path: '../outside/secret' }, entries: [{ name: 'innocent', data: 'g' }] }).catch((e) => e);
    if (e1 instanceof Error) expect((e1 as { code?: string }).code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
    const e2 = await apply([{ name: 'innocent2', data: 's', pax: { 'GNU.sparse.name': '../outside/victim' } }]).catch((e) => e);
    expect(e2.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
    await apply([{ name: 'innocent3', data: 'abs', pax: { 'GNU.sparse.name': outside + '/victim' } }]);
    expect(fs.readFileSync(path.join(root, outside, 'victim'), 'utf8')).toBe('abs');
  });

  it('writes absolute names inside the root', async () => {
    await apply([{ name: outside + '/secret', data: 'inside' }]);
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('inside');
  });

  it('reads an absolute symlink placed earlier in the same layer as pointing inside the root', async () => {
    await apply([
      { name: 'out', type: 'symlink', link: outside },
      { name: 'out/secret', data: 'through link' },
      { name: 'out/.wh.victim' },
    ]);
    expect(fs.readlinkSync(path.join(root, 'out'))).toBe(outside);
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('through link');
  });

  it('clamps relative symlinks with ".." at the root', async () => {
    await apply([
      { name: 'etc/up', type: 'symlink', link: '../../../../../../..' + outside },
      { name: 'etc/up/secret', data: 'clamped' },
    ]);
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('clamped');
  });

  it('does not follow a symlink from a lower layer out of the root', async () => {
    await apply([{ name: 'lnk', type: 'symlink', link: outside }, { name: 'rel', type: 'symlink', link: '../outside' }]);
    await apply([
      { name: 'lnk/secret', data: 'layer 2' },
      { name: 'rel/victim', data: 'layer 2' },
      { name: 'lnk/.wh.victim' },
    ]);
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('layer 2');
    expect(fs.readFileSync(path.join(root, 'outside', 'victim'), 'utf8')).toBe('layer 2');
  });

  it('replaces a symlink entry instead of writing through it', async () => {
    await apply([{ name: 'f', type: 'symlink', link: path.join(outside, 'secret') }]);
    await apply([{ name: 'f', data: 'replaced' }]);
    expect(fs.lstatSync(path.join(root, 'f')).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(root, 'f'), 'utf8')).toBe('replaced');
  });

  it('never hard-links a file outside the root', async () => {
    const e1 = await apply([{ name: 'h', type: 'link', link: '../outside/secret' }]).catch((e) => e);
    expect(e1.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
    const e2 = await apply([{ name: 'h', type: 'link', link: outside + '/secret' }]).catch((e) => e);
    expect(e2.code).toBe('FERRY_E_LAYER_EXTRACT');
    const e3 = await apply([{ name: 'o', type: 'symlink', link: outside }, { name: 'h', type: 'link', link: 'o/secret' }]).catch((e) => e);
    expect(e3.code).toBe('FERRY_E_LAYER_EXTRACT');
    expect(fs.statSync(path.join(outside, 'secret')).nlink).toBe(1);
  });
});

describe('whiteouts', () => {
  it('deletes files and directories of lower layers and empties opaque directories', async () => {
    await apply([
      { name: 'a/x', data: '1' }, { name: 'a/y', data: '1' }, { name: 'b/z', data: '1' },
      { name: 'c/old', data: '1' }, { name: 'c/sub/deep', data: '1' }, { name: 'l', type: 'symlink', link: 'a' },
    ]);
    await apply([
      { name: 'a/.wh.x' }, { name: '.wh.b' }, { name: 'c', type: 'dir' }, { name: 'c/.wh..wh..opq' }, { name: 'c/new', data: '2' },
      { name: '.wh.l' }, { name: 'a/.wh.missing' },
    ]);
    expect(fs.readdirSync(root).sort()).toEqual(['a', 'c']);
    expect(fs.readdirSync(path.join(root, 'a'))).toEqual(['y']);
    expect(fs.readdirSync(path.join(root, 'c'))).toEqual(['new']);
  });
});

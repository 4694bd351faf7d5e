import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, chmodSync, existsSync, statSync, lchownSync, linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync, truncateSync, openSync, writeSync, closeSync, readdirSync, readFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../../../common/run.js';
import { DataDir } from '../../../server/context.js';
import { cloneImage, getImage, imageInfo, removeImage } from '../../../server/store/images.js';
import { commitImage, exportImage } from '../../../server/store/image-export.js';
import { garbageCollect, verifyImages } from '../../../server/store/image-gc.js';
import { importImage } from '../../../server/store/image-import.js';
import { layerNames, ZSTD_ARGV } from '../../../server/store/layers.js';
import { allocated, treeView } from './tree-compare.js';
import { tempDir } from './helpers.js';

const LONG = 'L'.repeat(200);
const NS_TIME = '2001-02-03 04:05:06.123456789';

/** A tree with every kind of entry and attribute a layer must keep. */
async function richTree(root: string): Promise<void> {
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'tmp'));
  mkdirSync(join(root, 'srv', 'shared'), { recursive: true });
  mkdirSync(join(root, 'private'));
  writeFileSync(join(root, 'etc', 'hostname'), 'rich\n');
  writeFileSync(join(root, 'etc', 'shadow'), 'root:*:1:0:99999:7:::\n');
  chmodSync(join(root, 'etc', 'shadow'), 0o000);
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'srv', 'shared'), 0o2775);
  chmodSync(join(root, 'private'), 0o700);
  writeFileSync(join(root, 'suid'), randomBytes(5000));
  chmodSync(join(root, 'suid'), 0o4755);
  writeFileSync(join(root, 'sgid'), 'x');
  chmodSync(join(root, 'sgid'), 0o2711);
  writeFileSync(join(root, 'owned'), 'owned by numbers');
  lchownSync(join(root, 'owned'), 1234, 5678);
  writeFileSync(join(root, 'bigid'), 'large ids');
  lchownSync(join(root, 'bigid'), 3_000_000, 3_000_001);
  lchownSync(join(root, 'private'), 42, 43);
  // Symlinks: relative, absolute, dangling, long target; owner of the link itself.
  symlinkSync('etc/hostname', join(root, 'rel-link'));
  symlinkSync('/etc/hostname', join(root, 'abs-link'));
  symlinkSync('does/not/exist', join(root, 'dangling'));
  symlinkSync('x/'.repeat(80) + 'target', join(root, 'long-link'));
  lchownSync(join(root, 'rel-link'), 7, 8);
  // Hardlinks: three names of one inode, one in another directory, one with a later name.
  writeFileSync(join(root, 'hl-b'), randomBytes(10_000));
  linkSync(join(root, 'hl-b'), join(root, 'hl-a'));
  linkSync(join(root, 'hl-b'), join(root, 'srv', 'hl-c'));
  // Devices and fifos.
  await run(['mknod', '-m', '0620', join(root, 'tty0'), 'c', '4', '0']);
  await run(['mknod', '-m', '0660', join(root, 'loopX'), 'b', '7', '300']);
  await run(['mknod', join(root, 'bigdev'), 'c', '300', '70000']);
  await run(['mkfifo', '-m', '0640', join(root, 'fifo')]);
  // Extended attributes: user (binary value, empty value), trusted, security.capability.
  await run(['setfattr', '-n', 'user.binary', '-v', '0x00ff10800a0d', join(root, 'etc', 'hostname')]);
  await run(['setfattr', '-n', 'user.empty', join(root, 'etc', 'hostname')]);
  await run(['setfattr', '-n', 'trusted.note', '-v', 'kept', join(root, 'owned')]);
  await run(['setfattr', '-n', 'user.dir', '-v', 'on a directory', join(root, 'srv')]);
  writeFileSync(join(root, 'ping'), randomBytes(2000));
  chmodSync(join(root, 'ping'), 0o755);
  await run(['setcap', 'cap_net_raw,cap_net_admin+ep', join(root, 'ping')]);
  // Long and non-ASCII names.
  const deep = join(root, LONG, LONG);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, LONG + '.txt'), 'deep and long');
  mkdirSync(join(root, 'ñandú', '日本語'), { recursive: true });
  writeFileSync(join(root, 'ñandú', '日本語', 'файл ü.txt'), 'unicode');
  writeFileSync(join(root, 'name with\nnewline'), 'odd');
  writeFileSync(join(root, 'back\\slash'), 'odd');
  // Sparse: 64 MiB with two data islands and a hole at the end; one fully empty of data.
  const sp = join(root, 'sparse.img');
  const fd = openSync(sp, 'w');
  writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 0);
  writeSync(fd, Buffer.from('middle'), 0, 6, 32 * 1024 * 1024 + 100);
  closeSync(fd);
  truncateSync(sp, 64 * 1024 * 1024);
  writeFileSync(join(root, 'holes-only'), '');
  truncateSync(join(root, 'holes-only'), 10 * 1024 * 1024);
  // Sizes on block boundaries and an empty file.
  writeFileSync(join(root, 'exact512'), randomBytes(512));
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'random3m'), randomBytes(3 * 1024 * 1024 + 7));
  // Nanosecond mtimes, and mtimes set last (children first, so directories keep theirs).
  const all = (await run(['find', root, '-depth', '-print0'])).stdout.split('\0').filter(Boolean);
  for (const p of all) await run(['touch', '-h', '-d', NS_TIME, p]);
  await run(['touch', '-h', '-d', '1999-12-31 23:59:59.5', join(root, 'dangling')]);
}

describe('layers: full fidelity, determinism, export and commit', () => {
  let t: ReturnType<typeof tempDir>;
  let d: DataDir;
  let tree: string;

  beforeAll(async () => {
    t = tempDir('ferry-layers-');
    d = new DataDir(join(t.dir, 'data'));
    tree = join(t.dir, 'tree');
    mkdirSync(tree);
    await richTree(tree);
  });
  afterAll(() => {
    d?.close();
    t?.cleanup();
  });

  it('the same tree gives the same digest, also from a copy', async () => {
    const a = await importImage(d, 'rich', { dir: tree, actor: 'test' });
    const b = await importImage(d, 'rich-again', { dir: tree, actor: 'test' });
    expect(b.layers[0].digest).toBe(a.layers[0].digest);
    const copy = join(t.dir, 'copy');
    await run(['cp', '-a', '--sparse=always', tree, copy]);
    const c = await importImage(d, 'rich-copy', { dir: copy, actor: 'test' });
    expect(c.layers[0].digest).toBe(a.layers[0].digest);
    const row = d.db.prepare('SELECT diff_id FROM layers WHERE digest = ?').get(a.layers[0].digest) as { diff_id: string };
    expect(row.diff_id).toMatch(/^sha256:[0-9a-f]{64}$/);
    // Sparse holes are not stored: the layer is far smaller than the 74 MiB of apparent size.
    expect(a.layers[0].uncompressedSize).toBeLessThan(8 * 1024 * 1024);
    rmSync(copy, { recursive: true, force: true });
  });

  it('layers are compressed on every core, and the bytes do not depend on the worker count', async () => {
    expect(ZSTD_ARGV).toContain('-T0');
    // 48 MiB of compressible text: several of zstd's jobs at level 3, so several workers run.
    const input = join(t.dir, 'zstd-input');
    const words = Array.from({ length: 4096 }, () => randomBytes(6).toString('hex'));
    const fd = openSync(input, 'w');
    for (let i = 0; i < 48; i++) writeSync(fd, Array.from({ length: 80_000 }, (_, j) => words[(i * 7919 + j * 104729) % words.length]).join(' ').slice(0, 1 << 20));
    closeSync(fd);
    const digest = async (threads: string) => (await run(['sh', '-c', `zstd -3 ${threads} -q -c ${input} | sha256sum`])).stdout.split(' ')[0];
    const one = await digest('-T1');
    expect(await digest('-T2')).toBe(one);
    expect(await digest(ZSTD_ARGV.filter((a) => a.startsWith('-T')).join(' '))).toBe(one);
    rmSync(input);
  });

  it('GNU tar reads the layer: capabilities, xattrs, sparse, hardlinks, devices', async () => {
    const l = imageInfo(getImage(d, 'rich')).layers[0];
    const r = await run(['tar', '--zstd', '--xattrs', '--xattrs-include=*', '--numeric-owner', '--quoting-style=literal', '-tvvf', d.blobs.path(l.digest)]);
    expect(r.stdout).toMatch(/-rwsr-xr-x +0\/0 .* suid\n/);
    expect(r.stdout).toMatch(/crw--w---- +0\/0 +4,0 .* tty0\n/);
    expect(r.stdout).toMatch(/brw-rw---- +0\/0 +7,300 .* loopX\n/);
    expect(r.stdout).toMatch(/3000000\/3000001 .* bigid\n/);
    expect(r.stdout).toMatch(/ping\n +x: 20 security.capability/);
    expect(r.stdout).toMatch(/etc\/hostname\n +x: 6 user.binary\n +x: 0 user.empty/);
    expect(r.stdout).toMatch(/sparse\.img/);
    expect(r.stdout).toMatch(/link to hl-a/);
    expect(r.stdout).toContain('ñandú/日本語/файл ü.txt');
  });

  it('exports a tree identical in every attribute', async () => {
    const out = join(t.dir, 'export');
    await exportImage(d, 'rich', out, { devices: true });
    // The export itself is 0700 (the image holds secrets); the rest is the image exactly.
    expect(statSync(out).mode & 0o7777).toBe(0o700);
    chmodSync(out, statSync(tree).mode & 0o7777);
    const want = await treeView(tree);
    const got = await treeView(out);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want)) expect({ path: k, ...got[k] }).toEqual({ path: k, ...want[k] });
    // The capability is the one setcap wrote, readable by getcap.
    expect((await run(['getcap', join(out, 'ping')])).stdout).toMatch(/cap_net_admin,cap_net_raw[=+]ep/);
    // Holes stay holes.
    expect(allocated(join(out, 'sparse.img'))).toBeLessThan(1024 * 1024);
    expect(allocated(join(out, 'holes-only'))).toBeLessThan(64 * 1024);
    // Hardlinks are links, not copies.
    expect(lstatSync(join(out, 'hl-a')).ino).toBe(lstatSync(join(out, 'hl-b')).ino);
    expect(lstatSync(join(out, 'srv', 'hl-c')).ino).toBe(lstatSync(join(out, 'hl-b')).ino);
    expect(lstatSync(join(out, 'hl-a')).nlink).toBe(3);
    rmSync(out, { recursive: true, force: true });
  });

  it('an export is 0700 and has no device nodes unless asked; a commit from it keeps them in the image', async () => {
    await cloneImage(d, 'rich', 'rich-nodev', { actor: 'test' });
    const out = join(t.dir, 'export-nodev');
    const info = await exportImage(d, 'rich-nodev', out);
    expect(info.skippedDevices).toBe(3); // tty0, loopX and bigdev
    expect(existsSync(join(out, 'tty0'))).toBe(false);
    expect(existsSync(join(out, 'loopX'))).toBe(false);
    expect(statSync(out).mode & 0o777).toBe(0o700);
    // The image's files are all there; until the operator opens it, only root reaches them.
    expect(existsSync(join(out, 'etc', 'shadow'))).toBe(true);
    appendFileSync(join(out, 'etc', 'hostname'), 'nodev\n');
    const c = await commitImage(d, 'rich-nodev', out, { actor: 'test' });
    expect(c.deleted).toBe(0);
    expect(c.added).toBe(1); // etc/hostname only: not the root's 0700, not the missing nodes
    const again = join(t.dir, 'export-nodev-2');
    await exportImage(d, `rich-nodev@${c.image!.version}`, again, { devices: true });
    expect(lstatSync(join(again, 'tty0')).isCharacterDevice()).toBe(true);
    expect(lstatSync(join(again, 'loopX')).isBlockDevice()).toBe(true);
    rmSync(out, { recursive: true, force: true });
    rmSync(again, { recursive: true, force: true });
  });

  it('refuses to export into a directory that has files', async () => {
    const out = join(t.dir, 'busy');
    mkdirSync(out);
    writeFileSync(join(out, 'x'), '');
    await expect(exportImage(d, 'rich', out)).rejects.toMatchObject({ code: 'FERRY_E_EXPORT_NOT_EMPTY' });
  });

  it('commits changes and deletions as a layer with whiteouts, the next version', async () => {
    const work = join(t.dir, 'work');
    await exportImage(d, 'rich', work);
    rmSync(join(work, 'etc', 'shadow'));
    rmSync(join(work, LONG), { recursive: true });
    rmSync(join(work, 'hl-a'));
    appendFileSync(join(work, 'etc', 'hostname'), 'changed\n');
    chmodSync(join(work, 'suid'), 0o755);
    rmSync(join(work, 'srv'), { recursive: true });
    writeFileSync(join(work, 'srv'), 'a directory became a file');
    mkdirSync(join(work, 'new', 'dir'), { recursive: true });
    writeFileSync(join(work, 'new', 'dir', 'file'), 'added');
    await run(['setfattr', '-n', 'user.added', '-v', 'yes', join(work, 'owned')]);
    const r = await commitImage(d, 'rich', work, { actor: 'test' });
    expect(r.image?.version).toBe(2);
    expect(r.image?.layers).toHaveLength(2);
    const base = imageInfo(getImage(d, 'rich@1')).layers[0];
    expect(r.image!.layers[0]).toEqual(base);
    const names = await layerNames(d.blobs, r.image!.layers[1]);
    expect(names).toEqual(expect.arrayContaining(['etc/.wh.shadow', `.wh.${LONG}`, '.wh.hl-a', '.wh.srv', 'srv', 'new/dir/file', 'etc/hostname', 'suid', 'owned']));
    // Unchanged content is not stored again.
    expect(names).not.toContain('random3m');
    expect(names).not.toContain('sparse.img');
    expect(r.image!.layers[1].size).toBeLessThan(64 * 1024);

    const out = join(t.dir, 'export2');
    await exportImage(d, 'rich@2', out);
    const want = await treeView(work);
    const got = await treeView(out);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want)) expect({ path: k, ...got[k] }).toEqual({ path: k, ...want[k] });
    expect(readFileSync(join(out, 'etc', 'hostname'), 'utf8')).toBe('rich\nchanged\n');

    // Nothing changed: nothing committed.
    const again = await commitImage(d, 'rich', out, { actor: 'test' });
    expect(again.image).toBeUndefined();
    expect(getImage(d, 'rich').version).toBe(2);
    rmSync(out, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('imports several tars as layers and honours opaque whiteouts on export', async () => {
    const a = join(t.dir, 'ta'), b = join(t.dir, 'tb');
    mkdirSync(join(a, 'opt', 'app'), { recursive: true });
    writeFileSync(join(a, 'opt', 'app', 'old1'), '1');
    writeFileSync(join(a, 'opt', 'app', 'old2'), '2');
    writeFileSync(join(a, 'keep'), 'k');
    writeFileSync(join(a, 'gone'), 'g');
    mkdirSync(join(b, 'opt', 'app'), { recursive: true });
    writeFileSync(join(b, 'opt', 'app', '.wh..wh..opq'), '');
    writeFileSync(join(b, 'opt', 'app', 'new'), 'n');
    writeFileSync(join(b, '.wh.gone'), '');
    await run(['tar', '-C', a, '-czf', join(t.dir, 'a.tar.gz'), '.']);
    await run(['tar', '-C', b, '--zstd', '-cf', join(t.dir, 'b.tar.zst'), '.']);
    const img = await importImage(d, 'stacked', { tars: [join(t.dir, 'a.tar.gz'), join(t.dir, 'b.tar.zst')], actor: 'test' });
    expect(img.layers).toHaveLength(2);
    expect(img.layers.every((l) => l.mediaType.endsWith('+zstd'))).toBe(true);
    const out = join(t.dir, 'stacked-out');
    await exportImage(d, 'stacked', out);
    expect(readdirSync(join(out, 'opt', 'app')).sort()).toEqual(['new']);
    expect(readdirSync(out).sort()).toEqual(['keep', 'opt']);
  });

  it('stores uncompressed layers on request, and commits onto a clone', async () => {
    const plain = await importImage(d, 'plain', { dir: join(tree, 'etc'), compression: 'none', actor: 'test' });
    expect(plain.layers[0].mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(plain.layers[0].size).toBe(plain.layers[0].uncompressedSize);
    const clone = cloneImage(d, 'plain', 'plain-clone', { actor: 'test' });
    const work = join(t.dir, 'clone-work');
    await exportImage(d, 'plain-clone', work);
    expect(readFileSync(join(work, 'hostname'), 'utf8')).toBe('rich\n');
    writeFileSync(join(work, 'motd'), 'clone only');
    const r = await commitImage(d, 'plain-clone', work, { actor: 'test' });
    expect(r.image).toMatchObject({ name: 'plain-clone', version: 2, master: 'plain@1' });
    expect(r.image!.layers[0]).toEqual(clone.layers[0]);
    expect(imageInfo(getImage(d, 'plain')).layers).toHaveLength(1);
    rmSync(work, { recursive: true, force: true });
  });

  it('exports a layer that writes through a symlink of a lower layer inside the export directory, as the installer does', async () => {
    const a = join(t.dir, 'sa'), b = join(t.dir, 'sb'), outside = join(t.dir, 'outside');
    mkdirSync(a);
    mkdirSync(outside);
    symlinkSync(outside, join(a, 'lib'));
    mkdirSync(join(b, 'lib'), { recursive: true });
    writeFileSync(join(b, 'lib', 'planted'), 'x');
    await run(['tar', '-C', a, '-cf', join(t.dir, 'sa.tar'), '.']);
    // Only the file, not its directory: the name goes through the lower layer's symlink.
    await run(['tar', '-C', b, '-cf', join(t.dir, 'sb.tar'), 'lib/planted']);
    await importImage(d, 'through-link', { tars: [join(t.dir, 'sa.tar'), join(t.dir, 'sb.tar')], actor: 'test' });
    const out = join(t.dir, 'through-out');
    await exportImage(d, 'through-link', out);
    expect(readdirSync(outside)).toEqual([]);
    // The absolute link is read as pointing inside the export (where the image will boot).
    expect(readFileSync(join(out, outside, 'planted'), 'utf8')).toBe('x');
  });

  // Found by an adversarial review: export checked names with one parser and extracted with
  // another (GNU tar), and a hard link through a lower layer's symlink linked a host file in.
  describe('hostile layers on export and commit: nothing outside the export directory changes', () => {
    const hostile = async (name: string, layers: unknown[]) => {
      const tars: string[] = [];
      for (const [i, spec] of layers.entries()) {
        const f = join(t.dir, `${name}-${i}.tar`);
        await run(['python3', join(__dirname, '..', 'helpers', 'hostile.py'), f, JSON.stringify(spec)]);
        tars.push(f);
      }
      return importImage(d, name, { tars, actor: 'test' }).then(() => undefined, (e) => e as { code: string });
    };
    const host = () => join(t.dir, 'host');
    const hostView = () => readdirSync(host()).sort().map((n) => `${n}:${lstatSync(join(host(), n)).nlink}:${readFileSync(join(host(), n), 'utf8')}`);
    let before: string[];
    afterEach(() => {
      expect(hostView()).toEqual(before);
    });
    const setup = () => {
      rmSync(host(), { recursive: true, force: true });
      mkdirSync(host());
      writeFileSync(join(host(), 'secret'), 'host secret');
      before = hostView();
    };

    it('a pax global header path= is read by the one reader: refused or confined', async () => {
      setup();
      const imp = await hostile('g-path', [{ global: { path: `../../../../../../../..${host()}/pwned` }, entries: [{ name: 'innocent', data: 'g' }] }]);
      if (imp) return expect(imp.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
      const e = await exportImage(d, 'g-path', join(t.dir, 'g-out')).then(() => undefined, (x) => x);
      expect(e?.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
    });

    it('GNU.sparse.name is read by the one reader: refused or confined', async () => {
      setup();
      const imp = await hostile('s-name', [[{ name: 'innocent', data: 's', pax: { 'GNU.sparse.name': `../../../../../../../..${host()}/pwned` } }]]);
      if (imp) return expect(imp.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
      const e = await exportImage(d, 's-name', join(t.dir, 's-out')).then(() => undefined, (x) => x);
      expect(e?.code).toBe('FERRY_E_LAYER_UNSAFE_PATH');
    });

    it('a hard link through a lower layer\'s symlink never links a host file into the export or the image', async () => {
      setup();
      expect(await hostile('hl', [[{ name: 'o', type: 'symlink', link: host() }], [{ name: 'h', type: 'link', link: 'o/secret' }]])).toBeUndefined();
      const e = await exportImage(d, 'hl', join(t.dir, 'hl-out')).then(() => undefined, (x) => x);
      expect(e?.code).toBe('FERRY_E_LAYER_EXTRACT');
      const work = join(t.dir, 'hl-work');
      mkdirSync(work);
      const c = await commitImage(d, 'hl', work, { actor: 'test' }).then(() => undefined, (x) => x);
      expect(c?.code).toBe('FERRY_E_LAYER_EXTRACT');
      expect(getImage(d, 'hl').version).toBe(1);
    });
  });

  it('refuses a tar with names that leave the root, storing nothing', async () => {
    const evil = join(t.dir, 'evil');
    mkdirSync(join(evil, 'sub'), { recursive: true });
    writeFileSync(join(evil, 'x'), 'x');
    await run(['tar', '-C', join(evil, 'sub'), '-cf', join(t.dir, 'evil.tar'), '--absolute-names', '../x']);
    const before = d.blobs.list().length;
    await expect(importImage(d, 'evil', { tars: [join(t.dir, 'evil.tar')], actor: 'test' })).rejects.toMatchObject({ code: 'FERRY_E_LAYER_UNSAFE_PATH' });
    expect(d.blobs.list().length).toBe(before);
    writeFileSync(join(t.dir, 'junk.tar'), randomBytes(4096));
    await expect(importImage(d, 'junk', { tars: [join(t.dir, 'junk.tar')], actor: 'test' })).rejects.toMatchObject({ code: 'FERRY_E_LAYER_INVALID' });
  });

  it('clones share layers; rm, gc and verify keep the store consistent', async () => {
    const clone = cloneImage(d, 'rich', 'rich-web', { inputs: { role: 'web' }, actor: 'test' });
    expect(clone.master).toBe('rich@2');
    expect(clone.layers).toEqual(imageInfo(getImage(d, 'rich')).layers);
    expect(clone.inputs).toEqual({ role: 'web' });
    expect(() => removeImage(d, 'rich', 'test')).toThrow(expect.objectContaining({ code: 'FERRY_E_IMAGE_IN_USE' }));
    expect((await verifyImages(d)).every((v) => v.ok)).toBe(true);

    // Remove everything that uses the commit layer; gc frees it and nothing else.
    const commitLayer = imageInfo(getImage(d, 'rich@2')).layers[1].digest;
    removeImage(d, 'rich-web', 'test');
    removeImage(d, 'rich@2', 'test');
    const dry = garbageCollect(d, 'test', true);
    expect(dry.removed).toEqual([commitLayer]);
    expect(d.blobs.has(commitLayer)).toBe(true);
    const gc = garbageCollect(d, 'test');
    expect(gc.removed).toEqual([commitLayer]);
    expect(d.blobs.has(commitLayer)).toBe(false);
    expect((await verifyImages(d)).every((v) => v.ok)).toBe(true);

    // A flipped byte is found.
    const victim = imageInfo(getImage(d, 'stacked')).layers[0].digest;
    const fd = openSync(d.blobs.path(victim), 'r+');
    const b = Buffer.alloc(1);
    const { readSync } = await import('node:fs');
    readSync(fd, b, 0, 1, 100);
    b[0] ^= 0xff;
    writeSync(fd, b, 0, 1, 100);
    closeSync(fd);
    const v = await verifyImages(d);
    expect(v.find((x) => x.digest === victim)).toMatchObject({ ok: false, images: ['stacked@1'] });
  });
});

describe('room check', () => {
  let t: ReturnType<typeof tempDir>;
  let mounted = false;
  afterEach(async () => {
    if (mounted) await run(['umount', join(t.dir, 'small')]);
    mounted = false;
    t.cleanup();
  });
  it('refuses an import that cannot fit before writing anything', async () => {
    t = tempDir('ferry-room-');
    const small = join(t.dir, 'small');
    mkdirSync(small);
    await run(['mount', '-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', small]);
    mounted = true;
    const d = new DataDir(join(small, 'data'));
    try {
      const big = join(t.dir, 'big');
      mkdirSync(big);
      writeFileSync(join(big, 'a'), randomBytes(8 * 1024 * 1024));
      await expect(importImage(d, 'big', { dir: big, actor: 'test' })).rejects.toMatchObject({ code: 'FERRY_E_NO_ROOM', details: expect.objectContaining({ requiredBytes: expect.any(Number), availableBytes: expect.any(Number) }) });
      expect(d.blobs.list()).toEqual([]);
      expect(readdirSync(d.blobs.tmpDir)).toEqual([]);
    } finally {
      d.close();
    }
  });
});

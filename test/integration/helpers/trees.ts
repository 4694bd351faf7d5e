/**
 * Test trees: a source tree with every file kind the installer must keep, a layer built from it
 * with GNU tar (the same way the layer builder keeps attributes), and a comparison of two trees
 * attribute by attribute.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from '../../../common/run.js';

export async function makeKitchenSink(dir: string): Promise<void> {
  const w = (p: string, data: string | Buffer, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), data);
    fs.chmodSync(path.join(dir, p), mode);
  };
  w('etc/hostname', 'image\n');
  w('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  w('empty', '');
  w('usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755);
  w('usr/bin/suid', 'suid', 0o4755);
  w('usr/bin/sgid', 'sgid', 0o2711);
  w('big.bin', Buffer.alloc(3 * 1024 * 1024 + 17, 7));
  w('random.bin', createHash('sha512').update('x').digest().toString('hex').repeat(5000));
  fs.mkdirSync(path.join(dir, 'tmp'));
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.mkdirSync(path.join(dir, 'srv/shared'), { recursive: true });
  fs.chmodSync(path.join(dir, 'srv/shared'), 0o2775);
  w('home/user/file', 'owned', 0o600);
  fs.chownSync(path.join(dir, 'home/user/file'), 1234, 5678);
  fs.chownSync(path.join(dir, 'home/user'), 1234, 5678);
  fs.symlinkSync('../usr/bin/tool', path.join(dir, 'etc/tool-link'));
  fs.symlinkSync('/etc/hostname', path.join(dir, 'abs-link'));
  fs.symlinkSync('/does/not/exist', path.join(dir, 'dangling'));
  fs.lchownSync(path.join(dir, 'dangling'), 42, 43);
  fs.linkSync(path.join(dir, 'etc/passwd'), path.join(dir, 'etc/passwd-hardlink'));
  await run(['mknod', '-m', '0666', path.join(dir, 'null'), 'c', '1', '3']);
  await run(['mknod', '-m', '0660', path.join(dir, 'loopdev'), 'b', '7', '200']);
  await run(['mknod', '-m', '0644', path.join(dir, 'fifo'), 'p']);
  w('xattr-file', 'x');
  await run(['setfattr', '-n', 'user.ferry', '-v', 'hello world', path.join(dir, 'xattr-file')]);
  await run(['setfattr', '-n', 'user.bin', '-v', '0x00ff10', path.join(dir, 'xattr-file')]);
  w('usr/bin/ping', 'ping', 0o755);
  // cap_net_raw+ep as a raw VFS capability (version 2).
  await run(['setfattr', '-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', path.join(dir, 'usr/bin/ping')]);
  // A sparse file: 64 MiB apparent, two small data islands.
  const sp = path.join(dir, 'var/lib/sparse.img');
  fs.mkdirSync(path.dirname(sp), { recursive: true });
  const fd = fs.openSync(sp, 'w');
  fs.ftruncateSync(fd, 64 * 1024 * 1024);
  fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 1024 * 1024);
  fs.writeSync(fd, Buffer.alloc(100, 2), 0, 100, 64 * 1024 * 1024 - 100);
  fs.closeSync(fd);
  const long = 'd'.repeat(90) + '/' + 'e'.repeat(90) + '/' + 'f'.repeat(120);
  w(long + '/file-with-a-long-name-' + 'g'.repeat(150), 'long');
  w('unicode/Grüße ✓ file', 'utf8');
  w('spaces and\nnewline', 'odd');
  for (const [p, t] of [['etc/hostname', '2020-01-02T03:04:05Z'], ['usr/bin', '2019-05-06T07:08:09Z'], ['empty', '2001-01-01T00:00:00Z']] as const) {
    const d = new Date(t);
    fs.utimesSync(path.join(dir, p), d, d);
  }
  fs.lutimesSync(path.join(dir, 'abs-link'), new Date('2018-01-01T00:00:00Z'), new Date('2018-01-01T00:00:00Z'));
}

/** Tar a tree the way the layer builder does (PAX, numeric owners, xattrs, sparse), compressed. */
export async function tarTree(dir: string, out: string, compress: 'zstd' | 'gzip' | 'none' = 'zstd', files: string[] = ['.']): Promise<void> {
  const tarFile = out + '.tar';
  await run(['tar', '--create', '--format=posix', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sparse', '-f', tarFile, '-C', dir, ...files]);
  if (compress === 'zstd') {
    await run(['zstd', '-q', '-3', '-f', '--rm', tarFile, '-o', out]);
  } else if (compress === 'gzip') {
    await run(['sh', '-c', 'gzip -c "$1" > "$2" && rm -f "$1"', 'sh', tarFile, out]);
  } else {
    fs.renameSync(tarFile, out);
  }
}

export function sha256File(file: string): string {
  return 'sha256:' + createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export interface Attrs {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtime?: number;
  rdev?: number;
  link?: string;
  content?: string;
  xattrs?: string;
  sparse?: boolean;
}

async function xattrsOf(p: string): Promise<string> {
  const r = await run(['getfattr', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', p], { quiet: true, okCodes: [0, 1] });
  return r.stdout.split('\n').filter((l) => l && !l.startsWith('#')).sort().join('\n');
}

/** Every attribute of every entry below `dir`, keyed by relative path; hard links as groups. */
export async function describeTree(dir: string, opts: { skipDirTimes?: boolean } = {}): Promise<{ entries: Record<string, Attrs>; links: string[][] }> {
  const entries: Record<string, Attrs> = {};
  const inodes = new Map<number, string[]>();
  const walk = async (rel: string) => {
    const p = rel ? path.join(dir, rel) : dir;
    const st = fs.lstatSync(p);
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
    const a: Attrs = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (type !== 'dir' || !opts.skipDirTimes) a.mtime = Math.floor(st.mtimeMs / 1000);
    if (type === 'file') {
      a.size = st.size;
      a.content = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
      a.sparse = st.blocks * 512 < st.size / 2;
      if (st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel]);
    }
    if (type === 'symlink') a.link = fs.readlinkSync(p);
    if (type === 'char' || type === 'block') a.rdev = st.rdev;
    if (type !== 'symlink') a.xattrs = await xattrsOf(p);
    entries[rel || '.'] = a;
    if (type === 'dir') for (const c of fs.readdirSync(p).sort()) await walk(rel ? rel + '/' + c : c);
  };
  await walk('');
  return { entries, links: [...inodes.values()].map((l) => l.sort()).sort() };
}

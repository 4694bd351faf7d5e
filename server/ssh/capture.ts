/**
 * `ferry image capture`: a machine's tree, read by the machine's own GNU tar and streamed over
 * the SSH channel into a new image version through the import path of `image import --tar`
 * (server/store/image-import.ts importImage: the same tar inspection, zstd, blob store, manifest).
 *
 * The remote tar keeps what an image needs: numeric owners, every extended attribute
 * (`--xattrs --xattrs-include=*`: file capabilities, SELinux labels and ACLs, which Linux keeps as
 * system.posix_acl_* attributes), sparse files (PAX 1.0, the format Ferry's reader takes) and one
 * file system only (`--one-file-system`: /proc, NFS or a USB disk mounted inside are not walked).
 * Nothing is stored unless the stream ends with tar's exit status: a dropped connection or a
 * failing tar leaves no blob and no image.
 */
import { mkdirSync, rmSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { FerryError, toFerryError } from '../../common/errors.js';
import { drained, extractPipeline } from '../../layers/apply.js';
import { TargetRoot } from '../../layers/target.js';
import type { DataDir } from '../context.js';
import { commitImage } from '../store/image-export.js';
import { importImage } from '../store/image-import.js';
import type { CustomizationItem } from '../../common/schema/api.js';
import { findImage, getImage, imageInfo, type ImageInfo } from '../store/images.js';
import type { Compression } from '../store/layers.js';
import { channelError, connect, type SshConnection } from './connect.js';
import { captureRemoteLayout, storeLayout } from './layout.js';
import { ferryKey, readIdentity } from './keys.js';
import { formatHostPort, shellCommand, type SshTarget } from './target.js';
import { ownerOf } from './trust.js';

/**
 * Left out of every capture (SystemImager's si_getimage list and its deploy-time excludes):
 * kernel and runtime file systems, temporary files, removable media, swap files, caches that
 * describe this machine's devices, and Ferry's own state. `/DIR/*` keeps DIR itself (empty), so
 * the captured image still has its mount points.
 */
export const DEFAULT_EXCLUDES = [
  '/proc/*',
  '/sys/*',
  '/dev/*',
  '/run/*',
  '/tmp/*',
  '/var/tmp/*',
  '/media/*',
  '/mnt/*',
  '/lost+found',
  '/swapfile',
  '/swap.img',
  '/var/lib/nfs/*',
  '/etc/lvm/cache/*',
  '/etc/udev/rules.d/70-persistent-net.rules',
  '/var/lib/ferry',
] as const;

/** A pattern given with --exclude: absolute within the captured root (`/var/cache/apt/*`). */
export function checkExclude(p: string): string {
  if (!p.startsWith('/') || p.includes('\0') || p.includes('\n') || p.split('/').includes('..')) {
    throw new FerryError('FERRY_E_CAPTURE_BAD_EXCLUDE', `the exclude pattern "${p}" is not an absolute path pattern inside the captured root`, {
      details: { pattern: p },
      hint: 'write patterns from the root of the captured tree, such as /var/cache/apt/* or /srv/scratch (shell wildcards * ? [..] allowed, no "..")',
    });
  }
  return p;
}

/** Read --exclude-from FILE's text: one pattern a line, # comments and blank lines ignored. */
export function parseExcludeList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map(checkExclude);
}

/**
 * The remote tar's argv (pure; run by the remote shell, quoted word by word). Patterns are
 * anchored at the root of the archive (`./proc/*`), so `/tmp/*` never matches `/srv/x/tmp/y`.
 */
export function captureArgv(root: string, excludes: readonly string[]): string[] {
  if (!root.startsWith('/') || root.includes('\0')) {
    throw new FerryError('FERRY_E_CAPTURE_BAD_ROOT', `--root "${root}" is not an absolute path`, { details: { root }, hint: 'give the directory to capture as an absolute path on the remote machine, such as /srv/chroots/web' });
  }
  return [
    'tar',
    '--create',
    '--file=-',
    `--directory=${root}`,
    '--format=posix',
    // atime and ctime change on every read; without them the same tree gives the same layer.
    '--pax-option=delete=atime,delete=ctime',
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    '--sparse',
    '--sparse-version=1.0',
    '--one-file-system',
    '--warning=no-file-ignored',
    '--anchored',
    ...excludes.map((p) => `--exclude=.${p}`),
    '.',
  ];
}

export interface CaptureOptions {
  target: SshTarget;
  identityFile?: string;
  root?: string;
  excludes?: string[];
  /** Leave out DEFAULT_EXCLUDES (a container tree that has no /proc to skip may still want them). */
  noDefaultExcludes?: boolean;
  hostKeys?: string[];
  acceptNew?: boolean;
  compression?: Compression;
  /** The new image's customization items (the CLI adds ssh-authorize-ferry unless --no-authorize-ferry). */
  customizations?: CustomizationItem[];
  actor: string;
  onProgress?: (bytes: number, entries: number) => void;
  /** tar's warnings (exit 1: a file changed while it was read). */
  onWarning?: (text: string) => void;
  /**
   * The disks whose layout is captured. Default: every disk when the root is `/`, none for a
   * --root tree (a chroot or container has no disks of its own). With disks named, a layout that
   * cannot be read fails the capture before anything is sent; by default it is a warning.
   */
  layoutDisks?: string[];
  noLayout?: boolean;
  /** The layout could not be captured (FERRY_W_CAPTURE_NO_LAYOUT); the image is still captured. */
  onLayoutWarning?: (text: string) => void;
}

export interface CaptureResult {
  /** The new version; undefined when a capture onto an existing image found no difference. */
  image?: ImageInfo;
  /** The version a difference layer was stored onto (NAME existed already). */
  onto?: string;
  added?: number;
  deleted?: number;
  /** DATA/layouts/NAME@VERSION.xml, for `ferry node add --layout`. */
  layoutPath?: string;
}

const STDERR_CAP = 64 * 1024;

/** The remote command's stdout as a stream that throws unless it ended with a good exit status. */
async function* remoteTar(ch: ClientChannel, where: string, onWarning?: (t: string) => void): AsyncGenerator<Buffer> {
  let exit: { code: number | null; signal?: string } | undefined;
  let stderr = '';
  ch.on('exit', (code: number | null, signal?: string) => {
    exit = { code, signal: signal ?? undefined };
  });
  ch.stderr.on('data', (b: Buffer) => {
    if (stderr.length < STDERR_CAP) stderr += b.toString('utf8');
  });
  const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
  const dropped = (why: string) =>
    new FerryError('FERRY_E_CAPTURE_DROPPED', `the capture from ${where} ended before the remote tar finished (${why}); nothing was stored`, {
      details: { where, reason: why },
      hint: 'check the network and the machine, then run the capture again',
    });
  try {
    for await (const b of ch) yield b as Buffer;
  } catch (e) {
    throw dropped((e as Error).message);
  }
  await closed;
  if (!exit) throw dropped('the connection closed without an exit status');
  if (exit.signal || exit.code === null) throw dropped(`tar was killed by ${exit.signal ?? 'a signal'}`);
  if (exit.code === 1) onWarning?.(stderr.trim() || 'tar: some files changed while they were read');
  else if (exit.code !== 0) {
    throw new FerryError('FERRY_E_CAPTURE_TAR_FAILED', `the remote tar on ${where} failed with exit code ${exit.code}; nothing was stored: ${stderr.trim().slice(-1500)}`, {
      details: { where, exitCode: exit.code, stderrTail: stderr.slice(-4000) },
      hint: 'read tar\'s message above: a missing --root, GNU tar missing on the machine (apt-get install tar), or a user without read access (capture as root)',
    });
  }
}

/**
 * A tar stream unpacked into `dir` with the installer's extractor (names resolved inside `dir`,
 * device nodes created: the tree is compared with an export made with --devices).
 */
async function extractStream(chunks: AsyncIterable<Buffer>, dir: string, onProgress?: (bytes: number, entries: number) => void): Promise<void> {
  const ref = { digest: `sha256:${'0'.repeat(64)}`, size: 0, mediaType: 'application/vnd.oci.image.layer.v1.tar' as const };
  mkdirSync(dir, { mode: 0o700 });
  const umask = process.umask(0);
  try {
    const p = extractPipeline(ref, new TargetRoot(dir), 'the captured stream', () => {}, { devices: true });
    let bytes = 0;
    try {
      for await (const chunk of chunks) {
        bytes += chunk.length;
        onProgress?.(bytes, 0);
        if (p.failure()) break;
        if (!p.input.write(chunk)) await drained(p.input, p.decompressed);
      }
    } catch (e) {
      await p.abort();
      throw toFerryError(e);
    }
    if (p.failure()) {
      await p.abort();
      throw toFerryError(p.failure());
    }
    const stats = await p.finish();
    onProgress?.(bytes, stats.entries);
  } finally {
    process.umask(umask);
  }
}

async function layoutOf(conn: SshConnection, o: CaptureOptions): Promise<string | undefined> {
  const root = o.root ?? '/';
  if (o.noLayout || (!o.layoutDisks?.length && root !== '/')) return undefined;
  try {
    return await captureRemoteLayout(conn, { disks: o.layoutDisks, root });
  } catch (e) {
    if (o.layoutDisks?.length) throw e;
    const fe = toFerryError(e);
    o.onLayoutWarning?.(`${fe.code}: ${fe.message}`);
    return undefined;
  }
}

/**
 * Capture a machine into image NAME. A new NAME becomes version 1 (one layer, the import path of
 * `image import --tar`). An existing NAME gets a next version holding only the difference: the
 * stream is unpacked into DATA/tmp and compared with the image by `image commit`'s own code
 * (server/store/image-export.ts commitImage), so an unchanged machine stores nothing.
 */
export async function captureImage(d: DataDir, name: string, o: CaptureOptions): Promise<CaptureResult> {
  const excludes = [...(o.noDefaultExcludes ? [] : DEFAULT_EXCLUDES), ...(o.excludes ?? []).map(checkExclude)];
  const argv = captureArgv(o.root ?? '/', excludes);
  const existing = findImage(d, name);
  const privateKey = o.identityFile ? readIdentity(o.identityFile) : ferryKey(d.dir).privateKey;
  // A node's address names the node: its recorded keys apply.
  const node = d.db.prepare('SELECT id, name FROM nodes WHERE address = ? OR address = ?').get(o.target.host, formatHostPort(o.target)) as { id: number; name: string } | undefined;
  const conn = await connect(d, o.target, { privateKey, owner: ownerOf(o.target, node), hostKeys: o.hostKeys, acceptNew: o.acceptNew });
  const where = `${o.target.user}@${formatHostPort(o.target)}:${o.root ?? '/'}`;
  let tmp: string | undefined;
  try {
    // Before the tree: a layout that must be captured and cannot be fails with nothing sent.
    const layoutXml = await layoutOf(conn, o);
    const ch = await new Promise<ClientChannel>((resolve, reject) =>
      conn.client.exec(`LC_ALL=C ${shellCommand(argv)}`, (err, c) => (err ? reject(channelError(conn, err)) : resolve(c))),
    );
    let connectionError: Error | undefined;
    conn.client.on('error', (e) => {
      connectionError = e;
      (ch as unknown as Duplex).destroy(e);
    });
    conn.client.on('close', () => {
      if (!connectionError) (ch as unknown as Duplex).destroy(new Error('the SSH connection closed'));
    });
    const chunks = remoteTar(ch, where, o.onWarning);
    let result: CaptureResult;
    if (!existing) {
      const image = await importImage(d, name, {
        stream: { what: where, chunks },
        compression: o.compression,
        customizations: o.customizations,
        actor: o.actor,
        action: 'image.capture',
        onProgress: o.onProgress,
      });
      result = { image };
    } else {
      const base = getImage(d, name);
      tmp = d.blobs.tempPath('capture');
      await extractStream(chunks, tmp, o.onProgress);
      const c = await commitImage(d, `${base.name}@${base.version}`, tmp, { actor: o.actor, compression: o.compression, action: 'image.capture' });
      result = { image: c.image, onto: `${base.name}@${base.version}`, added: c.added, deleted: c.deleted };
    }
    if (layoutXml) {
      const v = result.image ?? imageInfo(getImage(d, name));
      result.layoutPath = storeLayout(d.dir, v.name, v.version, layoutXml);
    }
    return result;
  } finally {
    conn.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

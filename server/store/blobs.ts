/**
 * The content-addressed blob store: DATA/blobs/sha256/HEX holds the bytes whose sha256
 * is HEX. A blob is written once (temporary file in DATA/tmp on the same file system,
 * fsync, rename, fsync of the directory) and never changed, so readers never see a
 * partial blob and any static server or cache can serve the directory as it is.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, openSync, fsyncSync, closeSync, existsSync, writeFileSync, write, fsync, fdatasync } from 'node:fs';
import { promisify } from 'node:util';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError } from '../../common/errors.js';
import { DIGEST_RE } from '../../common/protocol.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

export function assertDigest(digest: string, what = 'digest'): void {
  if (!DIGEST_RE.test(digest)) {
    throw new FerryError('FERRY_E_BAD_DIGEST', `${what} "${digest}" is not of the form sha256:<64 lowercase hex digits>`, {
      details: { digest },
      hint: 'copy the digest exactly as `ferry image show` prints it',
    });
  }
}

/** Whether a process of this machine's PID namespace is alive (EPERM: alive, not ours). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** DATA/tmp entries are named PREFIX-PID-HEX: the PID of the process that owns them. */
const TEMP_RE = /^[a-z]+-(\d+)-[0-9a-f]{12}(\.json)?(\.new)?$/;

/**
 * What an import or commit in progress holds: blobs it has stored but not yet registered in an
 * image. The digests are listed in DATA/tmp/lease-PID-HEX.json, written before each blob is
 * moved into place, so `image gc` (in this or any other process) reads them after it lists the
 * blobs and never removes one. A lease of a process that died is ignored and reclaimed.
 */
export class Lease {
  private digests = new Set<string>();
  constructor(private readonly file: string) {}
  hold(digest: string): void {
    if (this.digests.has(digest)) return;
    // Held only once the file says so (a full disk fails the write, and the blob is not stored).
    writeFileSync(this.file + '.new', JSON.stringify([...this.digests, digest]), { mode: 0o600 });
    renameSync(this.file + '.new', this.file);
    this.digests.add(digest);
  }
  /** The digests it holds. */
  held(): string[] {
    return [...this.digests];
  }
  release(): void {
    this.digests.clear();
    rmSync(this.file, { force: true });
    rmSync(this.file + '.new', { force: true });
  }
}

const BATCH = 1 << 20;
const writeAsync = promisify(write);
const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);
const SYNC_EVERY = 16 << 20;

/** Write all of buf at the file's current offset (a regular file may take less per call). */
async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await writeAsync(fd, buf, off, buf.length - off, null)).bytesWritten;
}

export class BlobStore {
  readonly dir: string;
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.dir = join(dataDir, 'blobs', 'sha256');
    this.tmpDir = join(dataDir, 'tmp');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  /** The file of a digest. The digest is validated, so the path never leaves the store. */
  path(digest: string): string {
    assertDigest(digest);
    return join(this.dir, digest.slice('sha256:'.length));
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  size(digest: string): number {
    return statSync(this.path(digest)).size;
  }

  /** A fresh temporary file name on the store's file system. */
  tempPath(prefix = 'blob'): string {
    return join(this.tmpDir, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Stream bytes into the store. Hashes while writing; when `expect` is given and
   * differs, nothing is stored. Returns the blob's digest and size.
   */
  async ingest(source: AsyncIterable<Buffer | Uint8Array> | Readable, expect?: string, beforeCommit?: () => Promise<unknown>, lease?: Lease): Promise<BlobInfo> {
    const tmp = this.tempPath();
    // Writes in batches of about 1 MiB on the thread pool, one at a time, while the next batch
    // comes in: the event loop stays free for the producer (an SSH channel must be read, and its
    // window opened, while the disk is written: `image capture` waited half a second per
    // 256 MiB on synchronous writes), and a batch is few enough round trips for the compressor's
    // pipe (one per 64 KiB chunk slowed it down).
    // Never world- or group-readable: images hold password hashes and host keys.
    const fd = openSync(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let inflight: Promise<void> | undefined;
    // Write-behind: every 16 MiB the written part is flushed to disk in the background, so the
    // last fsync waits for the tail only, not for the whole blob (a slow part of a capture).
    let unsynced = 0;
    let syncing: Promise<void> | undefined;
    const flush = async () => {
      if (inflight) await inflight;
      if (unsynced >= SYNC_EVERY && !syncing) {
        unsynced = 0;
        syncing = fdatasyncAsync(fd).finally(() => (syncing = undefined));
        syncing.catch(() => {});
      }
      if (!batchBytes) return;
      unsynced += batchBytes;
      const buf = batch.length === 1 ? batch[0] : Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      inflight = writeAll(fd, buf);
      // Awaited by the next flush (or the last): an error is thrown there.
      inflight.catch(() => {});
    };
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        batch.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
        batchBytes += chunk.length;
        if (batchBytes >= BATCH) await flush();
      }
      await flush();
      await inflight;
      await syncing;
      await fsyncAsync(fd);
    } catch (e) {
      await inflight?.catch(() => {});
      await syncing?.catch(() => {});
      closeSync(fd);
      await unlink(tmp).catch(() => {});
      throw this.explainNoSpace(e);
    }
    closeSync(fd);
    const digest = 'sha256:' + hash.digest('hex');
    if (expect && expect !== digest) {
      await unlink(tmp).catch(() => {});
      throw new FerryError('FERRY_E_DIGEST_MISMATCH', `received bytes hash to ${digest}, expected ${expect}`, {
        details: { expected: expect, actual: digest, size },
        hint: 'the source changed or was corrupted in transit; fetch it again',
      });
    }
    if (beforeCommit) {
      // The producer may still fail (a refused tar entry): then nothing is stored.
      try {
        await beforeCommit();
      } catch (e) {
        await unlink(tmp).catch(() => {});
        throw e;
      }
    }
    try {
      // The lease file is written on the same file system: a full disk can fail it too.
      lease?.hold(digest);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw this.explainNoSpace(e);
    }
    await this.commitTemp(tmp, digest);
    return { digest, size };
  }

  /** ENOSPC or EDQUOT while writing a blob: FERRY_E_NO_ROOM naming the data directory. */
  explainNoSpace(e: unknown): unknown {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') return e;
    return new FerryError('FERRY_E_NO_ROOM', `the data directory ${this.dataDir} ran out of ${code === 'EDQUOT' ? 'quota' : 'space'} while storing a layer (nothing was stored)`, {
      details: { dataDir: this.dataDir, errno: code },
      hint: 'free space (ferry image gc removes unreferenced layers), or use a data directory on a larger file system',
      cause: e,
    });
  }

  /** Move a finished, fsynced temporary file into place under its digest. */
  async commitTemp(tmp: string, digest: string): Promise<void> {
    const dest = this.path(digest);
    if (existsSync(dest)) {
      // Same digest, same bytes: the stored blob is kept unchanged.
      await unlink(tmp);
      return;
    }
    await rename(tmp, dest);
    const dfd = openSync(this.dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  list(): string[] {
    return readdirSync(this.dir)
      .filter((f) => /^[0-9a-f]{64}$/.test(f))
      .map((f) => 'sha256:' + f)
      .sort();
  }

  remove(digest: string): void {
    unlinkSync(this.path(digest));
  }

  /** Recompute a blob's sha256 from its bytes. */
  async hash(digest: string): Promise<string> {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(this.path(digest), { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
    return 'sha256:' + h.digest('hex');
  }

  /** A lease for blobs this process stores and has not registered yet (release it when done). */
  lease(): Lease {
    return new Lease(this.tempPath('lease') + '.json');
  }

  /** Digests held by leases of living processes (this one included). */
  leased(): Set<string> {
    const out = new Set<string>();
    for (const f of readdirSync(this.tmpDir)) {
      const m = TEMP_RE.exec(f);
      if (!m || !f.startsWith('lease-') || !f.endsWith('.json') || !pidAlive(Number(m[1]))) continue;
      try {
        for (const d of JSON.parse(readFileSync(join(this.tmpDir, f), 'utf8')) as string[]) out.add(d);
      } catch (e) {
        // Released between the listing and the read: it holds nothing any more.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    return out;
  }

  /**
   * Remove what interrupted writes left in DATA/tmp: every entry (a file, or a directory such as
   * an interrupted commit's export) whose owning process is gone, at once; an entry whose name
   * names no process, once it is older than `olderThanMs`. Entries of living processes stay.
   */
  cleanTemp(olderThanMs = 3600_000): number {
    let n = 0;
    for (const f of readdirSync(this.tmpDir)) {
      const p = join(this.tmpDir, f);
      const m = TEMP_RE.exec(f);
      try {
        const stale = m ? !pidAlive(Number(m[1])) : Date.now() - statSync(p).mtimeMs > olderThanMs;
        if (stale) {
          rmSync(p, { recursive: true, force: true });
          n++;
        }
      } catch {
        /* raced with another cleaner */
      }
    }
    return n;
  }
}

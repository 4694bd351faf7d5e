/**
 * The content-addressed blob store: DATA/blobs/sha256/HEX holds the bytes whose sha256
 * is HEX. A blob is written once (temporary file in DATA/tmp on the same file system,
 * fsync, rename, fsync of the directory) and never changed, so readers never see a
 * partial blob and any static server or cache can serve the directory as it is.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, statSync, unlinkSync, openSync, fsyncSync, closeSync, existsSync, writeSync } from 'node:fs';
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
  async ingest(source: AsyncIterable<Buffer | Uint8Array> | Readable, expect?: string, beforeCommit?: () => Promise<unknown>): Promise<BlobInfo> {
    const tmp = this.tempPath();
    // Synchronous writes: blobs are written by CLI commands (import, commit), where a
    // thread-pool round trip per 64 KiB chunk only slowed the compressor's pipe down.
    // Never world- or group-readable: images hold password hashes and host keys.
    const fd = openSync(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      fsyncSync(fd);
    } catch (e) {
      closeSync(fd);
      await unlink(tmp).catch(() => {});
      throw e;
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
    await this.commitTemp(tmp, digest);
    return { digest, size };
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

  /** Remove temporary files left by interrupted writes of earlier processes. */
  cleanTemp(olderThanMs = 3600_000): number {
    let n = 0;
    for (const f of readdirSync(this.tmpDir)) {
      const p = join(this.tmpDir, f);
      try {
        if (Date.now() - statSync(p).mtimeMs > olderThanMs) {
          unlinkSync(p);
          n++;
        }
      } catch {
        /* raced with another cleaner */
      }
    }
    return n;
  }
}

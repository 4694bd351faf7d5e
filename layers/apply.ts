/**
 * One layer's way from compressed bytes to files, shared by the installer (bytes from a
 * transport) and the server (`image export`, `image commit`: bytes from the store): decompress,
 * parse with the one tar reader (layers/tar.ts) and write with the one extractor
 * (layers/extract.ts), so what decides a name and what writes it can never disagree.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { PassThrough, type Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { FerryError, toFerryError } from '../common/errors.js';
import type { LayerRef } from '../common/protocol.js';
import { spawnTool } from '../common/run.js';
import { Extractor, type ExtractOptions, type ExtractStats } from './extract.js';
import { TarParser } from './tar.js';
import type { TargetRoot } from './target.js';

export type Warn = (message: string, details?: Record<string, unknown>) => void;

interface Decompressor {
  input: Writable;
  done: Promise<void>;
  abort(): void;
}

export function decompressor(mediaType: string, feed: (b: Buffer) => void): Decompressor {
  if (mediaType.endsWith('+zstd')) {
    const z = spawnTool(['zstd', '-dcq'], { quiet: true });
    z.child.stdout!.on('data', feed);
    z.child.stdin!.on('error', () => {
      /* zstd stopped reading: its exit status tells why */
    });
    return { input: z.child.stdin!, done: z.done.then(() => undefined), abort: () => z.child.kill('SIGKILL') };
  }
  if (mediaType.endsWith('+gzip')) {
    const g = zlib.createGunzip({ chunkSize: 256 * 1024 });
    g.on('data', feed);
    const done = new Promise<void>((res, rej) => {
      g.on('end', res);
      g.on('close', res);
      g.on('error', rej);
    });
    done.catch(() => {});
    return { input: g, done, abort: () => g.destroy() };
  }
  if (mediaType.endsWith('.tar')) {
    const p = new PassThrough();
    p.on('data', feed);
    const done = new Promise<void>((res) => {
      p.on('end', res);
      p.on('close', res);
    });
    return { input: p, done, abort: () => p.destroy() };
  }
  throw new FerryError('FERRY_E_LAYER_MEDIA_TYPE', `unsupported layer media type "${mediaType}"`, {
    details: { mediaType }, hint: 'layers must be tar, tar+gzip or tar+zstd',
  });
}

/** Wait for 'drain', or for the stream or the decompressor to end; leaves no listener behind. */
export function drained(w: Writable, ended: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      w.off('drain', finish);
      w.off('close', finish);
      w.off('error', finish);
      resolve();
    };
    w.on('drain', finish);
    w.on('close', finish);
    w.on('error', finish);
    ended.then(finish, finish);
  });
}

/** One layer's way from compressed bytes to files: a stream to write into, and its end. */
export interface Pipeline {
  input: Writable;
  /** Settles when the decompressor has finished (or failed: `failure()` then says why). */
  decompressed: Promise<void>;
  failure(): unknown;
  abort(): Promise<void>;
  /** After the last byte went in: wait for the extraction and return its statistics. */
  finish(): Promise<ExtractStats>;
}

export function corruptError(label: string, ref: LayerRef, e: unknown): FerryError {
  return new FerryError('FERRY_E_LAYER_CORRUPT', `${label} could not be decompressed: ${(e as Error).message}`, {
    details: { digest: ref.digest, mediaType: ref.mediaType, tool: (e as FerryError).details }, hint: 'the blob is damaged; re-import the image',
  });
}

/** Decompress (node:zlib or a zstd child) and feed the parser and the extractor on this thread. */
export function extractPipeline(ref: LayerRef, target: TargetRoot, label: string, warn: Warn, opts: ExtractOptions = {}): Pipeline {
  const extractor = new Extractor(target, warn, opts);
  const parser = new TarParser(extractor);
  let failed: unknown;
  let aborted = false;
  const feed = (b: Buffer) => {
    // After abort nothing more is written: a late chunk could open another file.
    if (failed || aborted) return;
    try {
      parser.write(b);
    } catch (e) {
      failed = e;
      d.abort();
    }
  };
  const d = decompressor(ref.mediaType, feed);
  const decompressed = d.done.then(
    () => undefined,
    (e) => {
      failed ??= corruptError(label, ref, e);
    },
  );
  return {
    input: d.input,
    decompressed,
    failure: () => failed,
    abort: async () => {
      aborted = true;
      d.abort();
      extractor.close();
    },
    async finish() {
      d.input.end();
      await decompressed;
      if (!failed) {
        try {
          parser.end();
        } catch (e) {
          failed = e;
        }
      }
      try {
        if (failed) throw toFerryError(failed);
        await extractor.finish();
        return extractor.stats;
      } finally {
        // Whatever ended the stream, no half-written file keeps its descriptor (extract.ts close).
        extractor.close();
      }
    },
  };
}


/**
 * Extract a layer stored in a local file (the server's blob store) into `target`, checking its
 * digest as it is read: a blob that does not match fails with FERRY_E_LAYER_DIGEST.
 */
export async function extractLayerFile(file: string, ref: LayerRef, target: TargetRoot, o: { warn?: Warn } & ExtractOptions = {}): Promise<ExtractStats> {
  const label = `layer ${ref.digest}`;
  const umask = process.umask(0);
  try {
    const p = extractPipeline(ref, target, label, o.warn ?? (() => {}), { devices: o.devices });
    const hash = createHash('sha256');
    try {
      for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
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
    const actual = 'sha256:' + hash.digest('hex');
    if (actual !== ref.digest) {
      await p.abort();
      throw new FerryError('FERRY_E_LAYER_DIGEST', `${label}: digest mismatch: expected ${ref.digest}, got ${actual}`, {
        details: { expected: ref.digest, actual, file },
        hint: 'the stored blob is damaged; run `ferry image verify` and re-import the image',
      });
    }
    return await p.finish();
  } finally {
    process.umask(umask);
  }
}

/**
 * The next layer downloads while the previous one extracts (issue 16). Over HTTP (the server and
 * its mirrors), while layer N goes through its sink, layer N+1 is fetched into a file on the
 * target's own file system (ROOT/.ferry-prefetch-HEX, mode 0700: a layer can be larger than
 * RAM), hashed as it arrives. Its turn then reads that file into the one layer sink, which checks
 * size and sha256 again before the layer counts (nothing of a prefetched layer counts earlier).
 *
 *  - Bounded: one layer ahead, never more (`LayerPipeline` holds at most one prefetch).
 *  - Room: only when the staging file system has the blob's size free on top of what the layers
 *    not yet extracted unpack to (else an info event says why not, and the layer streams as before).
 *  - Failures: a prefetch that fails (a source down, a digest mismatch) says so in a warning and
 *    its layer is applied by the usual path at its turn (streamed, with every fallback). A staged
 *    file the sink then rejects is the same: warned, and the layer streams again.
 *  - Cancel-safe: `close()` (the stage's finally, on success, failure or abort) cancels a running
 *    download at once (the request is destroyed) and removes every staging directory.
 * Torrent and multicast layers are not prefetched: the torrent transport stages its layer itself,
 * and a multicast session has its own pace.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, rmSync, statfsSync, statSync, utimesSync } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { dirname, join } from 'node:path';
import { FerryError, toFerryError } from '../../common/errors.js';
import type { ProgressSink } from '../../common/progress.js';
import type { LayerRef } from '../../common/protocol.js';
import type { Backoff } from '../retry.js';
import { blobUrl, MIRROR_BACKOFF, mirrorBlobUrl, streamBlob } from './http.js';
import type { LayerTransport } from './types.js';

export interface PrefetchOptions {
  baseUrl: string;
  token?: string;
  mirrors?: string[];
  /** The directory on the target's file system that holds staged layers (the target root). */
  stageDir: string;
  progress?: ProgressSink;
  backoff?: Backoff;
}

interface Prefetch {
  ref: LayerRef;
  index: number;
  dir: string;
  ac: AbortController;
  /** The staged, verified file; undefined when the prefetch failed or was cancelled. */
  result: Promise<string | undefined>;
}

/** Pure: whether a staged copy of `next` fits beside what is still to be extracted. */
export function prefetchFits(next: LayerRef, pending: LayerRef[], availableBytes: number): { fits: boolean; need: number } {
  // A layer of an old manifest has no unpacked size: count it as four times its blob.
  const need = next.size + pending.reduce((s, l) => s + (l.uncompressedSize ?? 4 * l.size), 0);
  return { fits: availableBytes >= need, need };
}

/** A layer's bytes read from its staged file, into the sink (which verifies them again). */
export function stagedTransport(file: string): LayerTransport {
  return {
    kind: 'http',
    async deliver(_ref, sink, o) {
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal: o.signal })) await sink.write(chunk as Buffer);
    },
  };
}

export class LayerPipeline {
  private current?: Prefetch;
  private readonly dirs = new Set<string>();

  constructor(private readonly o: PrefetchOptions) {}

  /**
   * Start fetching `ref` (the layer at `index`) unless one is already running or staged, or it
   * does not fit. `pending` are the layers not yet extracted, `ref` included.
   */
  start(ref: LayerRef, index: number, pending: LayerRef[]): void {
    if (this.current) return;
    let avail: number;
    try {
      const st = statfsSync(this.o.stageDir);
      avail = Number(st.bavail) * Number(st.bsize);
    } catch {
      return;
    }
    const room = prefetchFits(ref, pending, avail);
    if (!room.fits) {
      this.o.progress?.({ phase: 'layers', state: 'info', object: ref.digest, message: `layer ${index + 1}: not fetched ahead (the target has ${avail} bytes free, staging it beside the layers still to extract needs ${room.need})`, details: { prefetch: 'skipped', layer: index, availableBytes: avail, needBytes: room.need } });
      return;
    }
    const hex = ref.digest.slice('sha256:'.length);
    const dir = join(this.o.stageDir, `.ferry-prefetch-${hex.slice(0, 16)}`);
    this.dirs.add(dir);
    const ac = new AbortController();
    this.current = { ref, index, dir, ac, result: this.fetch(ref, index, dir, ac.signal) };
  }

  private async fetch(ref: LayerRef, index: number, dir: string, signal: AbortSignal): Promise<string | undefined> {
    const label = `layer ${index + 1} ${ref.digest}`;
    const file = join(dir, ref.digest.slice('sha256:'.length));
    const sources = [
      ...(this.o.mirrors ?? []).map((m) => ({ url: mirrorBlobUrl(m, ref.digest), token: undefined, backoff: MIRROR_BACKOFF, mirror: m as string | undefined })),
      { url: blobUrl(this.o.baseUrl, ref.digest), token: this.o.token, backoff: this.o.backoff, mirror: undefined },
    ];
    const started = Date.now();
    this.o.progress?.({ phase: 'layers', state: 'info', object: ref.digest, message: `${label}: fetching ahead while the layer before it extracts`, details: { prefetch: 'start', layer: index, total: ref.size } });
    try {
      // The target root's times are the layers' (their last directory pass sets them): keep them.
      const st = statSync(this.o.stageDir);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { mode: 0o700 });
      utimesSync(this.o.stageDir, st.atimeMs / 1000, st.mtimeMs / 1000);
    } catch (e) {
      this.o.progress?.({ phase: 'layers', state: 'warning', object: ref.digest, code: toFerryError(e).code, message: `${label}: cannot stage it ahead (${(e as Error).message}); it will stream at its turn`, details: { prefetch: 'failed', layer: index } });
      return undefined;
    }
    for (const s of sources) {
      if (signal.aborted) return undefined;
      const hash = createHash('sha256');
      const ws = createWriteStream(file, { mode: 0o600 });
      try {
        await streamBlob(s.url, ref.size, async (chunk) => {
          hash.update(chunk);
          if (!ws.write(chunk)) await once(ws, 'drain');
        }, { token: s.token, backoff: s.backoff, signal });
        ws.end();
        await finished(ws);
        const actual = 'sha256:' + hash.digest('hex');
        if (actual !== ref.digest) {
          throw new FerryError('FERRY_E_LAYER_DIGEST', `${label}: digest mismatch: expected ${ref.digest}, got ${actual}`, {
            details: { layer: index, expected: ref.digest, actual, size: ref.size, url: s.url },
            hint: 'the blob changed on the server or in transit; verify the store (ferry image verify) and re-import the image',
          });
        }
        this.o.progress?.({ phase: 'layers', state: 'info', object: ref.digest, message: `${label}: fetched ahead and verified (${ref.size} bytes in ${Date.now() - started} ms)${s.mirror ? ` from ${s.mirror}` : ''}`, details: { prefetch: 'done', layer: index, bytes: ref.size, ms: Date.now() - started, ...(s.mirror ? { mirror: s.mirror } : {}) } });
        return file;
      } catch (e) {
        ws.destroy();
        await finished(ws).catch(() => undefined);
        if (signal.aborted) return undefined;
        const f = toFerryError(e);
        this.o.progress?.({ phase: 'layers', state: 'warning', object: ref.digest, code: f.code, message: `${label}: fetching ahead${s.mirror ? ` from ${s.mirror}` : ''} failed (${f.message}); ${s === sources[sources.length - 1] ? 'it will stream at its turn' : 'trying the next source'}`, details: { prefetch: 'failed', layer: index, code: f.code, reason: f.message, ...(s.mirror ? { mirror: s.mirror } : {}) } });
      }
    }
    this.remove(dir);
    return undefined;
  }

  /**
   * The layer at `index`'s staged file, once its prefetch has ended; undefined when it was not
   * fetched ahead or its prefetch failed (then the caller streams it as usual).
   */
  async take(index: number): Promise<{ file: string; release: () => void } | undefined> {
    const p = this.current;
    if (!p || p.index !== index) return undefined;
    const file = await p.result;
    this.current = undefined;
    if (!file) return undefined;
    return { file, release: () => this.remove(p.dir) };
  }

  /** Remove a staging directory, keeping the times of the directory it was in (the layers set them). */
  private remove(dir: string): void {
    this.dirs.delete(dir);
    const parent = dirname(dir);
    let st;
    try {
      st = statSync(parent);
    } catch {
      return;
    }
    rmSync(dir, { recursive: true, force: true });
    utimesSync(parent, st.atimeMs / 1000, st.mtimeMs / 1000);
  }

  /** Cancel a running prefetch and remove every staging directory. Never throws. */
  async close(): Promise<void> {
    const p = this.current;
    this.current = undefined;
    if (p) {
      p.ac.abort();
      await p.result.catch(() => undefined);
    }
    for (const d of [...this.dirs]) {
      try {
        this.remove(d);
      } catch {
        /* best effort: the directory is inside the target root */
      }
    }
  }
}

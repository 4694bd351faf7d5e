/**
 * The HTTP transport: stream each blob from the server straight into the layer sink (hash,
 * decompress, extract: the blob is never stored). A dropped connection resumes with a Range
 * request from the byte where it stopped, so hash and decompressor see one continuous stream.
 * Every other transport falls back to this one.
 */
import { httpRequest } from '../http.js';
import { FerryError, toFerryError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { ProgressSink } from '../../common/progress.js';
import { blobPath } from '../../common/protocol.js';
import { DEFAULT_BACKOFF, backoffDelay, delay, isRetriableNetworkError, type Backoff } from '../retry.js';
import type { LayerTransport } from './types.js';

export interface FetchOptions {
  token?: string;
  backoff?: Backoff;
  /** Called with the bytes received so far. */
  onBytes?: (bytes: number) => void;
  /** Told about each resume, for the event log. */
  onRetry?: (info: { attempt: number; received: number; error: string; delayMs: number }) => void;
  /** Aborting it ends the download at once (no retry): it throws FERRY_E_LAYER_CANCELLED. */
  signal?: AbortSignal;
}

function cancelled(url: string, received: number): FerryError {
  return new FerryError('FERRY_E_LAYER_CANCELLED', `the download of ${url} was cancelled after ${received} bytes`, {
    details: { url, received },
    hint: 'nothing to do: the install stopped (or no longer needs this download)',
  });
}

/**
 * GET a blob and hand its bytes to `sink` in order, exactly once each, resuming after network
 * failures with `Range: bytes=N-`. A 4xx is final; network errors and 5xx retry with jittered
 * backoff until `giveUpAfterMs` passes without progress.
 */
export async function streamBlob(url: string, size: number, sink: (chunk: Buffer) => void | Promise<void>, o: FetchOptions = {}): Promise<number> {
  const b = o.backoff ?? DEFAULT_BACKOFF;
  let received = 0;
  let attempt = 0;
  let firstFailure = 0;
  for (;;) {
    let failure: unknown;
    let status = 0;
    try {
      const headers: Record<string, string> = {};
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      if (received > 0) headers.range = `bytes=${received}-`;
      if (o.signal?.aborted) throw cancelled(url, received);
      const res = await httpRequest(url, { headers, headersTimeout: 30_000, bodyTimeout: 60_000, signal: o.signal });
      status = res.statusCode;
      if (status >= 400) {
        const text = (await res.body.text().catch(() => '')).slice(0, 500);
        if (status < 500 && status !== 408 && status !== 429) {
          throw new FerryError('FERRY_E_LAYER_FETCH', `the server refused the blob ${url}: HTTP ${status}`, {
            details: { url, status, body: text },
            hint: status === 401 || status === 403 ? 'the deploy token is wrong or expired: arm the node again (ferry deploy)' : status === 404 ? 'the blob is missing from the server store: re-import the image' : 'read the server\'s answer in details.body',
          });
        }
        throw Object.assign(new Error(`HTTP ${status}: ${text}`), { code: 'HTTP_5XX' });
      }
      let skip = 0;
      if (received > 0) {
        if (status === 206) {
          const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
          if (!m || Number(m[1]) !== received) {
            await res.body.dump();
            throw new FerryError('FERRY_E_LAYER_FETCH', `the server resumed ${url} at the wrong offset (asked ${received}, got "${res.headers['content-range']}")`, {
              details: { url, asked: received, contentRange: res.headers['content-range'] },
              hint: 'the server or a proxy in between mishandles Range requests',
            });
          }
        } else {
          // No Range support: read again from the start and drop what we already have.
          skip = received;
        }
      }
      for await (const raw of res.body) {
        let chunk = raw as Buffer;
        if (skip) {
          if (chunk.length <= skip) {
            skip -= chunk.length;
            continue;
          }
          chunk = chunk.subarray(skip);
          skip = 0;
        }
        if (received + chunk.length > size) {
          throw new FerryError('FERRY_E_LAYER_SIZE', `blob ${url} is longer than the ${size} bytes the image says`, {
            details: { url, expected: size, receivedAtLeast: received + chunk.length },
            hint: 'the stored blob does not match the image manifest; re-import the image',
          });
        }
        received += chunk.length;
        attempt = 0;
        firstFailure = 0;
        try {
          await sink(chunk);
        } catch (e) {
          throw Object.assign(toFerryError(e), { fromSink: true });
        }
        o.onBytes?.(received);
      }
      if (received === size) return received;
      failure = new Error(`connection closed after ${received} of ${size} bytes`);
    } catch (e) {
      if ((e as { fromSink?: boolean }).fromSink || e instanceof FerryError) throw e;
      if (o.signal?.aborted) throw cancelled(url, received);
      if (!isRetriableNetworkError(e) && (e as { code?: string }).code !== 'HTTP_5XX') {
        throw new FerryError('FERRY_E_LAYER_FETCH', `could not download ${url}: ${(e as Error).message}`, {
          details: { url, received, size }, cause: e, hint: 'check the server address and that the server is running',
        });
      }
      failure = e;
    }
    if (!firstFailure) firstFailure = Date.now();
    if (Date.now() - firstFailure > b.giveUpAfterMs) {
      throw new FerryError('FERRY_E_LAYER_FETCH', `gave up downloading ${url} after ${Math.round((Date.now() - firstFailure) / 1000)} s of failures (${received} of ${size} bytes): ${(failure as Error).message}`, {
        details: { url, received, size, status },
        hint: 'the server is unreachable or keeps failing; check it and the network, then arm the node again',
      });
    }
    const ms = backoffDelay(attempt++, b);
    o.onRetry?.({ attempt, received, error: (failure as Error).message, delayMs: ms });
    log.info('blob download interrupted; resuming', { url, received, size, error: (failure as Error).message, delayMs: ms });
    await delay(ms);
  }
}

export function blobUrl(baseUrl: string, digest: string): string {
  return new URL(blobPath(digest), baseUrl.endsWith('/') ? baseUrl : baseUrl + '/').toString();
}

export const httpTransport: LayerTransport = {
  kind: 'http',
  async deliver(ref, sink, o) {
    await streamBlob(blobUrl(o.baseUrl, ref.digest), ref.size, (chunk) => sink.write(chunk), {
      token: o.token,
      backoff: o.backoff,
      onRetry: (r) => o.progress?.({ phase: 'layers', state: 'warning', object: ref.digest, message: `connection lost after ${r.received} bytes (${r.error}); resuming in ${r.delayMs} ms`, details: r }),
    });
  },
};

/** A mirror gets this long without progress before the next mirror (or the server) is tried. */
export const MIRROR_BACKOFF: Backoff = { baseMs: 200, maxMs: 1_000, giveUpAfterMs: 3_000 };

/**
 * A static HTTP mirror of the server's blob store (`ferry serve --mirror URL`): the blob
 * sha256:HEX is at URL/sha256/HEX (the store's own layout, DATA/blobs/sha256/HEX). The deploy token is never sent to a mirror (it is not the server's
 * to hand out); the layer's size and sha256, checked by the sink, are the only trust.
 */
export function mirrorTransport(mirror: string): LayerTransport {
  return {
    kind: 'http',
    source: mirror,
    async deliver(ref, sink, o) {
      await streamBlob(mirrorBlobUrl(mirror, ref.digest), ref.size, (chunk) => sink.write(chunk), {
        backoff: MIRROR_BACKOFF,
        onRetry: (r) => o.progress?.({ phase: 'layers', state: 'warning', object: ref.digest, message: `mirror ${mirror}: connection lost after ${r.received} bytes (${r.error}); resuming in ${r.delayMs} ms`, details: { ...r, mirror } }),
      });
    },
  };
}

/** Where a static mirror holds a blob: MIRROR/sha256/HEX (the store's own layout). */
export function mirrorBlobUrl(mirror: string, digest: string): string {
  return `${mirror.replace(/\/+$/, '')}/sha256/${digest.slice('sha256:'.length)}`;
}

/**
 * Serving immutable files (blobs, kernel, initrd): HEAD, a single byte Range,
 * If-Range, ETag/If-None-Match and correct 416 answers, streamed with backpressure
 * (the next chunk is read only when the socket took the one before the last).
 */
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * Parse a Range header against a size (RFC 9110 §14). Only single ranges are served;
 * a multi-range or malformed header is ignored (the whole file is sent), as allowed.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'full' };
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  let start: number, end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' };
  }
  if (start >= size || size === 0) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export interface ServeOptions {
  etag: string;
  contentType: string;
  /** Content never changes under this URL (content-addressed blobs). */
  immutable?: boolean;
}

export async function serveFile(req: IncomingMessage, res: ServerResponse, file: string, o: ServeOptions): Promise<void> {
  const st = statSync(file);
  const size = st.size;
  const headers: Record<string, string | number> = {
    'content-type': o.contentType,
    etag: o.etag,
    'last-modified': st.mtime.toUTCString(),
    'accept-ranges': 'bytes',
    'cache-control': o.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  };
  if (etagMatches(req.headers['if-none-match'], o.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  let range = parseRange(req.headers.range, size);
  // If-Range with another validator: the client's partial copy is stale, send it all.
  const ifRange = req.headers['if-range'] as string | undefined;
  if (range.kind !== 'full' && ifRange !== undefined && ifRange.trim() !== o.etag) {
    const asDate = Date.parse(ifRange);
    const fresh = !Number.isNaN(asDate) && !ifRange.trim().startsWith('"') && Math.floor(st.mtimeMs / 1000) * 1000 <= asDate;
    if (!fresh) range = { kind: 'full' };
  }
  if (range.kind === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-length': 0 });
    res.end();
    return;
  }
  const start = range.kind === 'partial' ? range.start : 0;
  const end = range.kind === 'partial' ? range.end : size - 1;
  const length = size === 0 ? 0 : end - start + 1;
  if (range.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${size}`;
  headers['content-length'] = length;
  res.writeHead(range.kind === 'partial' ? 206 : 200, headers);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  try {
    await sendRange(file, start, length, res);
  } catch {
    // The client went away mid-transfer (or the file could not be read): the socket is closed.
    res.destroy();
  }
}

/** Bytes per read and write. */
export const CHUNK = 1 << 20;

/**
 * Send `length` bytes of `file` from `start`, through two buffers that are read into and sent
 * in turn: while one is on its way to the socket the other is filled, and a buffer is filled
 * again only after the socket took it (its write callback). No buffer is allocated per chunk:
 * a fresh 1 MiB buffer per read (fs.createReadStream) made V8 run a full mark-compact for the
 * external memory about every 50 MB at 16 concurrent downloads, doubling the CPU per byte
 * (scripts/bench/blobs, "ferry CPU s/GB").
 */
export async function sendRange(file: string, start: number, length: number, res: ServerResponse): Promise<void> {
  const fh = await open(file, 'r');
  // A client that goes away ends the transfer even if a write's callback never comes.
  let onClose = () => {};
  const gone = new Promise<never>((_, reject) => {
    onClose = () => reject(new Error('the client closed the connection'));
    res.once('close', onClose);
  });
  gone.catch(() => {});
  try {
    const size = Math.min(CHUNK, length);
    const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    const sent: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
    let pos = start;
    let left = length;
    for (let i = 0; left > 0; i ^= 1) {
      await Promise.race([sent[i], gone]);
      const buf = bufs[i];
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, left), pos);
      if (bytesRead === 0) throw new Error(`${file} ended ${left} bytes early`);
      pos += bytesRead;
      left -= bytesRead;
      sent[i] = new Promise<void>((resolve, reject) => {
        res.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), (e) => (e ? reject(e) : resolve()));
      });
      // A failed write is seen when its buffer is needed again, or below.
      sent[i].catch(() => {});
    }
    await Promise.race([Promise.all(sent), gone]);
    await Promise.race([new Promise<void>((resolve) => res.end(resolve)), gone]);
  } finally {
    res.off('close', onClose);
    await fh.close();
  }
}

/**
 * The installer's one HTTP client, on node:http. Why not undici, a well-kept client: undici 7
 * (the last line that runs on Node 20, the boot environment's runtime) throws an uncatchable
 * AssertionError from its socket 'end' handler when a server or a proxy closes a connection
 * while the response body is paused under backpressure (nodejs/undici#5360, fixed only in 8.x,
 * which needs Node ≥ 22.19). A layer download applies backpressure on every chunk (the sink
 * waits for the decompressor), so about one install in 15-30 through a dropping connection
 * crashed without a result. node:http surfaces the same event as an error on the body stream,
 * which the retry loop (installer/retry.ts) handles.
 *
 * The surface is the part of undici's `request` the installer used: a status, the headers and a
 * body stream with text() and dump(), with a deadline for the headers and one for each silence
 * in the body.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';

export interface HttpRequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Milliseconds from sending the request to the end of the response headers. */
  headersTimeout?: number;
  /** Milliseconds the body may stay silent (no byte) before the request fails. */
  bodyTimeout?: number;
  /** Aborting it ends the request and its body at once (ABORT_ERR). */
  signal?: AbortSignal;
}

export interface HttpResponse {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body: HttpBody;
}

export interface HttpBody extends AsyncIterable<Buffer> {
  /** The whole body as UTF-8 text. */
  text(): Promise<string>;
  /** Read and drop the rest of the body (lets the connection be reused). */
  dump(): Promise<void>;
  readonly stream: Readable;
}

/** A network failure with a code installer/retry.ts knows (ETIMEDOUT, ECONNRESET, …). */
function netError(message: string, code: string, cause?: unknown): Error {
  return Object.assign(new Error(message, cause ? { cause } : undefined), { code });
}

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 8 }), https: new https.Agent({ keepAlive: true, maxSockets: 8 }) };

export function httpRequest(url: string, o: HttpRequestOptions = {}): Promise<HttpResponse> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
  if (!lib) return Promise.reject(new TypeError(`unsupported URL scheme in ${url}`));
  const headersTimeout = o.headersTimeout ?? 30_000;
  const bodyTimeout = o.bodyTimeout ?? 60_000;
  return new Promise<HttpResponse>((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
    const req = lib.request(u, { method: o.method ?? 'GET', headers, agent: u.protocol === 'https:' ? agents.https : agents.http });
    let settled = false;
    if (o.signal) {
      const onAbort = () => req.destroy(netError(`the request to ${u.host} was cancelled`, 'ABORT_ERR'));
      if (o.signal.aborted) onAbort();
      else {
        o.signal.addEventListener('abort', onAbort, { once: true });
        req.on('close', () => o.signal!.removeEventListener('abort', onAbort));
      }
    }
    const headerTimer = setTimeout(() => {
      req.destroy(netError(`no response headers from ${u.host} within ${headersTimeout} ms`, 'ETIMEDOUT'));
    }, headersTimeout);
    req.on('error', (e) => {
      clearTimeout(headerTimer);
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    req.on('response', (res) => {
      clearTimeout(headerTimer);
      settled = true;
      // A silent body fails after bodyTimeout; the timer restarts on every byte.
      res.setTimeout(bodyTimeout, () => res.destroy(netError(`the body from ${u.host} stayed silent for ${bodyTimeout} ms`, 'ETIMEDOUT')));
      // A connection that ends before the body does: node:http says "aborted"; make it a
      // retriable error on the stream, whatever the Node release.
      res.on('aborted', () => res.destroy(netError(`the connection to ${u.host} closed in the middle of the body`, 'ECONNRESET')));
      const body: HttpBody = {
        stream: res,
        [Symbol.asyncIterator]: () => res[Symbol.asyncIterator]() as AsyncIterator<Buffer>,
        async text() {
          const parts: Buffer[] = [];
          for await (const c of res) parts.push(c as Buffer);
          return Buffer.concat(parts).toString('utf8');
        },
        async dump() {
          // eslint-disable-next-line @typescript-eslint/no-unused-vars
          for await (const _ of res) {
            /* drop */
          }
        },
      };
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body });
    });
    if (o.body !== undefined) req.end(o.body);
    else req.end();
  });
}

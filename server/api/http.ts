/**
 * Ferry's HTTP conventions, shared by the fastify app (server/api/app.ts) and route modules
 * mounted as plain (ctx, req, res) handlers: error bodies (ErrorBody) and their statuses,
 * JSON answers, the JSON body rules, bearer tokens, names in URLs, 404 and 405 answers.
 */
import { jsonDepth, MAX_JSON_DEPTH } from '../../common/json-depth.js';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { FerryError, ValidationError, toFerryError } from '../../common/errors.js';
import type { ErrorBody } from '../../common/protocol.js';
import { NAME_PATTERN } from '../../common/schema/builders.js';

const NAME_RE = new RegExp(NAME_PATTERN);

/** The HTTP status of each error code the API answers with; others are 400, internal 500. */
const STATUS: Record<string, number> = {
  FERRY_E_TOKEN_MISSING: 401,
  FERRY_E_TOKEN_INVALID: 401,
  FERRY_E_TOKEN_EXPIRED: 401,
  FERRY_E_TOKEN_REVOKED: 401,
  FERRY_E_TOKEN_ENDED: 401,
  FERRY_E_MEDIUM_REVOKED: 403,
  FERRY_E_FORBIDDEN: 403,
  FERRY_E_CSRF: 403,
  FERRY_E_SESSION_EXPIRED: 401,
  FERRY_E_SESSION_INVALID: 401,
  FERRY_E_UI_NOT_BUILT: 503,
  FERRY_E_NOT_FOUND: 404,
  FERRY_E_NODE_NOT_FOUND: 404,
  FERRY_E_IMAGE_NOT_FOUND: 404,
  FERRY_E_GROUP_NOT_FOUND: 404,
  FERRY_E_DEPLOYMENT_NOT_FOUND: 404,
  FERRY_E_LAYOUT_NOT_FOUND: 404,
  FERRY_E_BLOB_MISSING: 404,
  FERRY_E_BOOT_FILE_MISSING: 404,
  FERRY_E_METHOD_NOT_ALLOWED: 405,
  FERRY_E_NODE_EXISTS: 409,
  FERRY_E_IMAGE_EXISTS: 409,
  FERRY_E_IMAGE_IN_USE: 409,
  FERRY_E_MAC_IN_USE: 409,
  FERRY_E_ENLIST_SERIAL_MATCH: 409,
  FERRY_E_ENLIST_NO_INVENTORY: 404,
  FERRY_E_GROUP_CYCLE: 409,
  FERRY_E_DEPLOYMENT_ENDED: 409,
  FERRY_E_REQUEST_TIMEOUT: 408,
  FERRY_E_BODY_TOO_LARGE: 413,
  FERRY_E_HEADERS_TOO_LARGE: 431,
  FERRY_E_UNSUPPORTED_MEDIA_TYPE: 415,
  FERRY_E_INTERNAL: 500,
  FERRY_E_DB_OPEN: 500,
};

export function statusOf(e: FerryError): number {
  return STATUS[e.code] ?? (['FERRY_E_COMMAND_FAILED', 'FERRY_E_COMMAND_TIMEOUT', 'FERRY_E_TOOL_MISSING'].includes(e.code) ? 500 : 400);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** The answer to an error: its status, the headers it needs and the ErrorBody. */
export function errorAnswer(e: unknown): { status: number; headers: Record<string, string>; body: ErrorBody } {
  const err = toFerryError(e);
  const status = statusOf(err);
  const details = { ...err.details };
  // Internal causes stay in the server's log, not in answers to clients.
  if (status >= 500) for (const k of Object.keys(details)) delete details[k];
  const body: ErrorBody = { error: { code: err.code, message: status >= 500 && err.code === 'FERRY_E_INTERNAL' ? 'internal server error' : err.message, hint: err.hint, details } };
  const headers: Record<string, string> = {};
  // The client may still be sending a body we refused; close instead of reading it.
  if (status === 413) headers.connection = 'close';
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="ferry"';
  return { status, headers, body };
}

/**
 * Node's HTTP parser refuses a request before any route sees it (headers over 16 KiB, a body cut
 * short, a malformed request line, a request slower than the server's timeouts): answer with
 * Ferry's error body, as every other refusal, instead of fastify's own JSON, then close.
 */
export function clientErrorAnswer(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let e: FerryError;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    e = new FerryError('FERRY_E_REQUEST_TIMEOUT', 'the request was not received in time', { hint: 'send the whole request at once; the server waits 30 s for headers and 120 s for a request' });
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    e = new FerryError('FERRY_E_HEADERS_TOO_LARGE', 'the request line and headers are larger than 16 KiB', { hint: 'send shorter URLs, query strings and headers' });
  } else {
    e = new ValidationError('FERRY_E_BAD_REQUEST', 'the request', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$', message: `not a valid HTTP request (${err.code ?? 'parse error'}): ended early or malformed` }]);
  }
  const a = errorAnswer(e);
  const text = JSON.stringify(a.body);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${a.status} ${STATUS_CODES[a.status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${text}`);
  }
  socket.destroy();
}

export function sendError(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const a = errorAnswer(e);
  sendJson(res, a.status, a.body, a.headers);
}

export function httpError(code: string, message: string, hint?: string, details?: Record<string, unknown>): FerryError {
  return new FerryError(code, message, { hint, details });
}

/** The bearer token of a request, or undefined. */
export function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : '';
}

export const DEFAULT_BODY_LIMIT = 1 << 20;

export function bodyTooLarge(limit = DEFAULT_BODY_LIMIT): FerryError {
  return httpError('FERRY_E_BODY_TOO_LARGE', `the request body is larger than the limit of ${limit} bytes`, 'send less data per request', { limit });
}

/** Bodies are JSON; a request without a Content-Type is read as JSON too. */
export function checkJsonType(contentType: string | undefined): void {
  const ct = (contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
  if (ct !== 'application/json') {
    throw httpError('FERRY_E_UNSUPPORTED_MEDIA_TYPE', `the request body must be application/json, not ${ct}`, 'send JSON with Content-Type: application/json');
  }
}

/** The one JSON body parser: an empty or malformed body is a problem at `$`. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new ValidationError('FERRY_E_BAD_REQUEST', 'the request body', [{ severity: 'error', code: 'FERRY_E_BAD_JSON', path: '$', message: 'the body is empty; a JSON value is required' }]);
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new ValidationError('FERRY_E_BAD_JSON', 'the request body', [{ severity: 'error', code: 'FERRY_E_BAD_JSON', path: '$', message: `nests ${depth} levels deep; at most ${MAX_JSON_DEPTH} are accepted` }]);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ValidationError('FERRY_E_BAD_JSON', 'the request body', [{ severity: 'error', code: 'FERRY_E_BAD_JSON', path: '$', message: `is not valid JSON: ${(e as Error).message}` }]);
  }
}

/**
 * Read a JSON body of at most `limit` bytes, for route modules mounted as plain handlers
 * (app.ts mountRaw); fastify routes get theirs parsed by the same rules. Larger bodies are
 * refused as soon as the declared length or the received bytes pass the limit.
 */
export async function readJson(req: IncomingMessage, limit = DEFAULT_BODY_LIMIT): Promise<unknown> {
  checkJsonType(req.headers['content-type']);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw bodyTooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > limit) throw bodyTooLarge(limit);
      chunks.push(c as Buffer);
    }
  } catch (e) {
    if (e instanceof FerryError) throw e;
    // The client went away or stopped mid-body ("aborted", ECONNRESET): its fault, not ours.
    throw new ValidationError('FERRY_E_BAD_REQUEST', 'the request body', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$', message: `the body ended after ${size} bytes (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` }]);
  }
  if (Number.isFinite(declared) && size < declared) {
    throw new ValidationError('FERRY_E_BAD_REQUEST', 'the request body', [{ severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$', message: `the body ended after ${size} of ${declared} bytes` }]);
  }
  return parseJsonBody(Buffer.concat(chunks).toString('utf8'));
}

export function methodNotAllowed(allowed: string[]): FerryError {
  return new FerryError('FERRY_E_METHOD_NOT_ALLOWED', `method not allowed here; use ${allowed.join(' or ')}`, { details: { allowed }, hint: `use ${allowed.join(' or ')}` });
}

export function notFound(path: string): FerryError {
  return new FerryError('FERRY_E_NOT_FOUND', `nothing at ${path.slice(0, 200)}`, { details: { path: path.slice(0, 200) }, hint: 'see docs/operator-guide.md for the server\'s routes' });
}

/** A name taken from a URL (already decoded once by the router), held to the command line's rule. */
export function urlName(s: string, kind: string): string {
  const plain = s.replace(/@[0-9]+$/, '');
  if (!NAME_RE.test(plain)) {
    throw new FerryError('FERRY_E_BAD_NAME', `${kind} name ${JSON.stringify(s.slice(0, 200))} in the URL is not allowed`, {
      details: { kind, name: s.slice(0, 200) },
      hint: 'names hold only letters, digits, ".", "_" and "-" (no "/" or "..")',
    });
  }
  return s;
}

/**
 * Small HTTP plumbing on node:http: JSON answers, error bodies (ErrorBody), bounded
 * JSON request bodies, bearer tokens.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError, ValidationError, toFerryError } from '../../common/errors.js';
import type { ErrorBody } from '../../common/protocol.js';

/** The HTTP status of each error code the API answers with; others are 400, internal 500. */
const STATUS: Record<string, number> = {
  FERRY_E_TOKEN_MISSING: 401,
  FERRY_E_TOKEN_INVALID: 401,
  FERRY_E_TOKEN_EXPIRED: 401,
  FERRY_E_TOKEN_REVOKED: 401,
  FERRY_E_TOKEN_ENDED: 401,
  FERRY_E_FORBIDDEN: 403,
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
  FERRY_E_GROUP_CYCLE: 409,
  FERRY_E_DEPLOYMENT_ENDED: 409,
  FERRY_E_BODY_TOO_LARGE: 413,
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

export function sendError(res: ServerResponse, e: unknown): void {
  const err = toFerryError(e);
  const status = statusOf(err);
  const details = { ...err.details };
  // Internal causes stay in the server's log, not in answers to clients.
  if (status >= 500) for (const k of Object.keys(details)) delete details[k];
  const body: ErrorBody = { error: { code: err.code, message: status >= 500 && err.code === 'FERRY_E_INTERNAL' ? 'internal server error' : err.message, hint: err.hint, details } };
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = {};
  // The client may still be sending a body we refused; close instead of reading it.
  if (status === 413) headers.connection = 'close';
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="ferry"';
  sendJson(res, status, body, headers);
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

/**
 * Read a JSON body of at most `limit` bytes. Larger bodies are refused as soon as the
 * declared length or the received bytes pass the limit (the rest is not read).
 */
export async function readJson(req: IncomingMessage, limit = DEFAULT_BODY_LIMIT): Promise<unknown> {
  const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase();
  if (ct !== 'application/json') {
    throw httpError('FERRY_E_UNSUPPORTED_MEDIA_TYPE', `the request body must be application/json, not ${ct}`, 'send JSON with Content-Type: application/json');
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  const tooLarge = () => httpError('FERRY_E_BODY_TOO_LARGE', `the request body is larger than the limit of ${limit} bytes`, 'send less data per request', { limit });
  if (declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw tooLarge();
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ValidationError('FERRY_E_BAD_REQUEST', 'the request body', [{ severity: 'error', code: 'FERRY_E_BAD_JSON', path: '$', message: 'the body is empty; a JSON value is required' }]);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ValidationError('FERRY_E_BAD_JSON', 'the request body', [{ severity: 'error', code: 'FERRY_E_BAD_JSON', path: '$', message: `is not valid JSON: ${(e as Error).message}` }]);
  }
}

/** Drain (up to a bound) a request body the route does not read, so keep-alive works. */
export function discardBody(req: IncomingMessage): void {
  req.resume();
}

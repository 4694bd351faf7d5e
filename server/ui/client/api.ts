/**
 * The console's calls: the same admin API the CLI uses, authenticated by the session cookie
 * (sent by the browser) and, on every state-changing call, the session's CSRF header.
 */
export interface ApiError {
  code: string;
  message: string;
  hint?: string;
}

export class CallError extends Error {
  constructor(readonly status: number, readonly error: ApiError) {
    super(`${error.code}: ${error.message}`);
  }
}

let csrf = '';
let csrfHeader = 'x-ferry-csrf';
let onLoggedOut: () => void = () => {};

export function setSession(s: { csrf: string; csrfHeader: string }): void {
  csrf = s.csrf;
  csrfHeader = s.csrfHeader;
}

export function whenLoggedOut(f: () => void): void {
  onLoggedOut = f;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers[csrfHeader] = csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await r.text();
  const data = text ? JSON.parse(text) : {};
  if (!r.ok) {
    const e = new CallError(r.status, data.error ?? { code: `HTTP ${r.status}`, message: 'the server answered without a Ferry error body' });
    if (r.status === 401 && !path.startsWith('/ui/login')) onLoggedOut();
    throw e;
  }
  return data as T;
}

export const ADMIN = '/api/v1/admin';

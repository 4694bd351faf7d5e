/**
 * The web console's sessions: server-side, in memory, bounded. Logging in with the admin token
 * makes a session (a random id in an HttpOnly cookie) with its own CSRF token, which the page
 * sends in a header on every state-changing request. A session ends on logout, after
 * `idleMs` without a request, or `maxAgeMs` after login; the oldest goes when `max` are open.
 * Nothing here is written to disk: a restarted server asks for the token again.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FerryError } from '../../common/errors.js';
import { parseDuration } from '../../common/units.js';

export const SESSION_COOKIE = 'ferry_session';
export const CSRF_HEADER = 'x-ferry-csrf';

export interface Session {
  id: string;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

export interface SessionLimits {
  /** Sessions open at once; logging in past it ends the least recently used. */
  max: number;
  idleMs: number;
  maxAgeMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { max: 64, idleMs: 30 * 60_000, maxAgeMs: 12 * 3600_000 };

/** The longest a console session may last (`ferry serve --session-max-age`). */
export const MAX_SESSION_AGE_MS = 30 * 86400_000;

/**
 * `ferry serve --session-idle D --session-max-age D` (30m, 12h, 7d): the limits of console
 * sessions, each defaulting to DEFAULT_SESSION_LIMITS. The idle expiry cannot be longer than the
 * lifetime it would never reach.
 */
export function sessionLimits(o: { idle?: string; maxAge?: string }): SessionLimits {
  const max = { ms: MAX_SESSION_AGE_MS, text: 'the longest console session, 30 days', hint: 'give at most 30d' };
  const idleMs = o.idle !== undefined ? parseDuration(o.idle, 'sessionIdle', max) : DEFAULT_SESSION_LIMITS.idleMs;
  const maxAgeMs = o.maxAge !== undefined ? parseDuration(o.maxAge, 'sessionMaxAge', max) : DEFAULT_SESSION_LIMITS.maxAgeMs;
  if (idleMs > maxAgeMs) {
    throw new FerryError('FERRY_E_BAD_VALUE', `--session-idle ${o.idle ?? `${idleMs / 60_000}m`} is longer than --session-max-age ${o.maxAge ?? `${maxAgeMs / 3600_000}h`}`, {
      details: { idleSeconds: idleMs / 1000, maxAgeSeconds: maxAgeMs / 1000 },
      hint: 'give an idle expiry no longer than the session lifetime',
    });
  }
  return { ...DEFAULT_SESSION_LIMITS, idleMs, maxAgeMs };
}

export type Lookup = { ok: true; session: Session } | { ok: false; why: 'missing' | 'unknown' | 'expired' };

function same(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore {
  /** Insertion order is least-recently-used first (touch re-inserts). */
  private sessions = new Map<string, Session>();

  constructor(readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS, private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.sessions.size;
  }

  create(): Session {
    this.sweep();
    while (this.sessions.size >= this.limits.max) this.sessions.delete(this.sessions.keys().next().value as string);
    const t = this.now();
    const s: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), createdAt: t, lastSeen: t };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session of this id (and it counts as activity), or why there is none. */
  lookup(id: string | undefined): Lookup {
    if (!id) return { ok: false, why: 'missing' };
    const s = this.sessions.get(id);
    if (!s) return { ok: false, why: 'unknown' };
    const t = this.now();
    if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) {
      this.sessions.delete(id);
      return { ok: false, why: 'expired' };
    }
    s.lastSeen = t;
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return { ok: true, session: s };
  }

  /** Whether a request's CSRF header is this session's token. */
  csrfOk(s: Session, header: string | string[] | undefined): boolean {
    return typeof header === 'string' && same(header, s.csrf);
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) this.sessions.delete(id);
  }
}

/** The session cookie's value in a request, if any. */
export function sessionCookie(req: IncomingMessage): string | undefined {
  const h = req.headers.cookie;
  if (!h) return undefined;
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === SESSION_COOKIE) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie value: HttpOnly, SameSite=Strict, Secure when the page came over HTTPS. */
export function cookieHeader(value: string, o: { secure: boolean; maxAgeS: number }): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${o.maxAgeS}${o.secure ? '; Secure' : ''}`;
}

export const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { cookieHeader, SessionStore, sessionCookie } from '../../server/ui/sessions.js';
import { parseErrorCatalogue } from '../../common/error-catalogue.js';
import type { IncomingMessage } from 'node:http';

const req = (cookie?: string) => ({ headers: cookie === undefined ? {} : { cookie } }) as IncomingMessage;

describe('console sessions', () => {
  it('ends a session after its idle time and after its lifetime, whatever the activity', () => {
    let now = 0;
    const s = new SessionStore({ max: 10, idleMs: 1000, maxAgeMs: 5000 }, () => now);
    const a = s.create();
    now = 900;
    expect(s.lookup(a.id).ok).toBe(true);
    now = 1800; // 900 ms after the last request: still alive
    expect(s.lookup(a.id).ok).toBe(true);
    now = 2801;
    expect(s.lookup(a.id)).toEqual({ ok: false, why: 'expired' });
    expect(s.lookup(a.id)).toEqual({ ok: false, why: 'unknown' });
    const b = s.create();
    for (let t = 2801; t <= 7801; t += 500) {
      now = t;
      const l = s.lookup(b.id);
      expect(l.ok).toBe(t - 2801 <= 5000);
      if (!l.ok) break;
    }
  });

  it('keeps at most `max` sessions, dropping the least recently used', () => {
    const s = new SessionStore({ max: 2, idleMs: 1e9, maxAgeMs: 1e9 });
    const a = s.create(), b = s.create();
    s.lookup(a.id); // a is now more recent than b
    const c = s.create();
    expect(s.size).toBe(2);
    expect(s.lookup(b.id).ok).toBe(false);
    expect(s.lookup(a.id).ok && s.lookup(c.id).ok).toBe(true);
    s.end(a.id);
    expect(s.lookup(a.id)).toEqual({ ok: false, why: 'unknown' });
    expect(s.lookup(undefined)).toEqual({ ok: false, why: 'missing' });
  });

  it('checks the CSRF token exactly', () => {
    const s = new SessionStore();
    const a = s.create();
    expect(s.csrfOk(a, a.csrf)).toBe(true);
    expect(s.csrfOk(a, a.csrf.slice(1))).toBe(false);
    expect(s.csrfOk(a, undefined)).toBe(false);
    expect(s.csrfOk(a, [a.csrf])).toBe(false);
    expect(s.create().csrf).not.toBe(a.csrf);
  });

  it('reads the cookie among others and writes it HttpOnly, SameSite=Strict, Secure only under HTTPS', () => {
    expect(sessionCookie(req('a=1; ferry_session=abc ; b=2'))).toBe('abc');
    expect(sessionCookie(req('xferry_session=abc'))).toBeUndefined();
    expect(sessionCookie(req())).toBeUndefined();
    expect(cookieHeader('v', { secure: false, maxAgeS: 60 })).toBe('ferry_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60');
    expect(cookieHeader('v', { secure: true, maxAgeS: 60 })).toMatch(/; Secure$/);
  });
});

describe('the errors catalogue as data (what the console shows as the fix line)', () => {
  it('reads every code of docs/errors.md with its whole fix paragraph', () => {
    const c = parseErrorCatalogue(readFileSync('docs/errors.md', 'utf8'));
    expect(Object.keys(c).length).toBeGreaterThan(50);
    for (const [code, e] of Object.entries(c)) expect(e.fix, code).toBeTruthy();
    expect(c.FERRY_E_CSRF.fix).toContain('Authorization: Bearer');
  });
  it('joins a fix wrapped over lines and stops at the blank line', () => {
    const c = parseErrorCatalogue('## A\n\n### FERRY_E_X\nWhat it is,\nsaid twice.\nFix: do this\nand that.\n\nnot the fix\n### FERRY_W_Y\nFix: y\n');
    expect(c).toEqual({ FERRY_E_X: { meaning: 'What it is, said twice.', fix: 'do this and that.' }, FERRY_W_Y: { meaning: '', fix: 'y' } });
  });
});

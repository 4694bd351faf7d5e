/** `ferry serve --session-idle / --session-max-age`: the console's session limits (server/ui/sessions.ts). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SESSION_LIMITS, SessionStore, sessionLimits } from '../../server/ui/sessions.js';
import { parseTtl } from '../../server/db/deployments.js';

describe('sessionLimits', () => {
  it('defaults to 30 minutes idle and 12 hours at most, and reads durations', () => {
    expect(sessionLimits({})).toEqual(DEFAULT_SESSION_LIMITS);
    expect(sessionLimits({ idle: '15m', maxAge: '8h' })).toEqual({ ...DEFAULT_SESSION_LIMITS, idleMs: 15 * 60_000, maxAgeMs: 8 * 3600_000 });
    expect(sessionLimits({ idle: '90' }).idleMs).toBe(90_000);
  });

  it('refuses what is not a duration, more than 30 days, and an idle expiry past the lifetime', () => {
    expect(() => sessionLimits({ idle: 'soon' })).toThrow(/"soon" is not a duration/);
    expect(() => sessionLimits({ maxAge: '31d' })).toThrow(/longer than the longest console session, 30 days/);
    expect(() => sessionLimits({ idle: '2h', maxAge: '1h' })).toThrow(/--session-idle 2h is longer than --session-max-age 1h/);
    expect(() => sessionLimits({ idle: '13h' })).toThrow(/--session-max-age 12h/);
  });

  it('are the limits a store applies', () => {
    let t = 0;
    const store = new SessionStore(sessionLimits({ idle: '1m', maxAge: '3m' }), () => t);
    const s = store.create();
    t = 50_000;
    expect(store.lookup(s.id).ok).toBe(true);
    t = 100_000;
    expect(store.lookup(s.id).ok).toBe(true);
    t = 161_000;
    expect(store.lookup(s.id)).toMatchObject({ ok: false, why: 'expired' });
    const s2 = store.create();
    for (t = 161_000; t < 161_000 + 180_000; t += 50_000) expect(store.lookup(s2.id).ok).toBe(true);
    t = 161_000 + 181_000;
    expect(store.lookup(s2.id)).toMatchObject({ ok: false, why: 'expired' });
  });

  it('share their duration reader with deploy token lives', () => {
    expect(parseTtl('6h')).toBe(6 * 3600_000);
    expect(() => parseTtl('400d')).toThrow(/longer than the longest deploy token life, 365 days/);
  });
});

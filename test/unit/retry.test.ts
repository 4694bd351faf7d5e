import { describe, expect, it } from 'vitest';
import { RetriableFailure, isRetriableStatus, retrying } from '../../installer/retry.js';

const quick = { baseMs: 1, maxMs: 2, giveUpAfterMs: 10_000 };
const giveUp = (last: Error, r: { attempts: number }) => Object.assign(new Error(`gave up after ${r.attempts}: ${last.message}`), { attempts: r.attempts });

describe('the retry loop (installer/retry.ts)', () => {
  it('retries retriable failures (RetriableFailure, a refused connection) until the attempt succeeds', async () => {
    const seen: number[] = [];
    let n = 0;
    const v = await retrying(async () => {
      n++;
      if (n === 1) throw new RetriableFailure('HTTP 503', 503);
      if (n === 2) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return 'ok';
    }, { backoff: quick, giveUp, onRetry: (r) => seen.push(r.attempt) });
    expect(v).toBe('ok');
    expect(n).toBe(3);
    expect(seen).toEqual([1, 2]);
  });

  it('throws anything else at once', async () => {
    let n = 0;
    const final = new Error('HTTP 404');
    await expect(retrying(async () => {
      n++;
      throw final;
    }, { backoff: quick, giveUp })).rejects.toBe(final);
    expect(n).toBe(1);
  });

  it('gives up after giveUpAfterMs of failures in a row, with the last failure; 0 never retries', async () => {
    let n = 0;
    await expect(retrying(async () => {
      n++;
      throw new RetriableFailure(`try ${n}`);
    }, { backoff: { baseMs: 1, maxMs: 1, giveUpAfterMs: 0 }, giveUp })).rejects.toMatchObject({ message: 'gave up after 1: try 1', attempts: 1 });
    expect(n).toBe(1);
    n = 0;
    const t0 = Date.now();
    await expect(retrying(async () => {
      n++;
      throw new RetriableFailure(`try ${n}`);
    }, { backoff: { baseMs: 5, maxMs: 5, giveUpAfterMs: 30 }, giveUp })).rejects.toThrow(/^gave up after \d+: try \d+$/);
    expect(n).toBeGreaterThan(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(30);
  });

  it('starts the count afresh when an attempt made progress', async () => {
    const attempts: number[] = [];
    let n = 0;
    await retrying(async (progressed) => {
      n++;
      if (n === 3) progressed();
      if (n < 5) throw new RetriableFailure('cut');
    }, { backoff: quick, giveUp, onRetry: (r) => attempts.push(r.attempt) });
    expect(attempts).toEqual([1, 2, 1, 2]);
  });

  it('tells final HTTP answers from retriable ones', () => {
    expect([500, 502, 503, 408, 429].map(isRetriableStatus)).toEqual([true, true, true, true, true]);
    expect([400, 401, 403, 404, 409, 410, 413].map(isRetriableStatus)).toEqual([false, false, false, false, false, false, false]);
  });
});

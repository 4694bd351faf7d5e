import { FerryError } from './errors.js';

export interface WaitOptions {
  /** What is awaited, in words: it goes into the error when the deadline passes. */
  what: string;
  timeoutMs: number;
  /** Poll interval; grows by half each round up to 1 s. */
  intervalMs?: number;
}

/**
 * Wait for a condition with a deadline, never a fixed sleep. `check` returns a
 * truthy value when the condition holds (that value is returned) or a falsy one.
 */
export async function waitFor<T>(check: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 20;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      throw new FerryError('FERRY_E_TIMEOUT', `gave up after ${opts.timeoutMs} ms waiting for ${opts.what}`, {
        details: { what: opts.what, timeoutMs: opts.timeoutMs, lastError: lastError instanceof Error ? lastError.message : lastError },
        hint: 'check that the thing awaited can happen at all on this machine (device present, service running)',
      });
    }
    await new Promise((r) => setTimeout(r, Math.min(interval, Math.max(1, deadline - Date.now()))));
    interval = Math.min(1000, Math.ceil(interval * 1.5));
  }
}

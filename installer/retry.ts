/**
 * Retries with jittered exponential backoff, shared by config fetch, blob download and event
 * delivery. Jitter keeps a rack of nodes that lost the server at the same moment from coming
 * back in lockstep.
 */
import { FerryError } from '../common/errors.js';

export interface Backoff {
  /** First delay, ms. */
  baseMs: number;
  /** Largest delay, ms. */
  maxMs: number;
  /** Give up after this long since the first failure in a row, ms. */
  giveUpAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 250, maxMs: 10_000, giveUpAfterMs: 300_000 };

/** Delay before retry number `attempt` (0-based): full exponential, then 50–100 % of it. */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  const exp = Math.min(b.maxMs, b.baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(exp * (0.5 + 0.5 * random()));
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Network failures worth another try (refused, reset, timed out, closed mid-body). */
export function isRetriableNetworkError(e: unknown): boolean {
  if (e instanceof FerryError) return false;
  const codes = new Set<string>();
  for (let x: any = e; x; x = x.cause) {
    if (typeof x.code === 'string') codes.add(x.code);
    if (x.name === 'AbortError') return false;
  }
  const retriable = [
    'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND',
    'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
    'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ECONNABORTED',
  ];
  for (const c of retriable) if (codes.has(c)) return true;
  const msg = e instanceof Error ? e.message : String(e);
  return /terminated|other side closed|socket hang up|premature close|aborted/i.test(msg);
}

/** HTTP answers worth another try: 5xx, 408 Request Timeout, 429 Too Many Requests. Any other 4xx is final. */
export function isRetriableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** A failure an attempt reports as worth another try (a retriable HTTP status, a short body). */
export class RetriableFailure extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export interface RetryOptions {
  backoff: Backoff;
  /** The error to throw when giving up, from the last failure. */
  giveUp: (last: Error, info: { elapsedMs: number; attempts: number }) => Error;
  /** Called before each wait (for a log line or a progress event). */
  onRetry?: (info: { attempt: number; error: string; delayMs: number }) => void;
  /** Default: RetriableFailure or isRetriableNetworkError. Anything else is thrown as it is. */
  retriable?: (e: unknown) => boolean;
  random?: () => number;
}

/**
 * The installer's one retry loop for its HTTP calls: run `attempt` until it returns; a failure
 * that is retriable waits backoffDelay and tries again, until `giveUpAfterMs` has passed since
 * the first failure in a row (0: never retry). An attempt that made progress (bytes arrived)
 * calls `progressed()`, which starts the count and the clock afresh.
 */
export async function retrying<T>(attempt: (progressed: () => void) => Promise<T>, o: RetryOptions): Promise<T> {
  const retriable = o.retriable ?? ((e: unknown) => e instanceof RetriableFailure || isRetriableNetworkError(e));
  let attempts = 0;
  let firstFailure = 0;
  const progressed = () => {
    attempts = 0;
    firstFailure = 0;
  };
  for (;;) {
    try {
      return await attempt(progressed);
    } catch (e) {
      if (!retriable(e)) throw e;
      const err = e instanceof Error ? e : new Error(String(e));
      if (!firstFailure) firstFailure = Date.now();
      const elapsedMs = Date.now() - firstFailure;
      if (elapsedMs >= o.backoff.giveUpAfterMs) throw o.giveUp(err, { elapsedMs, attempts: attempts + 1 });
      const delayMs = backoffDelay(attempts++, o.backoff, o.random);
      o.onRetry?.({ attempt: attempts, error: err.message, delayMs });
      await delay(delayMs);
    }
  }
}

/**
 * The installer's side of the wire contract (common/protocol.ts): configuration with retries,
 * events in batches with retries, a heartbeat with jitter, the final result.
 */
import { randomBytes } from 'node:crypto';
import type { Inventory } from '../common/inventory.js';
import { httpRequest } from './http.js';
import { FerryError } from '../common/errors.js';
import { log } from '../common/log.js';
import type { ProgressEvent } from '../common/progress.js';
import { DISCOVERY_ROUTES, INSTALL_ROUTES, type InstallConfig, type InstallResult } from '../common/protocol.js';
import type { SshHostKeysBody } from '../common/schema/api.js';
import { DEFAULT_BACKOFF, RetriableFailure, delay, isRetriableNetworkError, isRetriableStatus, retrying, type Backoff } from './retry.js';

export interface ClientOptions {
  server: string;
  token: string;
  backoff?: Backoff;
  /**
   * Read the configuration without starting the deployment (`ferry install --dry-run`): the
   * server leaves it armed and tells no monitor, so the same token then installs for real.
   */
  peek?: boolean;
}

/** Why a 4xx answer is final, in words for the operator. */
function explain4xx(status: number, what: string, body: string): FerryError {
  let code = 'FERRY_E_SERVER_REFUSED';
  let hint = 'read the server\'s answer in the message';
  if (status === 401 || status === 403) {
    code = 'FERRY_E_TOKEN_REJECTED';
    hint = what === 'the discovery report'
      ? 'a discovery token posts one report within 30 minutes of its boot: network-boot the machine again for a fresh one'
      : 'the deploy token is wrong, used up or expired: arm the node again (ferry deploy NODE) and boot it again';
  } else if (status === 404) {
    hint = 'the server does not know this deployment or route: check ferry.server (the URL) and that server and installer are the same version';
  } else if (status === 409 || status === 410) {
    hint = 'the deployment was cancelled or already finished: arm the node again';
  }
  let detail = body;
  try {
    const j = JSON.parse(body);
    if (j?.error?.message) detail = `${j.error.code ?? ''} ${j.error.message}`.trim();
  } catch {
    /* not JSON: keep the text */
  }
  return new FerryError(code, `the server refused ${what}: HTTP ${status}${detail ? `: ${detail.slice(0, 300)}` : ''}`, { details: { status, body: body.slice(0, 2000), what }, hint });
}

export class ServerClient {
  readonly server: string;
  private token: string;
  private backoff: Backoff;
  private peek: boolean;

  constructor(o: ClientOptions) {
    this.peek = !!o.peek;
    this.server = o.server.replace(/\/+$/, '');
    this.token = o.token;
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
  }

  /** A JSON call with retries on network errors and 5xx (installer/retry.ts); a 4xx is final. */
  call<T>(method: 'GET' | 'POST', route: string, body: unknown, what: string, backoff = this.backoff): Promise<T> {
    const started = Date.now();
    return retrying(
      async () => {
        let res;
        try {
          res = await httpRequest(this.server + route, {
            method,
            headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
            body: body !== undefined ? JSON.stringify(body) : undefined,
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          });
        } catch (e) {
          throw this.networkFailure(e, what);
        }
        const text = await res.body.text().catch((e) => {
          throw this.networkFailure(e, what);
        });
        if (res.statusCode >= 300) {
          if (!isRetriableStatus(res.statusCode)) throw explain4xx(res.statusCode, what, text);
          throw new RetriableFailure(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`, res.statusCode);
        }
        try {
          return (text ? JSON.parse(text) : {}) as T;
        } catch (e) {
          throw new FerryError('FERRY_E_SERVER_REFUSED', `the server's answer to ${what} is not JSON`, { hint: 'ferry.server must point at a Ferry server', cause: e });
        }
      },
      {
        backoff,
        onRetry: (r) => log.info('server call failed; retrying', { what, failure: r.error, delayMs: r.delayMs }),
        giveUp: (last, r) =>
          new FerryError('FERRY_E_SERVER_UNREACHABLE', `gave up on ${what} after ${Math.round((Date.now() - started) / 1000)} s: ${last.message}`, {
            details: { server: this.server, attempts: r.attempts }, hint: 'check that the server runs and is reachable from this machine (ferry.server)',
          }),
      },
    );
  }

  /** A network error: retriable as it is, or final as FERRY_E_SERVER_UNREACHABLE. */
  private networkFailure(e: unknown, what: string): unknown {
    if (e instanceof FerryError || isRetriableNetworkError(e)) return e;
    return new FerryError('FERRY_E_SERVER_UNREACHABLE', `could not reach the server for ${what}: ${(e as Error).message}`, {
      details: { server: this.server }, hint: 'check ferry.server (the URL) and the network', cause: e,
    });
  }

  getConfig(): Promise<InstallConfig> {
    return this.call<InstallConfig>('GET', INSTALL_ROUTES.config + (this.peek ? '?peek=1' : ''), undefined, 'the install configuration');
  }

  /**
   * `order`: this installer run's id and each event's number in it. A batch whose answer was lost
   * is sent again (the retry loop, or the next flush); the server stores each numbered event once.
   */
  postEvents(events: ProgressEvent[], backoff?: Backoff, order?: { run: string; seqs: number[] }): Promise<unknown> {
    return this.call('POST', INSTALL_ROUTES.events, order ? { events, ...order } : { events }, 'progress events', backoff);
  }

  /** The machine's hardware, stored as the node's hw.* properties. */
  postInventory(inv: Inventory): Promise<unknown> {
    return this.call('POST', INSTALL_ROUTES.inventory, inv, 'the hardware inventory');
  }

  /** A discovery boot's report (the token is a discovery token), stored with the discovered MAC. */
  postDiscovery(inv: Inventory): Promise<{ ok: true; mac: string; properties: number }> {
    return this.call('POST', DISCOVERY_ROUTES.inventory, inv, 'the discovery report');
  }

  /** The installed system's fresh SSH host keys (public halves), recorded by the server for the node. */
  postSshHostKeys(body: SshHostKeysBody): Promise<unknown> {
    return this.call('POST', INSTALL_ROUTES.sshHostKeys, body, 'the SSH host keys');
  }

  postResult(result: InstallResult): Promise<unknown> {
    return this.call('POST', INSTALL_ROUTES.result, result, 'the install result');
  }
}

/**
 * Events go to the server in batches (at most every `intervalMs`, or sooner when `batch` are
 * queued); a failed batch stays queued and goes again with the next. The queue is bounded:
 * when the server is away for long, the oldest progress events are dropped first, never
 * errors or stage boundaries.
 */
export class EventSender {
  private queue: ProgressEvent[] = [];
  /** Each queued event's number in this run (kept beside the queue, in the same order). */
  private seqs: number[] = [];
  private nextSeq = 0;
  private readonly run = randomBytes(8).toString('hex');
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private stopped = false;
  phase = 'identify';
  dropped = 0;

  constructor(
    private client: ServerClient,
    private o: { intervalMs?: number; batch?: number; max?: number; heartbeatMs?: number } = {},
  ) {}

  start(): void {
    const beat = () => {
      const base = this.o.heartbeatMs ?? 15_000;
      // ±25 % jitter so many nodes don't beat in step.
      this.heartbeat = setTimeout(() => {
        this.push({ phase: this.phase, state: 'heartbeat', ts: new Date().toISOString() });
        beat();
      }, Math.round(base * (0.75 + 0.5 * Math.random())));
      this.heartbeat.unref();
    };
    beat();
  }

  push(e: ProgressEvent): void {
    if (this.stopped) return;
    const ev = { ...e, ts: e.ts ?? new Date().toISOString() };
    // The server's limits on event fields (common/protocol.ts); longer text is cut, not refused.
    if (ev.message && ev.message.length > 16000) ev.message = ev.message.slice(0, 7900) + '\n…\n' + ev.message.slice(-7900);
    if (ev.object && ev.object.length > 1000) ev.object = ev.object.slice(0, 1000);
    this.queue.push(ev);
    this.seqs.push(this.nextSeq++);
    const max = this.o.max ?? 5000;
    if (this.queue.length > max) {
      const i = this.queue.findIndex((x) => x.state === 'progress' || x.state === 'heartbeat' || x.state === 'info');
      this.queue.splice(i >= 0 ? i : 0, 1);
      this.seqs.splice(i >= 0 ? i : 0, 1);
      this.dropped++;
    }
    if (this.queue.length >= (this.o.batch ?? 200)) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.o.intervalMs ?? 1000);
      this.timer.unref();
    }
  }

  /** Send what is queued; one request at a time. Network trouble leaves the batch queued. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.queue.length) return Promise.resolve();
    const batch = this.queue.slice(0, this.o.batch ?? 200);
    const seqs = this.seqs.slice(0, batch.length);
    this.flushing = this.client
      .postEvents(batch, { baseMs: 200, maxMs: 2000, giveUpAfterMs: 0 }, { run: this.run, seqs })
      .then(
        () => {
          this.queue.splice(0, batch.length);
          this.seqs.splice(0, batch.length);
        },
        (e) => {
          if (e instanceof FerryError && typeof e.details.status === 'number' && e.details.status < 500) {
            // The server refuses this batch for good (malformed): resending it would block the rest.
            this.queue.splice(0, batch.length);
            this.seqs.splice(0, batch.length);
            this.dropped += batch.length;
            log.warn('event batch refused by the server; dropped', { error: e.message, events: batch.length });
            return;
          }
          log.debug('event batch not delivered; kept for the next try', { error: (e as Error).message, queued: this.queue.length });
        },
      )
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length && !this.timer && !this.stopped) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            void this.flush();
          }, this.o.intervalMs ?? 1000);
          this.timer.unref();
        }
      });
    return this.flushing;
  }

  /** Deliver everything queued, retrying for up to `deadlineMs`; then stop the heartbeat. */
  async close(deadlineMs = 30_000): Promise<boolean> {
    clearTimeout(this.heartbeat);
    clearTimeout(this.timer);
    this.timer = undefined;
    const end = Date.now() + deadlineMs;
    while (this.queue.length && Date.now() < end) {
      await this.flush();
      if (this.queue.length) await delay(Math.min(500, Math.max(0, end - Date.now())));
    }
    this.stopped = true;
    return this.queue.length === 0;
  }
}

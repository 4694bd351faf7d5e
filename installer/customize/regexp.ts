/**
 * Regexp customization items, run off the installer's main thread. V8's regexp engine backtracks:
 * a pattern like (a+)+$ on a long line runs for minutes. On the main thread that stops every
 * timer, heartbeats included, so the server would think the node dead. Each replacement runs in
 * a worker thread that is terminated when the time limit passes (terminate interrupts a running
 * regexp), while the main thread keeps sending heartbeats.
 *
 * The installer is one bundled file (scripts/bundle.mjs, a single executable in the initrd), so
 * the worker's code is a string evaluated by the Worker (`eval: true`), not a separate module
 * file that the bundle would not carry.
 */
import { Worker } from 'node:worker_threads';
import { FerryError } from '../../common/errors.js';

/** How long one regexp item may run: a pattern with catastrophic backtracking ends here. */
export const REGEXP_TIME_LIMIT_MS = 5000;

/** The worker: one replacement, the answer posted back. CommonJS script, no imports of ours. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { text, source, flags, replacement } = workerData;
parentPort.postMessage(text.replace(new RegExp(source, flags), replacement));
`;

/** The worker's heap: a replacement that grows the text past this fails instead of the installer. */
const WORKER_HEAP_MB = 256;

function inputError(message: string, details: Record<string, unknown>, hint: string): FerryError {
  return new FerryError('FERRY_E_CUSTOMIZE_INPUT', message, { details, hint });
}

/**
 * text.replace(new RegExp(source, flags), replacement) in a worker, stopped after limitMs with
 * FERRY_E_CUSTOMIZE_INPUT naming the file `p` and the pattern. The pattern has been compiled by
 * the caller already (a bad pattern is refused there, with its own message).
 */
export function replaceBounded(text: string, re: RegExp, replacement: string, p: string, limitMs = REGEXP_TIME_LIMIT_MS): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { text, source: re.source, flags: re.flags, replacement },
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
      // The worker needs nothing of the installer's environment or standard streams.
      env: {},
      stdout: true,
      stderr: true,
    });
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      finish(() => reject(inputError(`regexp replacement in ${p}: /${re.source}/ ran longer than ${limitMs / 1000} s on this file and was stopped`, { path: p, pattern: re.source, limitMs },
        'the pattern backtracks catastrophically (nested quantifiers such as (a+)+ or (.*)*): anchor it or make the repeated parts exclusive')));
      void worker.terminate();
    }, limitMs);
    worker.once('message', (out: unknown) => finish(() => resolve(String(out))));
    worker.once('error', (e: Error) => finish(() => reject(inputError(`regexp replacement in ${p}: /${re.source}/ failed: ${e.message}`, { path: p, pattern: re.source },
      'simplify the pattern or the replacement (the result must fit in memory)'))));
    worker.once('exit', (code) => finish(() => reject(new FerryError('FERRY_E_INTERNAL', `regexp replacement in ${p}: the worker exited (${code}) without an answer`, { details: { path: p, pattern: re.source } }))));
  });
}

/**
 * Extraction on a second thread, an engine chosen with FERRY_EXTRACT_THREAD=1. On one thread,
 * download, hashing, feeding the decompressor and writing files take turns; here the main thread
 * keeps the network, the hash and the events, and a worker reads the decompressor's output from
 * a FIFO with blocking reads and extracts synchronously, like tar does.
 *
 * The worker is this same program started again as a thread: the bundled entry points say how
 * (setWorkerEntry); unbundled (the TypeScript sources under vitest) there is none and the layer
 * is extracted on the main thread, by the same Extractor.
 */
import * as fs from 'node:fs';
import { isMainThread, parentPort, workerData, Worker } from 'node:worker_threads';
import { FerryError, toFerryError } from '../../common/errors.js';
import { TargetRoot } from '../target.js';
import { Extractor, type ExtractStats } from './extract.js';
import { TarParser } from './tar.js';

export interface ExtractJob {
  kind: 'ferry-extract';
  fifo: string;
  root: string;
}

export type WorkerReply =
  | { type: 'warning'; message: string; details?: Record<string, unknown> }
  | { type: 'done'; stats: ExtractStats }
  | { type: 'error'; error: { code: string; message: string; hint?: string; details: Record<string, unknown> } };

type Entry = { file: string } | { code: string };
let entry: Entry | undefined;

/** Called by the bundled entry points: how to start this program as a worker thread. */
export function setWorkerEntry(e: Entry | undefined): void {
  entry = e;
}

/**
 * The entry to start the extraction thread from, when that engine is chosen: FERRY_EXTRACT_THREAD=1.
 * Measured on the 2-core test machine (scripts/bench/apply), the one-thread engine was faster
 * (worker start-up and the FIFO hop cost more than the overlap gained), so it is the default.
 */
export function workerEntry(): Entry | undefined {
  return process.env.FERRY_EXTRACT_THREAD === '1' ? entry : undefined;
}

export function startExtractWorker(job: ExtractJob): Worker {
  const e = entry!;
  const opts = { workerData: job, argv: [] as string[], env: process.env };
  return 'file' in e ? new Worker(e.file, opts) : new Worker(e.code, { ...opts, eval: true });
}

/** In a thread started by startExtractWorker: extract, reply, return true. Else false. */
export function runExtractWorkerIfAny(): boolean {
  if (isMainThread || (workerData as ExtractJob | undefined)?.kind !== 'ferry-extract') return false;
  const job = workerData as ExtractJob;
  const reply = (r: WorkerReply) => parentPort!.postMessage(r);
  extractFromFifo(job, reply).then(
    (stats) => reply({ type: 'done', stats }),
    (e) => {
      const fe = toFerryError(e);
      reply({ type: 'error', error: { code: fe.code, message: fe.message, hint: fe.hint, details: fe.details } });
    },
  );
  return true;
}

async function extractFromFifo(job: ExtractJob, reply: (r: WorkerReply) => void): Promise<ExtractStats> {
  const ex = new Extractor(new TargetRoot(job.root), (message, details) => reply({ type: 'warning', message, details }));
  const parser = new TarParser(ex);
  // Blocks until the decompressor opens the FIFO for writing; EOF when it exits.
  const fd = fs.openSync(job.fifo, 'r');
  try {
    for (;;) {
      // A fresh buffer each time: the parser may keep a reference to an unfinished header.
      // A pipe gives at most 64 KiB a read; bigger buffers only cost mmap/munmap per read.
      const b = Buffer.allocUnsafe(64 << 10);
      const n = fs.readSync(fd, b, 0, b.length, null);
      if (n === 0) break;
      parser.write(n === b.length ? b : b.subarray(0, n));
    }
  } finally {
    // Closing makes a still-running decompressor fail (EPIPE) instead of waiting forever.
    fs.closeSync(fd);
  }
  parser.end();
  await ex.finish();
  return ex.stats;
}

export function errorFromReply(r: Extract<WorkerReply, { type: 'error' }>): FerryError {
  return new FerryError(r.error.code, r.error.message, { details: r.error.details, hint: r.error.hint });
}

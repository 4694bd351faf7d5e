/**
 * Layers by any transport: `applyLayerVia(kind, ref, opts)` is the one way the installer applies
 * a layer. It tries the chosen transport; when a fan-out transport fails (a missed multicast
 * session, a bad stream, no peers) it says so in a warning event (`{transport, fallback: 'http',
 * code, reason}`) and applies the layer over HTTP, so the install completes. Whatever the
 * transport, the bytes go through the one layer sink (sink.ts): verified against the layer's
 * size and sha256 before the layer counts as installed, extracted by the shared extractor.
 *
 * A transport is one module with the LayerTransport interface (types.ts) and one line in
 * TRANSPORT_MODULES.
 */
import { FerryError, toFerryError } from '../../common/errors.js';
import type { LayerRef, TransportKind } from '../../common/protocol.js';
import type { ExtractStats } from '../../layers/extract.js';
import type { TargetRoot } from '../../layers/target.js';
import { httpTransport, mirrorTransport } from './http.js';
import { multicastTransport } from './multicast.js';
import { torrentTransport } from './torrent.js';
import { openLayerSink } from './sink.js';
import type { LayerTransport, TransportOptions } from './types.js';

export type { LayerTransport, TransportOptions } from './types.js';
export { streamBlob } from './http.js';
export { finishSeeding, stopSeeding } from './torrent.js';

const TRANSPORT_MODULES: Partial<Record<TransportKind, LayerTransport>> = {
  http: httpTransport,
  multicast: multicastTransport,
  torrent: torrentTransport,
};

export interface ApplyLayerOptions extends TransportOptions {
  target: TargetRoot;
}

export interface ApplySummary {
  stats: ExtractStats;
  /** The transport that delivered the verified bytes. */
  transport: TransportKind;
  /** Set when the chosen transport failed and HTTP delivered the layer. */
  fallback?: { from: TransportKind; code: string; reason: string };
  /** The mirror that delivered the layer over HTTP, if one did. */
  mirror?: string;
}

function unsupported(kind: TransportKind): FerryError {
  return new FerryError('FERRY_E_TRANSPORT_UNSUPPORTED', `this installer has no ${kind} transport`, {
    details: { transport: kind },
    hint: 'the layer comes over HTTP instead; update the boot environment to one that has the transport',
  });
}

async function attempt(t: LayerTransport, ref: LayerRef, o: ApplyLayerOptions, label: string): Promise<ExtractStats> {
  const warn = (message: string, details?: Record<string, unknown>) => o.progress?.({ phase: 'layers', state: 'warning', object: ref.digest, message, details });
  o.progress?.({ phase: 'layers', state: 'start', object: ref.digest, bytes: 0, total: ref.size, message: `${label} by ${t.kind}${t.source ? ` from ${t.source}` : ''}`, details: { transport: t.kind, ...(t.source ? { mirror: t.source } : {}) } });
  const sink = openLayerSink(ref, o.target, label, {
    warn,
    index: o.index,
    onBytes: (bytes) => o.progress?.({ phase: 'layers', state: 'progress', object: ref.digest, bytes, total: ref.size }),
  });
  try {
    await t.deliver(ref, sink, o);
  } catch (e) {
    await sink.abort();
    throw e;
  }
  const stats = await sink.finish();
  o.progress?.({ phase: 'layers', state: 'end', object: ref.digest, bytes: ref.size, total: ref.size, message: `${label}: ${stats.entries} entries by ${t.kind}${t.source ? ` from ${t.source}` : ''}`, details: { ...stats, transport: t.kind, ...(t.source ? { mirror: t.source } : {}) } });
  return stats;
}

/**
 * Over HTTP: each mirror in order (a fresh sink each, so a bad or cut mirror leaves nothing
 * counted), then the server. A mirror that fails is named in a warning event and skipped.
 */
async function overHttp(ref: LayerRef, o: ApplyLayerOptions, label: string): Promise<{ stats: ExtractStats; mirror?: string }> {
  const mirrors = o.config?.mirrors ?? [];
  for (const [i, m] of mirrors.entries()) {
    try {
      return { stats: await attempt(mirrorTransport(m), ref, o, label), mirror: m };
    } catch (e) {
      const f = toFerryError(e);
      const next = i + 1 < mirrors.length ? mirrors[i + 1] : 'the server';
      o.progress?.({ phase: 'layers', state: 'warning', object: ref.digest, code: f.code, message: `mirror ${m}: ${f.message}; trying ${next}`, details: { mirror: m, fallback: next, code: f.code, reason: f.message } });
    }
  }
  return { stats: await attempt(httpTransport, ref, o, label) };
}

export async function applyLayerVia(kind: TransportKind, ref: LayerRef, o: ApplyLayerOptions): Promise<ApplySummary> {
  const label = `layer ${o.index !== undefined ? o.index + 1 : ''} ${ref.digest}`.replace('  ', ' ');
  // Entries get exactly the modes the layer says (open/mkdir modes are masked by the umask).
  const umask = process.umask(0);
  try {
    if (kind === 'http') return { ...(await overHttp(ref, o, label)), transport: 'http' };
    let failure: FerryError;
    const t = TRANSPORT_MODULES[kind];
    if (!t) failure = unsupported(kind);
    else {
      try {
        return { stats: await attempt(t, ref, { stageDir: o.target.root, ...o }, label), transport: kind };
      } catch (e) {
        failure = toFerryError(e);
      }
    }
    const reason = failure.message;
    o.progress?.({
      phase: 'layers',
      state: 'warning',
      object: ref.digest,
      code: failure.code,
      message: `${kind}: ${reason}; falling back to http`,
      details: { transport: kind, fallback: 'http', code: failure.code, reason, ...(failure.details ?? {}) },
    });
    return { ...(await overHttp(ref, o, label)), transport: 'http', fallback: { from: kind, code: failure.code, reason } };
  } finally {
    process.umask(umask);
  }
}

/**
 * One layer by one transport and nothing else (no fallback): the restore medium's local
 * transport, where no server exists to fall back to. The same sink verifies the bytes.
 */
export async function applyLayerFrom(t: LayerTransport, ref: LayerRef, o: ApplyLayerOptions): Promise<ExtractStats> {
  const label = `layer ${o.index !== undefined ? o.index + 1 : ''} ${ref.digest}`.replace('  ', ' ');
  const umask = process.umask(0);
  try {
    return await attempt(t, ref, o, label);
  } finally {
    process.umask(umask);
  }
}

/** One layer over HTTP (what the layer tests and tools call). */
export async function applyLayer(ref: LayerRef, o: ApplyLayerOptions): Promise<ExtractStats> {
  return (await applyLayerVia('http', ref, o)).stats;
}

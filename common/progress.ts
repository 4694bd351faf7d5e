/**
 * Progress is data. The console, the JSON log and the server's monitor all read the
 * same events. An install's phases are its stages.
 */
export const PHASES = ['identify', 'config', 'disks', 'layers', 'customize', 'bootloader', 'finish'] as const;
export type Phase = (typeof PHASES)[number] | (string & {});

/** One event, as the installer API receives it: declared once, as a schema (common/schema/api.ts). */
export type { EventState, ProgressEventBody as ProgressEvent } from './schema/api.js';
import type { ProgressEventBody as ProgressEvent } from './schema/api.js';

export type ProgressSink = (e: ProgressEvent) => void;

/** Fan events out to several sinks (console, JSON log, server). */
export class ProgressBus {
  private sinks = new Set<ProgressSink>();
  add(s: ProgressSink): () => void {
    this.sinks.add(s);
    return () => this.sinks.delete(s);
  }
  emit(e: ProgressEvent): void {
    const ev = e.ts ? e : { ...e, ts: new Date().toISOString() };
    for (const s of this.sinks) {
      try {
        s(ev);
      } catch {
        /* an observer's failure must not break the work it observes */
      }
    }
  }
}

/** Throttle `progress` events to at most one per interval per object; others pass. */
export function throttled(sink: ProgressSink, intervalMs = 500): ProgressSink {
  const last = new Map<string, number>();
  return (e) => {
    if (e.state !== 'progress') return sink(e);
    const k = `${e.phase}:${e.object ?? ''}`;
    const now = Date.now();
    if (now - (last.get(k) ?? 0) < intervalMs && e.bytes !== e.total) return;
    last.set(k, now);
    sink(e);
  };
}

/** One line for people. */
export function formatEvent(e: ProgressEvent): string {
  const pct = e.total ? ` ${((100 * (e.bytes ?? 0)) / e.total).toFixed(0)}%` : '';
  const obj = e.object ? ` ${e.object}` : '';
  const msg = e.message ? ` ${e.message}` : '';
  return `[${e.phase}] ${e.state}${obj}${pct}${msg}${e.code ? ` (${e.code})` : ''}`;
}

/**
 * Whether an event belongs in a deployment's story as a person reads it: every start, end,
 * message, warning and error, but not the throttled byte counts (`progress`) or the keep-alives
 * (`heartbeat`), which only a live view or a rate needs (an install of one image sends hundreds).
 */
export function isMilestone(e: ProgressEvent): boolean {
  return e.state !== 'progress' && e.state !== 'heartbeat';
}

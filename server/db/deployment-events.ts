/**
 * A deployment's progress events as the installer sends them: stored under a budget (a deploy
 * token is readable by anyone on the boot network) and read back for history and monitors.
 * The records themselves are in deployments.ts.
 */
import type { ProgressEvent } from '../../common/progress.js';
import { now, type DataDir } from '../context.js';
import type { DeploymentRow } from './deployments.js';
import type { StoredEventBody } from '../../common/schema/responses.js';

/** One stored event (its schema: common/schema/responses.ts StoredEventSchema). */
export type StoredEvent = StoredEventBody;

export function deploymentEvents(d: DataDir, id: number, afterId = 0): StoredEvent[] {
  return (d.db.prepare('SELECT * FROM deployment_events WHERE deployment_id = ? AND id > ? ORDER BY id').all(id, afterId) as any[]).map((r) => {
    const e: StoredEvent = { id: r.id, receivedAt: r.received_at, ts: r.ts, phase: r.phase, state: r.state };
    if (r.object !== null) e.object = r.object;
    if (r.bytes !== null) e.bytes = r.bytes;
    if (r.total !== null) e.total = r.total;
    if (r.message !== null) e.message = r.message;
    if (r.code !== null) e.code = r.code;
    if (r.details !== null) e.details = JSON.parse(r.details);
    return e;
  });
}


/**
 * What one deployment may store: a deploy token is readable by anyone on the boot network, so
 * its events must not fill the server's disk. A real install sends a few thousand (the installer
 * throttles progress to one a second); past either bound only stage starts, ends and errors are
 * kept (up to MAX_EVENTS_ESSENTIAL more), and one FERRY_W_EVENTS_DROPPED warning says so.
 */
export const EVENT_BUDGET = { events: 20_000, bytes: 16 << 20, essential: 1_000 };
const ESSENTIAL = new Set(['start', 'end', 'error']);

function eventSize(e: ProgressEvent): number {
  return (e.message?.length ?? 0) + (e.object?.length ?? 0) + (e.code?.length ?? 0) + (e.details ? JSON.stringify(e.details).length : 0) + 64;
}

/** Per deployment: the installer run that posts its events, and the next event number not yet stored. */
const delivered = new Map<number, { run: string; next: number }>();
const MAX_TRACKED = 10_000;

/**
 * The events of a batch not stored before: an installer whose answer was lost (a cut
 * connection) posts the same numbered events again, and each is stored once. Events of a run are
 * numbered in the order they are sent; a new run (the installer restarted) starts over. Without
 * numbers (an older installer) every event is new.
 */
export function undelivered<T>(deploymentId: number, events: T[], order?: { run?: string; seqs?: number[] }): T[] {
  if (!order?.run || !order.seqs || order.seqs.length !== events.length) return events;
  let d = delivered.get(deploymentId);
  if (!d || d.run !== order.run) {
    d = { run: order.run, next: 0 };
    delivered.delete(deploymentId);
    if (delivered.size >= MAX_TRACKED) delivered.delete(delivered.keys().next().value!);
    delivered.set(deploymentId, d);
  }
  const fresh = events.filter((_, i) => order.seqs![i]! >= d!.next);
  d.next = Math.max(d.next, ...order.seqs.map((s) => s + 1));
  return fresh;
}

export function recordEvents(d: DataDir, row: DeploymentRow, events: ProgressEvent[], budget = EVENT_BUDGET): StoredEvent[] {
  const received = now();
  const out: StoredEvent[] = [];
  d.write(() => {
    const used = d.db
      .prepare("SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(COALESCE(message, '')) + LENGTH(COALESCE(object, '')) + LENGTH(COALESCE(code, '')) + LENGTH(COALESCE(details, '')) + 64), 0) AS b, COALESCE(SUM(code = 'FERRY_W_EVENTS_DROPPED'), 0) AS marked FROM deployment_events WHERE deployment_id = ?")
      .get(row.id) as { n: number; b: number; marked: number };
    let { n, b } = used;
    let marked = used.marked > 0;
    const ins = d.db.prepare('INSERT INTO deployment_events (deployment_id, ts, received_at, phase, state, object, bytes, total, message, code, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const store = (e: ProgressEvent) => {
      const ts = e.ts ?? received;
      const r = ins.run(row.id, ts, received, e.phase, e.state, e.object ?? null, e.bytes ?? null, e.total ?? null, e.message ?? null, e.code ?? null, e.details ? JSON.stringify(e.details) : null);
      out.push({ ...e, ts, id: Number(r.lastInsertRowid), receivedAt: received });
      n++;
      b += eventSize(e);
    };
    for (const e of events) {
      const size = eventSize(e);
      if (n < budget.events && b + size <= budget.bytes) {
        store(e);
        continue;
      }
      if (!marked) {
        marked = true;
        store({
          phase: e.phase, state: 'warning', code: 'FERRY_W_EVENTS_DROPPED',
          message: `this deployment reached the server's event limit (${budget.events} events or ${budget.bytes >> 20} MiB): further progress events are dropped; stage starts, ends and errors are still kept`,
          details: { events: n, bytes: b },
        });
      }
      if (ESSENTIAL.has(e.state) && n < budget.events + budget.essential && size <= 65_536) store(e);
    }
    const last = events.filter((e) => e.state !== 'heartbeat').pop();
    // Any call from the installer, a heartbeat too, shows it is alive: a lost deployment runs again.
    d.db
      .prepare("UPDATE deployments SET stage = COALESCE(?, stage), status = CASE WHEN status IN ('armed', 'lost') THEN 'running' ELSE status END, started_at = COALESCE(started_at, ?) WHERE id = ?")
      .run(last?.phase ?? null, received, row.id);
  });
  return out;
}

/**
 * Deployment changes made by other processes: `ferry deploy`, `ferry cancel` and `ferry redeploy`
 * write the database directly (the CLI works with the server stopped), so the server learns of
 * them here and publishes them like its own changes: the monitor and the web console show a
 * deployment armed from the command line at once, and the server's log has its state change.
 *
 * Cheap when nothing happens: SQLite's `data_version` changes only when another connection
 * commits, and only then are the newest deployments read (at most every `intervalMs`).
 *
 * Expiry changes nothing in the database (a record is `expired` when its in-flight token's time
 * has passed, computed when read), so the same timer also asks, once per tick, whether an armed,
 * running or lost deployment's expiry fell between the last tick and now; when one did, the
 * deployments are read and the expired ones published (and so logged) when it happens, not at
 * the next unrelated write.
 */
import type { PowerEvent } from '../common/schema/responses.js';
import type { DataDir } from './context.js';
import { auditSince, lastAuditId } from './db/audit.js';
import { IN_FLIGHT_STATUSES, listDeployments, type DeploymentInfo } from './db/deployments.js';

const KEEP = 2000;

export function watchDeployments(data: DataDir, publish: (info: DeploymentInfo) => void, intervalMs = 1000): () => void {
  const version = () => data.db.pragma('data_version', { simple: true }) as number;
  let seenVersion = version();
  const last = new Map<number, string>();
  const key = (i: DeploymentInfo) => `${i.status}|${i.stage ?? ''}`;
  const scan = (announce: boolean) => {
    for (const i of listDeployments(data, { limit: 500 }).reverse()) {
      const k = key(i);
      if (last.get(i.id) === k) continue;
      last.delete(i.id);
      last.set(i.id, k);
      if (announce) publish(i);
    }
    while (last.size > KEEP) last.delete(last.keys().next().value as number);
  };
  scan(false);
  const inFlight = IN_FLIGHT_STATUSES.map((x) => `'${x}'`).join(', ');
  const expiredSince = data.db.prepare(`SELECT 1 FROM deployments WHERE status IN (${inFlight}) AND expires_at > ? AND expires_at <= ? LIMIT 1`);
  let checkedAt = new Date().toISOString();
  const timer = setInterval(() => {
    try {
      const now = new Date().toISOString();
      const expiredNow = expiredSince.get(checkedAt, now) !== undefined;
      checkedAt = now;
      const v = version();
      if (v === seenVersion && !expiredNow) return;
      seenVersion = v;
      scan(true);
    } catch {
      /* the database is closing: the server stops this timer next */
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Power actions on the event stream: every on, off, cycle and install start is an audit entry
 * (server/power/nodes.ts powerNodes, whoever ran it: `ferry power` and `ferry deploy --power` in
 * their own process, the API and the console in the server's), so the server publishes each new
 * `power.*` audit entry as a `power` event. Bounded: at most `batch` entries per tick, the rest at
 * the next one; the audit id is an index, so an idle tick is one cheap query.
 */
export function watchPower(data: DataDir, publish: (e: PowerEvent) => void, intervalMs = 1000, batch = 200): () => void {
  let lastId = lastAuditId(data.db);
  const timer = setInterval(() => {
    try {
      for (const r of auditSince(data.db, lastId, 'power.', batch)) {
        lastId = r.id;
        const action = r.action.slice('power.'.length);
        if (!['on', 'off', 'cycle', 'install'].includes(action) || !r.object) continue;
        const d = (r.details && typeof r.details === 'object' ? r.details : {}) as Record<string, unknown>;
        publish({
          id: r.id, at: r.ts, actor: r.actor, action: action as PowerEvent['action'], node: r.object, ok: d.ok === true,
          ...(typeof d.driver === 'string' ? { driver: d.driver } : {}),
          ...(d.state === 'on' || d.state === 'off' || d.state === 'unknown' ? { state: d.state } : {}),
          ...(typeof d.pxeOnce === 'boolean' ? { pxeOnce: d.pxeOnce } : {}),
          ...(d.started === 'on' || d.started === 'cycle' ? { started: d.started } : {}),
          ...(typeof d.error === 'string' ? { error: d.error } : {}),
        });
      }
    } catch {
      /* the database is closing: the server stops this timer next */
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

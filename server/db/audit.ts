/**
 * The audit log: who changed what (images, nodes, groups, deployments). Every change writes one
 * row through recordAudit (DataDir.audit), and `ferry audit` and GET /api/v1/admin/audit read
 * them through listAudit.
 */
import type { Db } from './index.js';

export interface AuditEntry {
  id: number;
  ts: string;
  actor: string;
  action: string;
  /** The node, group or image (`NAME@VERSION`) acted on; null for actions on none. */
  object: string | null;
  /** Parsed from the stored JSON; undefined when none was recorded. */
  details?: unknown;
}

export interface AuditFilter {
  /** At most this many, newest first (default 100). */
  limit?: number;
  /** Only rows about this object: the name itself, or any version of an image of that name (`NAME@…`). */
  object?: string;
}

export function recordAudit(db: Db, actor: string, action: string, object: string | null, details?: unknown): void {
  db.prepare('INSERT INTO audit (ts, actor, action, object, details) VALUES (?, ?, ?, ?, ?)').run(
    new Date().toISOString(), actor, action, object, details === undefined ? null : JSON.stringify(details),
  );
}

export function listAudit(db: Db, filter: AuditFilter = {}): AuditEntry[] {
  const limit = filter.limit ?? 100;
  const rows = (filter.object !== undefined
    ? db.prepare('SELECT * FROM audit WHERE object = ? OR object LIKE ? ORDER BY id DESC LIMIT ?').all(filter.object, `${filter.object}@%`, limit)
    : db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit)) as { id: number; ts: string; actor: string; action: string; object: string | null; details: string | null }[];
  return rows.map((r) => ({ id: r.id, ts: r.ts, actor: r.actor, action: r.action, object: r.object, details: r.details ? JSON.parse(r.details) : undefined }));
}

/** The newest audit id (0 for an empty log): where a reader of new entries starts. */
export function lastAuditId(db: Db): number {
  return (db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM audit').get() as { id: number }).id;
}

/** Entries after `afterId` whose action starts with `prefix` (`power.`), oldest first, at most `limit`. */
export function auditSince(db: Db, afterId: number, prefix: string, limit: number): AuditEntry[] {
  const rows = db.prepare("SELECT * FROM audit WHERE id > ? AND action LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?").all(afterId, prefix.replace(/[\\%_]/g, (c) => '\\' + c) + '%', limit) as { id: number; ts: string; actor: string; action: string; object: string | null; details: string | null }[];
  return rows.map((r) => {
    let details: unknown;
    try {
      details = r.details ? JSON.parse(r.details) : undefined;
    } catch {
      details = undefined;
    }
    return { id: r.id, ts: r.ts, actor: r.actor, action: r.action, object: r.object, details };
  });
}

import Database from 'better-sqlite3';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listAudit, recordAudit } from '../../../server/db/audit.js';
import { MIGRATIONS } from '../../../server/db/migrations.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function memoryDb() {
  const db = new Database(':memory:');
  for (const m of MIGRATIONS) db.exec(m);
  return db;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? tsFiles(p) : e.endsWith('.ts') ? [p] : [];
  });
}

describe('the audit log (server/db/audit.ts)', () => {
  it('lists newest first, with details parsed, filtered by object and image versions, limited', () => {
    const db = memoryDb();
    recordAudit(db, 'cli:root', 'node.add', 'web1', { macs: ['52:54:00:00:00:01'] });
    recordAudit(db, 'cli:root', 'image.import', 'debian@1');
    recordAudit(db, 'cli:root', 'image.import', 'debian@2', { layers: 2 });
    recordAudit(db, 'admin', 'gc', null);
    recordAudit(db, 'cli:root', 'node.add', 'debianish');
    const all = listAudit(db);
    expect(all.map((r) => r.action)).toEqual(['node.add', 'gc', 'image.import', 'image.import', 'node.add']);
    expect(all[1]).toMatchObject({ actor: 'admin', object: null, details: undefined });
    expect(all[4].details).toEqual({ macs: ['52:54:00:00:00:01'] });
    expect(all[0].ts).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(listAudit(db, { object: 'debian' }).map((r) => r.object)).toEqual(['debian@2', 'debian@1']);
    expect(listAudit(db, { object: 'web1' }).map((r) => r.action)).toEqual(['node.add']);
    expect(listAudit(db, { limit: 2 }).map((r) => r.id)).toEqual([all[0].id, all[1].id]);
    db.close();
  });

  it('is the only module that reads or writes the audit table', () => {
    const allowed = new Set(['server/db/audit.ts', 'server/db/migrations.ts']);
    const offenders = ['cli', 'server', 'common', 'installer']
      .flatMap((d) => tsFiles(join(ROOT, d)))
      .filter((f) => !allowed.has(relative(ROOT, f)) && /\b(FROM|INTO|UPDATE)\s+audit\b/i.test(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f));
    expect(offenders).toEqual([]);
  });
});

/**
 * The server's SQLite database: one file `ferry.db` in the data directory, WAL mode so
 * that the server and the admin CLI can use it at the same time (the CLI opens it
 * directly: it works with the server stopped). The schema is portable SQL (no
 * SQLite-only types) so PostgreSQL can replace it later; JSON columns are TEXT.
 */
import Database from 'better-sqlite3';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../common/errors.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export function dbPath(dataDir: string): string {
  return join(dataDir, 'ferry.db');
}

/** Open (creating when absent) and migrate the database of a data directory. */
export function openDb(dataDir: string): Db {
  let db: Db;
  try {
    // The server and CLI commands write concurrently: wait up to 10 s for a lock instead of
    // failing (this covers the pragmas below too).
    db = new Database(dbPath(dataDir), { timeout: 10_000 });
  } catch (e) {
    throw new FerryError('FERRY_E_DB_OPEN', `cannot open the database ${dbPath(dataDir)}: ${(e as Error).message}`, {
      details: { path: dbPath(dataDir) },
      hint: 'check that the data directory exists and is writable (--data DIR, or FERRY_DATA)',
      cause: e,
    });
  }
  db.pragma('journal_mode = WAL');
  // The database holds deploy tokens: readable by its owner only, whatever the umask or
  // the data directory's mode.
  for (const f of [dbPath(dataDir), dbPath(dataDir) + '-wal', dbPath(dataDir) + '-shm']) {
    try {
      chmodSync(f, 0o600);
    } catch {
      /* -wal and -shm appear with the first write */
    }
  }
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = NORMAL');
  migrate(db);
  return db;
}

/** Apply every migration newer than the database's user_version, each in one transaction. */
export function migrate(db: Db): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new FerryError('FERRY_E_DB_TOO_NEW', `the database schema is version ${current}, newer than this Ferry knows (${MIGRATIONS.length})`, {
      details: { current, known: MIGRATIONS.length },
      hint: 'run a Ferry at least as new as the one that last used this data directory',
    });
  }
  // Several processes may open an old database at once: each migration re-reads the version
  // under the write lock, so a step another process has applied is not applied twice.
  for (;;) {
    const applied = db.transaction(() => {
      const v = db.pragma('user_version', { simple: true }) as number;
      if (v >= MIGRATIONS.length) return false;
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
      return true;
    }).immediate();
    if (!applied) break;
  }
  return MIGRATIONS.length;
}

/** JSON column helpers. */
export function j<T>(s: string | null | undefined, dflt: T): T {
  if (s === null || s === undefined || s === '') return dflt;
  return JSON.parse(s) as T;
}

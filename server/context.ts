/**
 * One data directory: the database, the blob store and the admin token. The server
 * and every admin CLI command open the same directory (the CLI opens the database
 * directly; WAL lets both work at once, and the CLI works with the server stopped).
 */
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { ADMIN_TOKEN_FILE, requireDataDir } from '../common/cli.js';
import { FerryError } from '../common/errors.js';
import { recordAudit } from './db/audit.js';
import { openDb, type Db } from './db/index.js';
import { BlobStore } from './store/blobs.js';


export class DataDir {
  readonly db: Db;
  readonly blobs: BlobStore;
  /** `readOnly`: a command that only reads; a missing directory is an error, not made (requireDataDir). */
  constructor(readonly dir: string, o: { readOnly?: boolean } = {}) {
    if (o.readOnly) requireDataDir(dir);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // mkdir's mode applies only to a directory it creates: one made earlier 0755 (by hand, by
      // an older Ferry) would let every local user read every image. Forced at every open.
      chmodSync(dir, 0o700);
    } catch (e) {
      throw new FerryError('FERRY_E_DATA_DIR', `cannot create the data directory ${dir}: ${(e as Error).message}`, {
        details: { path: dir },
        hint: 'choose a writable directory with --data DIR (or FERRY_DATA), or run as root for /var/lib/ferry',
      });
    }
    this.db = openDb(dir);
    this.blobs = new BlobStore(dir);
  }
  close(): void {
    this.db.close();
  }
  /**
   * Run fn in one transaction that takes the write lock when it begins (BEGIN IMMEDIATE). The
   * server and any number of ferry commands share the database: a transaction that reads first
   * and asks for the write lock later fails at once with "database is locked" when another
   * process wrote in between (SQLite cannot wait there without risking a deadlock), whereas one
   * that locks first simply waits its turn (up to the busy timeout). Every write goes through
   * here; nested calls become savepoints.
   */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
  /** One audit row (server/db/audit.ts). */
  audit(actor: string, action: string, object: string | null, details?: unknown): void {
    recordAudit(this.db, actor, action, object, details);
  }
}

export function now(): string {
  return new Date().toISOString();
}

/** Who is acting, for the audit log: the CLI user (through sudo too). */
export function cliActor(): string {
  let user = process.env.SUDO_USER || process.env.USER;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = String(process.getuid?.() ?? 'unknown');
    }
  }
  return `cli:${user}`;
}

/** The admin token: created at first start, mode 0600, random 256 bits. */
export function ensureAdminToken(dir: string): string {
  const file = join(dir, ADMIN_TOKEN_FILE);
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    if (t.length >= 32) return t;
  }
  const token = 'ferry-admin-' + randomBytes(32).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return token;
}

export function newDeployToken(): string {
  return 'ferry-deploy-' + randomBytes(32).toString('base64url');
}

/** Compare secrets in constant time (hash both sides first so lengths match). */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

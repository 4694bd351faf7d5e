/** `ferry audit`: who changed what, newest first. */
import { DataDir } from '../server/context.js';
import { dataDir, parse, printJson, printTable, usageError } from '../common/cli.js';

const USAGE = 'ferry audit [--limit N] [--object NAME] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { limit: { type: 'string' }, object: { type: 'string' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length) throw usageError(`unexpected argument "${positionals[0]}"`, USAGE);
  if (values.limit && !/^[0-9]+$/.test(values.limit)) throw usageError(`--limit "${values.limit}" is not a number`, USAGE);
  const d = new DataDir(dataDir(values));
  try {
    const rows = (values.object
      ? d.db.prepare('SELECT * FROM audit WHERE object = ? OR object LIKE ? ORDER BY id DESC LIMIT ?').all(values.object, `${values.object}@%`, Number(values.limit ?? 100))
      : d.db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(Number(values.limit ?? 100))) as { id: number; ts: string; actor: string; action: string; object: string | null; details: string | null }[];
    const list = rows.map((r) => ({ id: r.id, ts: r.ts, actor: r.actor, action: r.action, object: r.object ?? undefined, details: r.details ? JSON.parse(r.details) : undefined }));
    if (values.json) printJson(list);
    else printTable(list.map((r) => ({ ...r, ts: r.ts.slice(0, 19), details: r.details ? JSON.stringify(r.details).slice(0, 100) : '' })), ['id', 'ts', 'actor', 'action', 'object', 'details']);
    return 0;
  } finally {
    d.close();
  }
}

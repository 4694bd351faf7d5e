/** `ferry audit`: who changed what, newest first. */
import { DataDir } from '../server/context.js';
import { listAudit } from '../server/db/audit.js';
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
  const d = new DataDir(dataDir(values), { readOnly: true });
  try {
    const list = listAudit(d.db, { limit: Number(values.limit ?? 100), object: values.object }).map((r) => ({ ...r, object: r.object ?? undefined }));
    if (values.json) printJson(list);
    else printTable(list.map((r) => ({ ...r, ts: r.ts.slice(0, 19), details: r.details ? JSON.stringify(r.details).slice(0, 100) : '' })), ['id', 'ts', 'actor', 'action', 'object', 'details']);
    return 0;
  } finally {
    d.close();
  }
}

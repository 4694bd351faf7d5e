/** `ferry redeploy RECORD`: deploy exactly the same image digest, layout and inputs again. */
import { cliActor, DataDir } from '../server/context.js';
import { parseTtl, redeploy } from '../server/db/deployments.js';
import { dataDir, parse, printJson, printTable, usageError } from '../common/cli.js';

const USAGE = 'ferry redeploy RECORD [--ttl 24h] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ttl: { type: 'string' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 1 || !/^[0-9]+$/.test(positionals[0])) throw usageError('ferry redeploy needs one RECORD number (see ferry history)', USAGE);
  const d = new DataDir(dataDir(values));
  try {
    const a = redeploy(d, Number(positionals[0]), { ttlMs: values.ttl ? parseTtl(values.ttl) : undefined, actor: cliActor() });
    if (values.json) printJson({ deployment: a });
    else printTable([{ deployment: a.id, node: a.node, expires: a.expiresAt.slice(0, 19), token: a.token }], ['deployment', 'node', 'expires', 'token']);
    return 0;
  } finally {
    d.close();
  }
}

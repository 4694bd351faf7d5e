/** `ferry cancel NODE|@GROUP|PROP=VALUE…`: end armed, running or lost deployments; the nodes boot locally again. */
import { cliActor, DataDir } from '../server/context.js';
import { cancelDeployments } from '../server/db/deployment-lifecycle.js';
import { selectNodes } from '../server/db/groups.js';
import { dataDir, parse, printJson, printTable, usageError } from '../common/cli.js';

const USAGE = 'ferry cancel NODE|@GROUP|PROPERTY=VALUE... [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {}, USAGE);
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!positionals.length) throw usageError('ferry cancel needs at least one node, @group or property=value', USAGE);
  const d = new DataDir(dataDir(values));
  try {
    // The whole selection resolves first, so a misspelled node cancels nothing.
    const out = cancelDeployments(d, selectNodes(d, positionals), cliActor());
    if (values.json) printJson(out);
    else {
      if (out.cancelled.length) printTable(out.cancelled.map((x) => ({ deployment: x.id, node: x.node, image: x.image, stage: x.stage, status: x.status })), ['deployment', 'node', 'image', 'stage', 'status']);
      for (const n of out.idle) process.stdout.write(`ferry: ${n} has no deployment armed or running; nothing to cancel\n`);
    }
    return 0;
  } finally {
    d.close();
  }
}

/** `ferry exec SELECTION... -- COMMAND...`: one command on many nodes over SSH, output collated. */
import { DataDir } from '../server/context.js';
import { selectNodes } from '../server/db/groups.js';
import { collate, formatGroups, overallExit } from '../server/ssh/collate.js';
import { execOnNodes } from '../server/ssh/exec.js';
import { dataDir, intOption, parse, printJson, splitAtDashes, usageError } from '../common/cli.js';

const USAGE = `ferry exec NODE|@GROUP|PROPERTY=VALUE... [--fanout N] [--timeout S] [--user U] [--accept-new-host-key] [--json] -- COMMAND...
  runs COMMAND (its words joined by spaces, for the remote shell) on every selected node at once, at most
  --fanout (64) at a time, each within --timeout (60) seconds; prints identical results once under their
  node set (web[01-12,15]), largest group first; exits with the largest exit code (255: not run)`;

export async function run(argv: string[]): Promise<number> {
  const { before, after } = splitAtDashes(argv);
  const { values, positionals } = parse(before, { fanout: { type: 'string' }, timeout: { type: 'string' }, user: { type: 'string' }, 'accept-new-host-key': { type: 'boolean' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!positionals.length) throw usageError('ferry exec needs at least one node, @group or property=value', USAGE);
  if (!after?.length) throw usageError('ferry exec needs the command after --', USAGE);
  const fanout = intOption(values, 'fanout', { min: 1, max: 1024, dflt: 64 }, USAGE);
  const timeoutS = intOption(values, 'timeout', { min: 1, max: 86_400, dflt: 60 }, USAGE);
  const d = new DataDir(dataDir(values));
  try {
    const nodes = selectNodes(d, positionals);
    const results = await execOnNodes(d, nodes, after, { fanout, timeoutS, user: values.user, acceptNew: values['accept-new-host-key'] });
    if (values.json) printJson(results.map((r) => ({ node: r.node, ...r.outcome, outcome: r.outcome.kind, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs, truncated: r.truncated ?? false })));
    else process.stdout.write(formatGroups(collate(results)));
    return overallExit(results);
  } finally {
    d.close();
  }
}

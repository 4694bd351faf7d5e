/** `ferry push SELECTION... SRC DEST`: one file copied to many nodes over SFTP, results collated. */
import { DataDir } from '../server/context.js';
import { selectNodes } from '../server/db/groups.js';
import { collate, formatGroups, overallExit } from '../server/ssh/collate.js';
import { planPush, pushToNodes } from '../server/ssh/push.js';
import { dataDir, intOption, parse, printJson, usageError } from '../common/cli.js';

const USAGE = `ferry push NODE|@GROUP|PROPERTY=VALUE... SRC DEST [--mode M] [--owner U:G] [--fanout N] [--timeout S] [--user U] [--accept-new-host-key] [--json]
  copies the local file SRC to DEST (an absolute path; ending in / for a directory) on every selected
  node over SFTP, at most --fanout (64) at a time, each within --timeout (60) seconds: written under a
  temporary name beside DEST, given --mode (default: SRC's) and --owner, then renamed over DEST;
  results collated as ferry exec's; exits 0 when every node has the file, 255 otherwise`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { mode: { type: 'string' }, owner: { type: 'string' }, fanout: { type: 'string' }, timeout: { type: 'string' }, user: { type: 'string' }, 'accept-new-host-key': { type: 'boolean' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length < 3) throw usageError('ferry push needs at least one node, @group or property=value, then SRC and DEST', USAGE);
  const dest = positionals.pop()!;
  const src = positionals.pop()!;
  const fanout = intOption(values, 'fanout', { min: 1, max: 1024, dflt: 64 }, USAGE);
  const timeoutS = intOption(values, 'timeout', { min: 1, max: 86_400, dflt: 60 }, USAGE);
  const plan = planPush(src, dest, { mode: values.mode, owner: values.owner });
  const d = new DataDir(dataDir(values));
  try {
    const nodes = selectNodes(d, positionals);
    const results = await pushToNodes(d, nodes, plan, { fanout, timeoutS, user: values.user, acceptNew: values['accept-new-host-key'] });
    if (values.json) printJson(results.map((r) => ({ node: r.node, ...r.outcome, outcome: r.outcome.kind, dest: plan.dest, bytes: plan.size, durationMs: r.durationMs })));
    else process.stdout.write(formatGroups(collate(results)));
    return overallExit(results);
  } finally {
    d.close();
  }
}

/** `ferry update SELECTION... --image REF --dry-run`: what rsync over SSH would change on each node. */
import { readFileSync } from 'node:fs';
import { DataDir } from '../server/context.js';
import { selectNodes } from '../server/db/groups.js';
import { collate, formatGroups, overallExit } from '../server/ssh/collate.js';
import { updateDryRun } from '../server/ssh/update.js';
import { dataDir, intOption, parse, printJson, usageError } from '../common/cli.js';

const USAGE = `ferry update NODE|@GROUP|PROPERTY=VALUE... --image REF --dry-run [--root PATH] [--exclude-from FILE] [--fanout N] [--timeout S] [--user U] [--json]
  lists, per node, what rsync (-aHAX --numeric-ids --delete) over Ferry's SSH connection would change
  to bring the node's tree (--root, default /) to the image version, skipping the default excludes
  (docs/operator-guide.md); results collated as ferry exec's. Only --dry-run is implemented yet`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { image: { type: 'string' }, 'dry-run': { type: 'boolean' }, root: { type: 'string' }, 'exclude-from': { type: 'string' }, fanout: { type: 'string' }, timeout: { type: 'string' }, user: { type: 'string' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!positionals.length) throw usageError('ferry update needs at least one node, @group or property=value', USAGE);
  if (!values.image) throw usageError('ferry update needs --image REF', USAGE);
  if (!values['dry-run']) throw usageError('ferry update: only --dry-run is implemented yet (it lists what would change)', USAGE);
  const fanout = intOption(values, 'fanout', { min: 1, max: 256, dflt: 16 }, USAGE);
  const timeoutS = intOption(values, 'timeout', { min: 1, max: 86_400, dflt: 600 }, USAGE);
  const excludes = values['exclude-from'] ? readFileSync(values['exclude-from'], 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')) : [];
  const d = new DataDir(dataDir(values));
  try {
    const nodes = selectNodes(d, positionals);
    const results = await updateDryRun(d, nodes, { image: values.image, root: values.root, excludes, fanout, timeoutS, user: values.user });
    if (values.json) printJson(results.map((r) => ({ node: r.node, ...r.outcome, outcome: r.outcome.kind, changes: r.stdout.trim() === '(no changes)' ? [] : r.stdout.trim().split('\n').filter(Boolean), durationMs: r.durationMs })));
    else process.stdout.write(formatGroups(collate(results)));
    return overallExit(results);
  } finally {
    d.close();
  }
}

/** `ferry update SELECTION... --image REF [--dry-run]`: rsync over SSH brings each node's files to the image version. */
import { readFileSync } from 'node:fs';
import { cliActor, DataDir } from '../server/context.js';
import { selectNodes } from '../server/db/groups.js';
import { collate, formatGroups, overallExit } from '../server/ssh/collate.js';
import { updateNodes, type CustomizeRenderer } from '../server/ssh/update.js';
import { planCustomization, targetView } from '../installer/customize/apply.js';
import { TargetRoot } from '../layers/target.js';
import { dataDir, intOption, parse, printJson, usageError } from '../common/cli.js';

const USAGE = `ferry update NODE|@GROUP|PROPERTY=VALUE... --image REF [--dry-run] [--root PATH] [--exclude-from FILE] [--fanout N] [--timeout S] [--user U] [--json]
  brings each node's tree (--root, default /) to the image version with rsync (-aHAX --numeric-ids
  --delete) over Ferry's SSH connection, skipping the default excludes (docs/operator-guide.md);
  the files Ferry's customization writes for the node are rendered again and put in place after it.
  Each update is a deployment record of kind update (ferry history). --dry-run lists what would
  change and records nothing. Results collated as ferry exec's`;

/**
 * The installer's own customization planner over the image's exported tree: the same files the
 * install wrote, rendered again for the node. The node's identity (machine-id, host keys, fstab)
 * is not rendered (server/ssh/update.ts leaves it out); no initramfs rebuild, no scripts.
 */
const render: CustomizeRenderer = (items, c, tree) =>
  planCustomization(items, { ...c, machineId: '0'.repeat(32), initramfs: false }, targetView(new TargetRoot(tree)));

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
  const fanout = intOption(values, 'fanout', { min: 1, max: 256, dflt: 16 }, USAGE);
  const timeoutS = intOption(values, 'timeout', { min: 1, max: 86_400, dflt: 600 }, USAGE);
  const excludes = values['exclude-from'] ? readFileSync(values['exclude-from'], 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')) : [];
  const d = new DataDir(dataDir(values));
  try {
    const nodes = selectNodes(d, positionals);
    const results = await updateNodes(d, nodes, { image: values.image, root: values.root, excludes, fanout, timeoutS, user: values.user, dryRun: !!values['dry-run'], actor: cliActor(), render });
    if (values.json) {
      printJson(results.map((r) => ({ node: r.node, ...r.outcome, outcome: r.outcome.kind, ...(r.deployment ? { deployment: r.deployment } : {}), changes: r.changes, customized: r.customized, ...(r.stats ? { stats: r.stats } : {}), durationMs: r.durationMs })));
    } else process.stdout.write(formatGroups(collate(results)));
    return overallExit(results);
  } finally {
    d.close();
  }
}

/** `ferry group …`: named, overlapping, nested sets of nodes. */
import { cliActor, DataDir } from '../server/context.js';
import { addToGroup, groupInfo, listGroups, removeFromGroup } from '../server/db/groups.js';
import { dataDir, parseSubcommand, printJson, printTable, usageError } from '../common/cli.js';

const USAGE = `ferry group add NAME [--node NODE]... [--include GROUP]... [--description TEXT] [--transport http|torrent|multicast | --no-transport]
                (creates or extends; --transport: the default transport of its nodes)
ferry group rm NAME [--node NODE]... [--include GROUP]...   (without members: removes the group)
ferry group ls [--json]
ferry group show NAME [--json]`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSubcommand(
    argv,
    { node: { type: 'string', multiple: true }, include: { type: 'string', multiple: true }, description: { type: 'string' }, transport: { type: 'string' }, 'no-transport': { type: 'boolean' } },
    USAGE,
  );
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  const d = new DataDir(dataDir(values), { readOnly: sub === 'ls' || sub === 'show' });
  try {
    switch (sub) {
      case 'add': {
        if (positionals.length !== 1) throw usageError('ferry group add needs NAME', USAGE);
        const g = addToGroup(d, positionals[0], { nodes: values.node, includes: values.include, description: values.description, transport: values['no-transport'] ? null : values.transport }, cliActor());
        if (values.json) printJson(g);
        else process.stdout.write(`group ${g.name}: ${g.allNodes.length} node(s)\n`);
        return 0;
      }
      case 'rm': {
        if (positionals.length !== 1) throw usageError('ferry group rm needs NAME', USAGE);
        removeFromGroup(d, positionals[0], { nodes: values.node, includes: values.include }, cliActor());
        process.stdout.write(values.node || values.include ? `updated group ${positionals[0]}\n` : `removed group ${positionals[0]}\n`);
        return 0;
      }
      case 'ls': {
        const list = listGroups(d);
        if (values.json) printJson(list);
        else printTable(list.map((g) => ({ name: g.name, nodes: g.nodes.join(','), includes: g.includes.join(','), total: g.allNodes.length, transport: g.transport, description: g.description })), ['name', 'nodes', 'includes', 'total', 'transport', 'description']);
        return 0;
      }
      case 'show': {
        if (positionals.length !== 1) throw usageError('ferry group show needs NAME', USAGE);
        const g = groupInfo(d, positionals[0]);
        if (values.json) printJson(g);
        else process.stdout.write(`name: ${g.name}\n${g.description ? `description: ${g.description}\n` : ''}${g.transport ? `transport: ${g.transport}\n` : ''}nodes: ${g.nodes.join(', ') || '-'}\nincludes: ${g.includes.join(', ') || '-'}\nall nodes: ${g.allNodes.join(', ') || '-'}\n`);
        return 0;
      }
      default:
        throw usageError(`unknown subcommand "group ${sub}"`, USAGE);
    }
  } finally {
    d.close();
  }
}

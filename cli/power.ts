/** `ferry power on|off|cycle|status SELECTION…`: drive nodes' power through their drivers. */
import { cliActor, DataDir } from '../server/context.js';
import { selectNodes } from '../server/db/groups.js';
import { powerNodes, printPowerResults } from '../server/power/nodes.js';
import { POWER_ACTIONS, type PowerAction } from '../server/power/index.js';
import { dataDir, parseSubcommand, printJson, usageError } from '../common/cli.js';

const USAGE = `ferry power on|off|cycle|status NODE|@GROUP|PROPERTY=VALUE... [--json]
(the driver is the node's: ferry node set NODE --power ipmi|redfish|qemu|wol|manual --power-address ADDR[:PORT] ...)`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseSubcommand(argv, {}, USAGE);
  if (typeof parsed === 'number') return parsed;
  const { sub, values, positionals } = parsed;
  switch (sub) {
    case 'on':
    case 'off':
    case 'cycle':
    case 'status':
      break;
    default:
      throw usageError(`unknown subcommand "power ${sub}" (one of ${POWER_ACTIONS.join(', ')})`, USAGE);
  }
  if (!positionals.length) throw usageError(`ferry power ${sub} needs at least one node, @group or property=value`, USAGE);
  const d = new DataDir(dataDir(values));
  try {
    const results = await powerNodes(d, selectNodes(d, positionals), sub as PowerAction, cliActor());
    if (values.json) printJson({ results });
    else printPowerResults(results);
    return results.every((r) => r.ok) ? 0 : 1;
  } finally {
    d.close();
  }
}

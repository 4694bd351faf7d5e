/** `ferry deploy NODE|@GROUP|PROP=VALUE…`: arm installs, one deployment and token per node. */
import { readFileSync } from 'node:fs';
import { FerryError, formatProblem } from '../common/errors.js';
import { formatBytes } from '../common/units.js';
import { cliActor, DataDir } from '../server/context.js';
import { armDeployment, checkDeployment, ensureArmIndex, getDeploymentRow, newBatch, parseTtl, transportOf, transportRequest, type Armed } from '../server/db/deployments.js';
import { parsePairs } from '../server/db/inventory.js';
import { selectNodes } from '../server/db/groups.js';
import { dataDir, parse, printJson, printTable, usageError } from '../common/cli.js';
import { powerTarget } from '../server/db/power.js';
import { powerNodes, printPowerResults, type NodePowerResult } from '../server/power/nodes.js';

const USAGE = `ferry deploy NODE|@GROUP|PROPERTY=VALUE... [--image IMG] [--layout FILE] [--set KEY=VALUE]... [--ttl 24h] [--check] [--json]
             [--transport http|torrent|multicast] [--min-receivers N] [--max-wait SECONDS] [--max-bitrate RATE] [--seed-wait SECONDS]
             [--power]   (then start each node: a one-time network boot where its power driver can, and a power cycle)`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      image: { type: 'string' },
      layout: { type: 'string' },
      set: { type: 'string', multiple: true },
      ttl: { type: 'string' },
      check: { type: 'boolean' },
      transport: { type: 'string' },
      'min-receivers': { type: 'string' },
      'max-wait': { type: 'string' },
      'max-bitrate': { type: 'string' },
      'seed-wait': { type: 'string' },
      power: { type: 'boolean' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!positionals.length) throw usageError('ferry deploy needs at least one node, @group or property=value', USAGE);
  let layout: string | undefined;
  if (values.layout) {
    try {
      layout = readFileSync(values.layout, 'utf8');
    } catch (e) {
      throw new FerryError('FERRY_E_SOURCE_MISSING', `cannot read the layout ${values.layout}: ${(e as Error).message}`, { details: { path: values.layout }, hint: 'give an existing layout XML file' });
    }
  }
  const transport = transportRequest({ transport: values.transport, minReceivers: values['min-receivers'], maxWait: values['max-wait'], maxBitrate: values['max-bitrate'], seedWait: values['seed-wait'] });
  const d = new DataDir(dataDir(values));
  try {
    const nodes = selectNodes(d, positionals);
    // The images' layer indexes, for the checks of the paths their items name.
    await ensureArmIndex(d, nodes, values.image);
    if (values.check) {
      // The arm-time checks, reported for every node, with nothing armed or stored.
      const inputs = values.set ? parsePairs(values.set, '--set') : undefined;
      const report = nodes.map((n) => checkDeployment(d, n, { image: values.image, layout, inputs }));
      const bad = report.some((r) => r.problems.some((p) => p.severity === 'error'));
      if (values.json) printJson({ ok: !bad, nodes: report });
      else {
        for (const r of report) {
          const errors = r.problems.filter((p) => p.severity === 'error').length;
          process.stdout.write(`${r.node}: ${errors ? `${errors} error(s)` : 'ok'}${r.image ? `, image ${r.image}` : ''}${r.layoutDigest ? `, layout ${r.layoutDigest.slice(0, 19)}` : ''}\n`);
          for (const x of r.disks ?? []) process.stdout.write(`  disk ${x.layoutDisk} -> ${x.disk} (${formatBytes(x.size)}${x.serial ? `, serial ${x.serial}` : ''}, from the node's stored hardware)\n`);
          for (const p of r.problems) process.stdout.write(`  ${formatProblem(p).replace(/\n/g, '\n  ')}\n`);
        }
      }
      return bad ? 1 : 0;
    }
    const inputs = values.set ? parsePairs(values.set, '--set') : undefined;
    // --power: every node must have a driver, checked before anything is armed.
    if (values.power) for (const n of nodes) powerTarget(d, n);
    const ttlMs = values.ttl ? parseTtl(values.ttl) : undefined;
    const armed: Armed[] = [];
    // One batch: the nodes armed here are one multicast session's receivers.
    const batch = newBatch();
    // Check every node before arming any, so a bad selection arms nothing.
    d.write(() => {
      for (const n of nodes) armed.push(armDeployment(d, n, { image: values.image, layout, layoutSource: values.layout, inputs, ttlMs, actor: cliActor(), transport, batch }));
      const sessionOptions = ['minReceivers', 'maxWaitS', 'maxBitrate'].filter((k) => k in transport);
      if (sessionOptions.length && !armed.some((a) => transportOf(getDeploymentRow(d, a.id)).kind === 'multicast')) {
        throw usageError('--min-receivers, --max-wait and --max-bitrate are multicast session options, but no node of this selection deploys by multicast', USAGE);
      }
      if ('seedWaitS' in transport && !armed.some((a) => transportOf(getDeploymentRow(d, a.id)).kind === 'torrent')) {
        throw usageError('--seed-wait is a torrent option, but no node of this selection deploys by torrent', USAGE);
      }
    });
    const warned = new Set<string>();
    for (const w of armed.flatMap((a) => a.warnings ?? [])) {
      if (!warned.has(w.code + w.message)) process.stderr.write(formatProblem(w) + '\n');
      warned.add(w.code + w.message);
    }
    // Armed first, then powered: the machine's network boot finds its deployment waiting.
    const power: NodePowerResult[] | undefined = values.power ? await powerNodes(d, nodes, 'install', cliActor()) : undefined;
    if (values.json) printJson({ deployments: armed, ...(power ? { power } : {}) });
    else {
      printTable(armed.map((a) => ({ deployment: a.id, node: a.node, expires: a.expiresAt.slice(0, 19), token: a.token })), ['deployment', 'node', 'expires', 'token']);
      if (power) printPowerResults(power);
    }
    return power && !power.every((r) => r.ok) ? 1 : 0;
  } finally {
    d.close();
  }
}

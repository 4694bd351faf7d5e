/** `ferry history [NODE]`: deployment records; `ferry history --record N` shows one with its events. */
import { formatEvent, isMilestone } from '../common/progress.js';
import { printable, printableLines } from '../common/text.js';
import { DataDir } from '../server/context.js';
import { deploymentInfo, getDeploymentRow, listDeployments, type TransportSpec } from '../server/db/deployments.js';
import { deploymentEvents } from '../server/db/deployment-events.js';
import { getNodeRow } from '../server/db/inventory.js';
import { dataDir, parse, printJson, printTable, usageError } from '../common/cli.js';

const USAGE = 'ferry history [NODE] [--limit N] [--json]\nferry history --record ID [--all] [--json]   (one record and its events; --all adds the progress counts and heartbeats)';

/** "multicast (min 4 receivers, max wait 60 s, max 600m)", "torrent (seed wait 60 s)". */
function transportText(t: TransportSpec): string {
  const m = t.multicast;
  if (t.seedWaitS !== undefined) return `${t.kind} (seed wait ${t.seedWaitS} s)`;
  if (!m) return t.kind;
  return `${t.kind} (${m.minReceivers ? `min ${m.minReceivers} receivers` : 'the whole batch'}, max wait ${m.maxWaitS} s, max ${m.maxBitrate}bit/s)`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { limit: { type: 'string' }, record: { type: 'string' }, all: { type: 'boolean' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length > 1) throw usageError('ferry history takes at most one NODE', USAGE);
  const d = new DataDir(dataDir(values), { readOnly: true });
  try {
    if (values.record) {
      if (!/^[0-9]+$/.test(values.record)) throw usageError(`--record "${values.record}" is not a record number`, USAGE);
      const info = deploymentInfo(getDeploymentRow(d, Number(values.record)));
      const events = deploymentEvents(d, info.id);
      if (values.json) printJson({ deployment: info, events });
      else {
        const took = info.startedAt && info.endedAt ? ` (${((Date.parse(info.endedAt) - Date.parse(info.startedAt)) / 1000).toFixed(0)} s)` : '';
        const inputs = Object.entries(info.inputs).map(([k, v]) => `${k}=${v}`).join(' ');
        process.stdout.write(printableLines(
          `record ${info.id}: ${info.node} ${info.image} ${info.status}${info.redeployOf ? ` (a redeploy of record ${info.redeployOf})` : ''}\n` +
            `image digest: ${info.imageDigest}\nlayout: ${info.layoutDigest}\ninputs: ${inputs || '(none)'}\n` +
            (info.kind === 'update' ? `kind: update over SSH (ferry update: rsync of the image's tree, no install)\n` : '') +
            `transport: ${info.kind === 'update' ? 'ssh' : info.createdBy.startsWith('medium:') ? `the restore medium ${info.createdBy.slice(7)} (an offline install, reported at first boot)` : transportText(info.transport)}${info.batch ? ` (batch ${info.batch})` : ''}\n` +
            `created: ${info.createdAt} by ${info.createdBy}\n` +
            (info.startedAt ? `started: ${info.startedAt}\n` : '') +
            (info.endedAt ? `ended: ${info.endedAt}${took}\n` : ''),
        ));
        if (info.error) process.stdout.write(`error: ${printable(info.error.code)}: ${printable(info.error.message)}\n`);
        const shown = values.all ? events : events.filter(isMilestone);
        for (const e of shown) process.stdout.write(`${printable(String(e.ts))} ${printable(formatEvent(e))}\n`);
        if (shown.length < events.length) process.stdout.write(`(${events.length - shown.length} progress and heartbeat events not shown: --all shows them)\n`);
      }
      return 0;
    }
    if (values.limit && !/^[0-9]+$/.test(values.limit)) throw usageError(`--limit "${values.limit}" is not a number`, USAGE);
    const list = listDeployments(d, { node: positionals[0], limit: values.limit ? Number(values.limit) : 100 });
    // A machine installed from a restore medium has records without being a node: only a name with neither is unknown.
    if (positionals[0] && list.length === 0) getNodeRow(d, positionals[0]);
    if (values.json) printJson(list);
    else
      printTable(
        list.map((x) => ({ record: x.id, node: x.node, image: x.image, transport: x.kind === 'update' ? 'update (ssh)' : x.createdBy.startsWith('medium:') ? 'medium' : x.transport.kind, status: x.status, stage: x.stage, created: x.createdAt.slice(0, 19), ended: x.endedAt?.slice(0, 19), redeploy: x.redeployOf, error: x.error?.code })),
        ['record', 'node', 'image', 'transport', 'status', 'stage', 'created', 'ended', 'redeploy', 'error'],
      );
    return 0;
  } finally {
    d.close();
  }
}

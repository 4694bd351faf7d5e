/**
 * Power actions over a selection of nodes: each node's driver called with its stored settings,
 * a few at a time, every outcome collected (one node's dead BMC does not stop the others), and
 * each action that changes a machine recorded in the audit log.
 */
import { boundedMap } from '../../common/bounded.js';
import { printTable } from '../../common/cli.js';
import type { DataDir } from '../context.js';
import { powerTarget } from '../db/power.js';
import { powerAction, powerError, powerForInstall, type PowerAction, type PowerState } from './index.js';

export interface NodePowerResult {
  node: string;
  driver?: string;
  action: PowerAction | 'install';
  ok: boolean;
  state?: PowerState;
  /** For install: whether a one-time network boot was set, and whether the machine was powered on or cycled. */
  pxeOnce?: boolean;
  started?: 'on' | 'cycle';
  message?: string;
  error?: { code: string; message: string; hint?: string };
}

/** BMCs are slow (seconds per call); a rack is powered this many at a time. */
export const POWER_CONCURRENCY = 8;

export async function powerNodes(d: DataDir, nodes: string[], action: PowerAction | 'install', actor: string): Promise<NodePowerResult[]> {
  return boundedMap(nodes, POWER_CONCURRENCY, async (node): Promise<NodePowerResult> => {
    let r: NodePowerResult = { node, action, ok: false };
    try {
      const t = powerTarget(d, node);
      r.driver = t.driver;
      if (action === 'install') {
        const x = await powerForInstall(t);
        r = { ...r, ok: true, state: x.state, pxeOnce: x.pxeOnce, started: x.action, message: x.message };
      } else {
        const x = await powerAction(t, action);
        r = { ...r, ok: true, state: x.state, message: x.message };
      }
    } catch (e) {
      r.error = powerError(e);
    }
    if (action !== 'status') {
      d.write(() => d.audit(actor, `power.${action}`, node, { driver: r.driver, ok: r.ok, state: r.state, pxeOnce: r.pxeOnce, started: r.started, error: r.error?.code }));
    }
    return r;
  });
}

/** One table for a selection, and each failure's fix once below it. */
export function printPowerResults(results: NodePowerResult[]): void {
  printTable(
    results.map((r) => ({ node: r.node, driver: r.driver ?? '-', action: r.action === 'install' ? `pxe+${r.started ?? '?'}` : r.action, state: r.state ?? '', result: r.ok ? (r.message ?? 'ok') : r.error?.code })),
    ['node', 'driver', 'action', 'state', 'result'],
  );
  for (const r of results.filter((x) => !x.ok)) process.stderr.write(`${r.node}: ${r.error?.message}${r.error?.hint ? `\n  fix: ${r.error.hint}` : ''}\n`);
}

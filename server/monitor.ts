/**
 * What `ferry monitor` shows: one row per deployment (node, stage, percent, MB/s, ETA,
 * state), computed by a pure state machine (monitor-state.ts) fed with the server's event
 * stream (a `snapshot` on connect, then `progress` and `deployment` messages).
 */
import type { DataDir } from './context.js';
import { listDeployments } from './db/deployments.js';
import { deploymentEvents } from './db/deployment-events.js';
import type { MonitorSnapshot } from './monitor-state.js';

export { MonitorState, formatAge, formatEta, MONITOR_COLUMNS, rowCells, type MonitorRow, type MonitorSnapshot } from './monitor-state.js';

/** Active deployments and those that ended in the last hour, with their recent events. */
export function monitorSnapshot(d: DataDir, recentMs = 3600_000): MonitorSnapshot {
  const cutoff = Date.now() - recentMs;
  const deps = listDeployments(d, { limit: 500 }).filter((x) => x.status === 'armed' || x.status === 'running' || x.status === 'lost' || (x.endedAt && Date.parse(x.endedAt) >= cutoff));
  return {
    deployments: deps.map((info) => ({ info, events: deploymentEvents(d, info.id).slice(-200) })),
  };
}

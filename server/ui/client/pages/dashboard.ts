/** The dashboard: deployments in progress (live), counts by state, the last failures. */
import { formatEta, rowCells, type MonitorRow } from '../../../monitor-state.js';
import { clear, h } from '../dom.js';
import { hasRedraw, infos, live, monitor, onRedraw, schedule } from '../live.js';
import { cell, fixLine, main, nodeLink } from '../ui.js';

const ACTIVE = new Set(['armed', 'running', 'lost', 'error']);
let tick: ReturnType<typeof setInterval> | undefined;

/** Ended deployments stay in the table this long after their end (success, and failures with their error). */
const RECENT = new Set(['success', 'failed', 'aborted']);

function progressRow(r: MonitorRow, now: number): HTMLElement {
  // SEEN and ERROR as the CLI monitor shows them (one function, server/monitor-state.ts rowCells).
  const cells = rowCells(r, now);
  return h(
    'tr',
    { 'data-node': r.node, 'data-state': r.state, 'data-stage': r.stage },
    h('td', {}, nodeLink(r.node)),
    cell(r.image),
    cell(r.transport),
    cell(r.stage),
    h('td', {}, r.percent === undefined ? '' : h('progress', { max: 100, value: r.percent.toFixed(0), 'aria-label': `${r.percent.toFixed(0)}%` }), r.percent === undefined ? '' : ` ${r.percent.toFixed(0)}%`),
    cell(r.mbps === undefined ? '' : `${r.mbps.toFixed(1)} MB/s`),
    cell(formatEta(r.etaSeconds)),
    cell(r.state, `state ${r.state}`),
    h('td', { 'data-col': 'seen' }, cells.seen),
    h('td', { 'data-col': 'error', class: cells.error ? 'code' : '' }, cells.error),
  );
}

export async function dashboard(): Promise<void> {
  const counts = h('ul', { id: 'counts', class: 'counts' });
  const body = h('tbody', { id: 'progress' });
  const fails = h('ul', { id: 'failures' });
  const rate = h('p', { class: 'muted', id: 'rate' });
  const HEAD = ['node', 'image', 'via', 'stage', 'progress', 'rate', 'ETA', 'state', 'seen', 'error'];
  clear(
    main,
    h('h1', {}, 'Dashboard'),
    counts,
    h('h2', {}, 'Deployments in progress'),
    h('div', { class: 'scroll' }, h('table', { id: 'live' }, h('thead', {}, h('tr', {}, HEAD.map((x) => h('th', { scope: 'col' }, x)))), body)),
    h('h2', {}, 'Last failures'),
    fails,
    rate,
  );
  const redraw = () => {
    const now = Date.now();
    const rows = monitor.rows();
    const by: Record<string, number> = {};
    for (const r of rows) by[r.state] = (by[r.state] ?? 0) + 1;
    clear(counts, Object.keys(by).sort().map((s) => h('li', { class: `state ${s}`, 'data-count': s }, `${s}: ${by[s]}`)));
    const shown = rows.filter((r) => ACTIVE.has(r.state) || (RECENT.has(r.state) && infos.get(r.id)?.endedAt && now - Date.parse(infos.get(r.id)!.endedAt!) < 600_000));
    clear(body, shown.length ? shown.map((r) => progressRow(r, now)) : h('tr', {}, h('td', { colspan: HEAD.length, class: 'muted' }, 'No deployment in progress.')));
    const failed = [...infos.values()].filter((d) => d.status === 'failed' || d.error).sort((a, b) => (b.endedAt ?? '').localeCompare(a.endedAt ?? '')).slice(0, 10);
    clear(
      fails,
      failed.length
        ? failed.map((d) => h('li', { 'data-node': d.node }, nodeLink(d.node), ' ', h('code', { class: 'code' }, d.error?.code ?? d.status), ' ', d.error?.message ?? '', fixLine(d.error?.code)))
        : h('li', { class: 'muted' }, 'No failures in the last hour.'),
    );
    rate.textContent = `${live.eventsSeen} events received`;
  };
  onRedraw(redraw);
  redraw();
  // SEEN ages move with the clock, not only with events (one clock, however often the
  // dashboard is opened again).
  clearInterval(tick);
  tick = setInterval(() => (hasRedraw() ? schedule() : clearInterval(tick)), 1000);
}

/** A node's page: its settings, hardware, deployment history with each deployment's stages and events. */
import type { DeploymentInfo, StoredEvent } from '../../../db/deployments.js';
import type { NodeInfo } from '../../../db/inventory.js';
import { ADMIN, call } from '../api.js';
import { clear, h } from '../dom.js';
import { cell, fixLine, main } from '../ui.js';

interface Span {
  phase: string;
  start?: string;
  end?: string;
  state: string;
}

/** The stages of a deployment with their durations, from its events. */
function timeline(events: StoredEvent[]): Span[] {
  const spans = new Map<string, Span>();
  for (const e of events) {
    if (e.object) continue;
    const s = spans.get(e.phase) ?? { phase: e.phase, state: e.state };
    if (e.state === 'start') s.start = e.ts;
    if (e.state === 'end' || e.state === 'error') s.end = e.ts;
    if (e.state !== 'heartbeat' && e.state !== 'progress') s.state = e.state;
    spans.set(e.phase, s);
  }
  return [...spans.values()];
}

function seconds(a?: string, b?: string): string {
  return a && b ? `${((Date.parse(b) - Date.parse(a)) / 1000).toFixed(1)} s` : '';
}

export async function nodePage(name: string): Promise<void> {
  const [{ node }, { deployments }] = await Promise.all([
    call<{ node: NodeInfo }>('GET', `${ADMIN}/nodes/${encodeURIComponent(name)}`),
    call<{ deployments: DeploymentInfo[] }>('GET', `${ADMIN}/deployments?node=${encodeURIComponent(name)}`),
  ]);
  const dl = (pairs: [string, string | HTMLElement][]) => h('dl', {}, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const kv = (o: Record<string, string>) => (Object.keys(o).length ? Object.entries(o).map(([k, v]) => `${k}=${v}`).join(', ') : '-');
  const history = h('div', { id: 'history' });
  clear(
    main,
    h('h1', {}, node.name),
    dl([['MACs', node.macs.join(', ') || '-'], ['groups', node.groups.join(', ') || '-'], ['image', node.image ?? '-'], ['layout', node.layout ? node.layout.digest.slice(0, 19) + (node.layout.source ? ` (${node.layout.source})` : '') : '-'], ['boot action', node.bootAction], ['properties', kv(node.properties)], ['inputs', kv(node.inputs)], ['transport', node.transport ?? 'default']]),
    h('h2', {}, 'Deployments'),
    history,
  );
  if (!deployments.length) return clear(history, h('p', { class: 'muted' }, 'Never deployed.'));
  const sorted = [...deployments].sort((a, b) => b.id - a.id).slice(0, 20);
  const full = await Promise.all(sorted.map((d) => call<{ deployment: DeploymentInfo; events: StoredEvent[] }>('GET', `${ADMIN}/deployments/${d.id}`)));
  clear(
    history,
    full.map(({ deployment: d, events }, i) =>
      h(
        'details',
        { class: 'deployment', 'data-id': d.id, open: i === 0 },
        h('summary', {}, `#${d.id} ${d.image} - `, h('span', { class: `state ${d.status}` }, d.status), ` - ${d.createdAt}${d.redeployOf ? ` (again from #${d.redeployOf})` : ''}`),
        d.error ? h('p', { class: 'error' }, h('code', { class: 'code' }, d.error.code), ' ', d.error.message, fixLine(d.error.code)) : '',
        h('table', { class: 'timeline' }, h('thead', {}, h('tr', {}, ['stage', 'state', 'duration'].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, timeline(events).map((s) => h('tr', {}, cell(s.phase), cell(s.state, `state ${s.state}`), cell(seconds(s.start, s.end)))))),
        h('details', { class: 'events' }, h('summary', {}, `${events.length} events`), h('ol', {}, events.map((e) => h('li', {}, `${e.ts ?? ''} ${e.phase} ${e.state}${e.object ? ' ' + e.object : ''}${e.message ? ': ' + e.message : ''}`)))),
      ),
    ),
  );
}

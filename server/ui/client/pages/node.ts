/**
 * A node's page: MACs, address, groups, properties, power settings and hardware inventory (the
 * hw.* properties the installer reports), and its deployment history; for each deployment the
 * error with its fix, the timeline of stages with durations, the log (state changes and
 * messages), and every event. A deployment's events are fetched when it is opened.
 */
import { groupHwProperties } from '../../../../common/inventory.js';
import type { DeploymentInfo, StoredEvent } from '../../../db/deployments.js';
import type { NodeInfo } from '../../../db/inventory.js';
import { stageTimeline } from '../../views.js';
import { ADMIN, call } from '../api.js';
import { bytes, clear, h } from '../dom.js';
import { cell, failure, fixLine, main, say } from '../ui.js';

const HISTORY = 20;

function dl(pairs: [string, string | HTMLElement][]): HTMLElement {
  return h('dl', {}, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function kv(o: Record<string, string>): string {
  return Object.keys(o).length ? Object.entries(o).map(([k, v]) => `${k}=${v}`).join(', ') : '-';
}

/** The inventory's byte counts: memory, and each disk's size. */
const sized = (group: string, key: string) => key === 'memory' || (group.startsWith('disk ') && key === 'size');

function hardware(node: NodeInfo): HTMLElement {
  const groups = groupHwProperties(node.properties);
  if (!groups.length) return h('p', { id: 'hardware', class: 'muted' }, 'No inventory yet: the installer reports it when the node boots to install.');
  return h(
    'div',
    { id: 'hardware', class: 'scroll' },
    h('table', {}, h('tbody', {}, groups.map(([g, pairs]) => h('tr', { 'data-hw': g }, h('th', { scope: 'row' }, g), h('td', { class: 'wrap' }, pairs.map(([k, v]) => `${k}=${sized(g, k) && /^[0-9]+$/.test(v) ? bytes(Number(v)) : v}`).join('  ')))))),
  );
}

function clock(ts: string | undefined): string {
  return ts ? ts.slice(11, 23) : '';
}

/** The log of a deployment: every event that is not a progress count or a heartbeat, one line each. */
function logText(events: StoredEvent[]): string {
  return events
    .filter((e) => e.state !== 'progress' && e.state !== 'heartbeat')
    .map((e) => `${clock(e.ts)} ${e.phase} ${e.state}${e.object ? ` ${e.object}` : ''}${e.message ? `: ${e.message}` : ''}${e.code ? ` [${e.code}]` : ''}`)
    .join('\n');
}

function detailsOf(events: StoredEvent[]): HTMLElement[] {
  const spans = stageTimeline(events);
  return [
    h('h3', {}, 'Stages'),
    h('table', { class: 'timeline' }, h('thead', {}, h('tr', {}, ['stage', 'state', 'started', 'duration', 'events'].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, spans.map((s) => h('tr', { 'data-phase': s.phase }, cell(s.phase), cell(s.state, `state ${s.state}`), cell(clock(s.start)), cell(s.seconds === undefined ? '' : `${s.seconds.toFixed(1)} s`), cell(s.events))))),
    h('h3', {}, 'Log'),
    h('pre', { class: 'log', tabindex: '0', 'aria-label': 'log' }, logText(events) || '(no events)'),
    h(
      'details',
      { class: 'events' },
      h('summary', {}, `All ${events.length} events`),
      h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['time', 'stage', 'state', 'object', 'bytes', 'message'].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, events.map((e) => h('tr', {}, cell(clock(e.ts)), cell(e.phase), cell(e.state, `state ${e.state}`), cell(e.object), cell(e.bytes === undefined ? '' : `${bytes(e.bytes)}${e.total ? ` / ${bytes(e.total)}` : ''}`), cell([e.message, e.code].filter(Boolean).join(' '))))))),
    ),
  ];
}

function deployment(d: DeploymentInfo, open: boolean): HTMLElement {
  const body = h('div', { class: 'body' }, h('p', { class: 'muted' }, 'Loading events...'));
  let loaded = false;
  const load = async () => {
    if (loaded) return;
    loaded = true;
    try {
      const { events } = await call<{ events: StoredEvent[] }>('GET', `${ADMIN}/deployments/${d.id}/events`);
      clear(body, events.length ? detailsOf(events) : h('p', { class: 'muted' }, 'No events: the installer never reported for this deployment.'));
      el.setAttribute('data-loaded', '');
    } catch (e) {
      loaded = false;
      failure(e);
    }
  };
  const el = h(
    'details',
    { class: 'deployment', 'data-id': d.id, 'data-status': d.status, open, ontoggle: () => void ((el as HTMLDetailsElement).open && load()) },
    h('summary', {}, `#${d.id} ${d.image} - `, h('span', { class: `state ${d.status}` }, d.status), ` - ${d.createdAt.slice(0, 19).replace('T', ' ')}${d.redeployOf ? ` (again from #${d.redeployOf})` : ''}`),
    dl([['transport', d.transport.kind], ['layout', d.layoutDigest.slice(0, 19)], ['inputs', kv(d.inputs)], ['armed by', d.createdBy], ['started', d.startedAt ?? '-'], ['ended', d.endedAt ?? '-']]),
    d.error ? h('div', { class: 'error', role: 'note' }, h('code', { class: 'code' }, d.error.code), d.error.phase ? ` in ${d.error.phase}: ` : ' ', d.error.message, fixLine(d.error.code)) : '',
    body,
  );
  if (open) void load();
  return el;
}

const DRIVERS = ['ipmi', 'redfish', 'qemu', 'wol', 'manual'];

/**
 * The node's power settings, editable (PATCH /nodes/NAME {power}, what `ferry node set --power …`
 * does). The password is write-only: the field is always empty, a stored one is only said to be
 * there; left empty it is kept, "remove" clears it; driver "none" removes the settings.
 */
function powerEditor(node: NodeInfo): HTMLElement {
  const p = node.power;
  const driver = h('select', { id: 'power-driver', 'aria-label': 'power driver' }, h('option', { value: '' }, 'none'), DRIVERS.map((d) => h('option', { value: d, selected: p?.driver === d }, d))) as HTMLSelectElement;
  const address = h('input', { id: 'power-address', value: p?.address ?? '', placeholder: 'HOST[:PORT], QMP socket path, broadcast address', 'aria-label': 'power address' }) as HTMLInputElement;
  const user = h('input', { id: 'power-user', value: p?.user ?? '', autocomplete: 'off', 'aria-label': 'power user' }) as HTMLInputElement;
  const password = h('input', { id: 'power-password', type: 'password', value: '', autocomplete: 'new-password', placeholder: p?.password ? '(stored: leave empty to keep)' : '(none stored)', 'aria-label': 'power password' }) as HTMLInputElement;
  const forget = h('input', { id: 'power-forget-password', type: 'checkbox', 'aria-label': 'remove the stored password' }) as HTMLInputElement;
  const label = (text: string, el: HTMLElement) => h('label', { class: 'field' }, h('span', {}, text), el);
  const save = async () => {
    const body = driver.value
      ? { power: { driver: driver.value, address: address.value, user: user.value || null, ...(password.value ? { password: password.value } : forget.checked ? { password: null } : {}) } }
      : { power: null };
    try {
      const r = await call<{ node: NodeInfo }>('PATCH', `${ADMIN}/nodes/${encodeURIComponent(node.name)}`, body);
      password.value = '';
      forget.checked = false;
      password.placeholder = r.node.power?.password ? '(stored: leave empty to keep)' : '(none stored)';
      const q = r.node.power;
      say(q ? `power of ${node.name}: ${q.driver}${q.address ? ` ${q.address}` : ''}${q.user ? `, user ${q.user}` : ''}, ${q.password ? 'password stored' : 'no password'}` : `power settings of ${node.name} removed`);
    } catch (e) {
      failure(e);
    }
  };
  return h(
    'form',
    { id: 'power-form', class: 'panel', onsubmit: (e: Event) => (e.preventDefault(), void save()) },
    h('div', { class: 'fields' }, label('driver', driver), label('address', address), label('user', user), label('password', password), label('remove password', forget)),
    h('button', { id: 'power-save', type: 'submit' }, 'Save power settings'),
  );
}

export async function nodePage(name: string): Promise<void> {
  const [{ node }, { deployments }] = await Promise.all([
    call<{ node: NodeInfo }>('GET', `${ADMIN}/nodes/${encodeURIComponent(name)}`),
    call<{ deployments: DeploymentInfo[] }>('GET', `${ADMIN}/deployments?node=${encodeURIComponent(name)}`),
  ]);
  const plain = Object.fromEntries(Object.entries(node.properties).filter(([k]) => !k.startsWith('hw.')));
  const sorted = [...deployments].sort((a, b) => b.id - a.id);
  clear(
    main,
    h('h1', {}, node.name),
    dl([
      ['MACs', node.macs.join(', ') || '-'],
      ['address', node.address ?? '-'],
      ['groups', node.groups.join(', ') || '-'],
      ['image', node.image ?? '-'],
      ['layout', node.layout ? node.layout.digest.slice(0, 19) + (node.layout.source ? ` (${node.layout.source})` : '') : '-'],
      ['boot action', node.bootAction],
      ['properties', kv(plain)],
      ['inputs', kv(node.inputs)],
      ['transport', node.transport ?? 'default'],
      ['power', node.power ? `${node.power.driver}${node.power.address ? ` ${node.power.address}` : ''}` : '-'],
    ]),
    h('h2', {}, 'Power'),
    powerEditor(node),
    h('h2', {}, 'Hardware'),
    hardware(node),
    h('h2', {}, 'Deployments'),
    h(
      'div',
      { id: 'history' },
      sorted.length ? sorted.slice(0, HISTORY).map((d, i) => deployment(d, i === 0)) : h('p', { class: 'muted' }, 'Never deployed.'),
      sorted.length > HISTORY ? h('p', { class: 'muted' }, `${sorted.length - HISTORY} older deployments: ferry history ${node.name}`) : '',
    ),
  );
}

/**
 * Nodes: search, filters, sorting, multi-select, and actions on the selection: arm an install
 * (image, layout, inputs, transport), cancel, redeploy the last record, power on/off/cycle/status,
 * and set or unset properties and inputs of every selected node at once (PowerCockpit's node
 * editor). Every action is one admin API call, the same the CLI's commands make.
 */
import type { DeploymentInfo } from '../../../db/deployments.js';
import type { NodeInfo } from '../../../db/inventory.js';
import type { GroupInfo } from '../../../db/groups.js';
import type { NodePowerResult } from '../../../power/nodes.js';
import type { ImageInfo } from '../../../store/images.js';
import { TRANSPORTS } from '../../../../common/protocol.js';
import { POWER_ACTIONS, type PowerAction } from '../../../power/types.js';
import { ADMIN, call } from '../api.js';
import { clear, h } from '../dom.js';
import { cell, failure, main, nodeLink, say } from '../ui.js';

/**
 * KEY=VALUE lines (or KEY lines, for `keysOnly`) of a text box; the server checks the keys and
 * names every bad one. Blank lines are skipped.
 */
export function lines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

export function pairs(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines(text)) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new Error(`${what}: "${l}" is not KEY=VALUE`);
    out[l.slice(0, eq).trim()] = l.slice(eq + 1).trim();
  }
  return out;
}

type SortKey = 'name' | 'image' | 'state' | 'groups';

function latestByNode(deps: DeploymentInfo[]): Map<string, DeploymentInfo> {
  const m = new Map<string, DeploymentInfo>();
  for (const d of deps) if (!m.has(d.node) || m.get(d.node)!.id < d.id) m.set(d.node, d);
  return m;
}

export async function nodesPage(): Promise<void> {
  const [{ nodes }, { deployments }, { images }, { groups }] = await Promise.all([
    call<{ nodes: NodeInfo[] }>('GET', `${ADMIN}/nodes`),
    call<{ deployments: DeploymentInfo[] }>('GET', `${ADMIN}/deployments`),
    call<{ images: ImageInfo[] }>('GET', `${ADMIN}/images`),
    call<{ groups: GroupInfo[] }>('GET', `${ADMIN}/groups`),
  ]);
  const last = latestByNode(deployments);
  const stateOf = (n: NodeInfo) => last.get(n.name)?.status ?? 'never';
  const selected = new Set<string>();
  let sort: SortKey = 'name';
  let desc = false;
  const q = h('input', { type: 'search', id: 'search', placeholder: 'name, MAC or key=value', 'aria-label': 'search nodes' }) as HTMLInputElement;
  const opt = (v: string, t = v) => h('option', { value: v }, t);
  const fGroup = h('select', { id: 'f-group', 'aria-label': 'group' }, opt('', 'any group'), groups.map((g) => opt(g.name))) as HTMLSelectElement;
  const fImage = h('select', { id: 'f-image', 'aria-label': 'image' }, opt('', 'any image'), [...new Set(nodes.map((n) => n.image).filter(Boolean) as string[])].map((i) => opt(i))) as HTMLSelectElement;
  const fState = h('select', { id: 'f-state', 'aria-label': 'state' }, opt('', 'any state'), [...new Set(nodes.map(stateOf))].sort().map((s) => opt(s))) as HTMLSelectElement;
  const armImage = h('select', { id: 'arm-image', 'aria-label': 'image to install' }, opt('', "node's image"), images.map((i) => opt(`${i.name}@${i.version}`))) as HTMLSelectElement;
  const body = h('tbody', { id: 'nodes' });
  const count = h('span', { id: 'selected' });
  const all = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'select all shown' }) as HTMLInputElement;

  const shown = (): NodeInfo[] => {
    const text = q.value.trim().toLowerCase();
    const [k, v] = text.includes('=') ? text.split('=', 2) : [undefined, undefined];
    const members = fGroup.value ? new Set(groups.find((g) => g.name === fGroup.value)?.allNodes ?? []) : undefined;
    const list = nodes.filter(
      (n) =>
        (!text || (k !== undefined ? Object.entries(n.properties).some(([pk, pv]) => pk.toLowerCase() === k && pv.toLowerCase().includes(v!)) : n.name.toLowerCase().includes(text) || n.macs.some((m) => m.includes(text)))) &&
        (!members || members.has(n.name)) &&
        (!fImage.value || n.image === fImage.value) &&
        (!fState.value || stateOf(n) === fState.value),
    );
    const key = (n: NodeInfo) => (sort === 'name' ? n.name : sort === 'image' ? n.image ?? '' : sort === 'state' ? stateOf(n) : n.groups.join(','));
    list.sort((a, b) => key(a).localeCompare(key(b)) * (desc ? -1 : 1) || a.name.localeCompare(b.name));
    return list;
  };
  const draw = () => {
    const list = shown();
    clear(
      body,
      list.map((n) => {
        const box = h('input', { type: 'checkbox', 'aria-label': `select ${n.name}`, 'data-select': n.name, checked: selected.has(n.name), onchange: (e: Event) => ((e.target as HTMLInputElement).checked ? selected.add(n.name) : selected.delete(n.name), (count.textContent = `${selected.size} selected`)) });
        const d = last.get(n.name);
        return h('tr', { 'data-node': n.name }, h('td', {}, box), h('td', {}, h('a', { href: `#/node/${encodeURIComponent(n.name)}` }, n.name)), cell(n.macs.join(' ')), cell(n.image), cell(n.groups.join(', ')), cell(stateOf(n), `state ${stateOf(n)}`), cell(d?.error?.code ?? ''));
      }),
    );
    all.checked = list.length > 0 && list.every((n) => selected.has(n.name));
    count.textContent = `${selected.size} selected`;
  };
  all.addEventListener('change', () => {
    for (const n of shown()) all.checked ? selected.add(n.name) : selected.delete(n.name);
    draw();
  });
  for (const el of [q, fGroup, fImage, fState]) el.addEventListener('input', draw);
  const th = (k: SortKey, text: string) =>
    h('th', { scope: 'col' }, h('button', { class: 'sort', 'data-sort': k, onclick: () => ((desc = sort === k ? !desc : false), (sort = k), draw()) }, text));

  // What an action reports beyond the flash line (the power results), shown on the redrawn page.
  const report = h('div', { id: 'report' });
  const act = async (what: string, f: (names: string[]) => Promise<string | [string, HTMLElement]>) => {
    const names = [...selected];
    if (!names.length) return say(`select nodes to ${what}`, true);
    try {
      const done = await f(names);
      // Redrawn with the new records first, then told: what the message speaks of is on the page.
      await nodesPage();
      const [text, extra] = Array.isArray(done) ? done : [done, undefined];
      if (extra) document.getElementById('report')?.replaceChildren(extra);
      say(text);
    } catch (e) {
      failure(e);
    }
  };

  // Install options: the image, the layout (the node's, another stored one, or pasted XML), inputs
  // for this deployment only, and the transport.
  const layouts = new Map<string, string>();
  for (const n of nodes) if (n.layout) layouts.set(n.layout.digest, `${n.layout.digest.slice(7, 19)}${n.layout.source ? ` (${n.layout.source})` : ''}`);
  const armLayout = h('select', { id: 'arm-layout', 'aria-label': 'layout to install' }, opt('', "node's layout"), [...layouts].map(([d, t]) => opt(d, t))) as HTMLSelectElement;
  const armLayoutXml = h('textarea', { id: 'arm-layout-xml', rows: 3, placeholder: '<config>...</config>', 'aria-label': 'layout XML (instead of a stored layout)' }) as HTMLTextAreaElement;
  const armInputs = h('textarea', { id: 'arm-inputs', rows: 3, placeholder: 'hostname=web1', 'aria-label': 'inputs for this install, KEY=VALUE per line' }) as HTMLTextAreaElement;
  const armTransport = h('select', { id: 'arm-transport', 'aria-label': 'transport' }, opt('', "node's transport"), TRANSPORTS.map((t) => opt(t))) as HTMLSelectElement;
  const label = (text: string, el: HTMLElement) => h('label', { class: 'field' }, h('span', {}, text), el);
  const armOptions = h(
    'details',
    { id: 'arm-options', class: 'panel' },
    h('summary', {}, 'Install options'),
    h('div', { class: 'fields' }, label('image', armImage), label('layout', armLayout), label('or layout XML', armLayoutXml), label('inputs (KEY=VALUE lines)', armInputs), label('transport', armTransport)),
  );
  const armBody = (names: string[]) => {
    const inputs = pairs(armInputs.value, 'inputs');
    const layout = armLayoutXml.value.trim() || armLayout.value;
    return { select: names, ...(armImage.value ? { image: armImage.value } : {}), ...(layout ? { layout } : {}), ...(Object.keys(inputs).length ? { inputs } : {}), ...(armTransport.value ? { transport: armTransport.value } : {}) };
  };

  // The node editor: the same change on every selected node, in one request (one transaction).
  const ta = (id: string, label: string, placeholder: string) => h('textarea', { id, rows: 2, placeholder, 'aria-label': label }) as HTMLTextAreaElement;
  const setProps = ta('edit-props', 'properties to set, KEY=VALUE per line', 'role=web');
  const unsetProps = ta('edit-unprops', 'properties to remove, one KEY per line', 'role');
  const setInputs = ta('edit-inputs', 'inputs to set, KEY=VALUE per line', 'network.mode=dhcp');
  const unsetInputs = ta('edit-uninputs', 'inputs to remove, one KEY per line', 'network.mode');
  const editor = h(
    'details',
    { id: 'editor', class: 'panel' },
    h('summary', {}, 'Edit selected nodes'),
    h('div', { class: 'fields' }, label('set properties', setProps), label('remove properties', unsetProps), label('set inputs', setInputs), label('remove inputs', unsetInputs)),
    h('button', { id: 'edit-apply', onclick: () => act('edit', async (names) => {
      const body = { select: names, properties: pairs(setProps.value, 'properties'), unsetProperties: lines(unsetProps.value), inputs: pairs(setInputs.value, 'inputs'), unsetInputs: lines(unsetInputs.value) };
      const r = await call<{ nodes: NodeInfo[] }>('PATCH', `${ADMIN}/nodes`, body);
      return `changed ${r.nodes.length} nodes: ${r.nodes.map((n) => n.name).join(', ')}`;
    }) }, 'Apply to selected'),
  );

  const powerTable = (results: NodePowerResult[]) =>
    h(
      'table',
      { id: 'power-results' },
      h('caption', {}, `power ${results[0]?.action ?? ''}`),
      h('thead', {}, h('tr', {}, ['node', 'driver', 'state', 'result'].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, results.map((r) => h('tr', { 'data-node': r.node, 'data-ok': String(r.ok) }, h('td', {}, nodeLink(r.node)), cell(r.driver ?? '-'), cell(r.state ?? ''), r.ok ? cell(r.message ?? 'ok') : h('td', { class: 'bad' }, h('code', { class: 'code' }, r.error?.code ?? ''), ' ', r.error?.message ?? '', r.error?.hint ? h('div', { class: 'fix' }, 'Fix: ', r.error.hint) : '')))),
    );
  const powerButton = (action: PowerAction) =>
    h('button', { id: `power-${action}`, 'data-power': action, onclick: () => act(`power ${action}`, async (names) => {
      const { results } = await call<{ results: NodePowerResult[] }>('POST', `${ADMIN}/power`, { action, select: names });
      const bad = results.filter((r) => !r.ok).length;
      return [`power ${action}: ${results.length - bad} ok, ${bad} failed`, powerTable(results)];
    }) }, action);

  const actions = h(
    'div',
    { class: 'actions', role: 'toolbar', 'aria-label': 'actions on the selection' },
    count,
    h('button', { id: 'arm', onclick: () => act('arm', async (names) => {
      const r = await call<{ deployments: DeploymentInfo[] }>('POST', `${ADMIN}/deploy`, armBody(names));
      return `armed ${r.deployments.map((d) => `${d.node} (#${d.id})`).join(', ')}`;
    }) }, 'Arm install'),
    h('button', { id: 'cancel', onclick: () => act('cancel', async (names) => {
      const r = await call<{ cancelled: DeploymentInfo[]; idle: string[] }>('POST', `${ADMIN}/cancel`, { select: names });
      return `cancelled ${r.cancelled.length}; nothing to cancel on ${r.idle.length}`;
    }) }, 'Cancel'),
    h('button', { id: 'redeploy', onclick: () => act('redeploy', async (names) => {
      const out: string[] = [];
      for (const n of names) {
        const d = last.get(n);
        if (!d) throw new Error(`${n} has no deployment record to deploy again`);
        const r = await call<{ deployment: DeploymentInfo }>('POST', `${ADMIN}/deployments/${d.id}/redeploy`);
        out.push(`${n} (#${r.deployment.id} from #${d.id})`);
      }
      return `redeployed ${out.join(', ')}`;
    }) }, 'Redeploy last record'),
    h('span', { class: 'group', role: 'group', 'aria-label': 'power' }, h('span', { class: 'muted' }, 'Power:'), POWER_ACTIONS.map(powerButton)),
  );
  clear(
    main,
    h('h1', {}, 'Nodes'),
    h('div', { class: 'filters' }, q, fGroup, fImage, fState),
    actions,
    armOptions,
    editor,
    report,
    h('div', { class: 'scroll' }, h('table', { id: 'node-table' }, h('thead', {}, h('tr', {}, h('th', {}, all), th('name', 'name'), h('th', {}, 'MACs'), th('image', 'image'), th('groups', 'groups'), th('state', 'last state'), h('th', {}, 'error'))), body)),
  );
  draw();
}

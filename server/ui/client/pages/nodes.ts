/** Nodes: search, filters, sorting, multi-select, and actions on the selection. */
import type { DeploymentInfo } from '../../../db/deployments.js';
import type { GroupInfo, NodeInfo } from '../../../db/inventory.js';
import type { ImageInfo } from '../../../store/images.js';
import { ADMIN, call } from '../api.js';
import { clear, h } from '../dom.js';
import { cell, failure, main, say } from '../ui.js';

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

  const act = async (what: string, f: (names: string[]) => Promise<string>) => {
    const names = [...selected];
    if (!names.length) return say(`select nodes to ${what}`, true);
    try {
      const done = await f(names);
      // Redrawn with the new records first, then told: what the message speaks of is on the page.
      await nodesPage();
      say(done);
    } catch (e) {
      failure(e);
    }
  };
  const actions = h(
    'div',
    { class: 'actions', role: 'toolbar', 'aria-label': 'actions on the selection' },
    count,
    armImage,
    h('button', { id: 'arm', onclick: () => act('arm', async (names) => {
      const r = await call<{ deployments: DeploymentInfo[] }>('POST', `${ADMIN}/deploy`, { select: names, ...(armImage.value ? { image: armImage.value } : {}) });
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
  );
  clear(
    main,
    h('h1', {}, 'Nodes'),
    h('div', { class: 'filters' }, q, fGroup, fImage, fState),
    actions,
    h('div', { class: 'scroll' }, h('table', { id: 'node-table' }, h('thead', {}, h('tr', {}, h('th', {}, all), th('name', 'name'), h('th', {}, 'MACs'), th('image', 'image'), th('groups', 'groups'), th('state', 'last state'), h('th', {}, 'error'))), body)),
  );
  draw();
}

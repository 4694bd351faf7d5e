/**
 * The web console: plain TypeScript and the DOM, bundled by esbuild (scripts/bundle.mjs). Pages
 * by the URL's hash (#/, #/nodes, #/node/NAME, #/images, #/groups). The dashboard is the CLI
 * monitor's own state machine (server/monitor-state.ts) fed by the same event stream
 * (GET /api/v1/admin/events); every other page reads the admin API.
 */
import './app.css';
import type { DeploymentInfo, StoredEvent } from '../../db/deployments.js';
import type { GroupInfo, NodeInfo } from '../../db/inventory.js';
import type { ImageInfo } from '../../store/images.js';
import { formatEta, MonitorState, type MonitorRow } from '../../monitor-state.js';
import { ADMIN, call, CallError, setSession, whenLoggedOut } from './api.js';
import { age, bytes, clear, h } from './dom.js';
import { parseErrorCatalogue } from '../../../common/error-catalogue.js';
// docs/errors.md, put in by the bundler (scripts/bundle.mjs alias): docs are not code to import.
import errorsMd from 'ferry-errors-md';

/** docs/errors.md, bundled: the fix line of each error code. */
const CATALOGUE = parseErrorCatalogue(errorsMd);

function fixLine(code: string | undefined): HTMLElement | '' {
  const fix = code ? CATALOGUE[code]?.fix : undefined;
  return fix ? h('div', { class: 'fix' }, 'Fix: ', fix) : '';
}

const app = document.getElementById('app')!;
const main = h('main', { id: 'main', tabindex: '-1' });
const flash = h('div', { id: 'flash', role: 'status', 'aria-live': 'polite' });

function say(text: string, bad = false): void {
  flash.className = bad ? 'bad' : 'ok';
  flash.textContent = text;
}

function failure(e: unknown): void {
  if (e instanceof CallError) say(`${e.error.code}: ${e.error.message}${e.error.hint ? ' - ' + e.error.hint : ''}`, true);
  else say(String(e), true);
}

// ---- live state: the monitor's rows plus each deployment's record (for its error) ----
const monitor = new MonitorState();
const infos = new Map<number, DeploymentInfo>();
let stream: EventSource | undefined;
let eventsSeen = 0;
let redraw: (() => void) | undefined;
let pending = false;

function schedule(): void {
  if (pending || !redraw) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    redraw?.();
  });
}

function connect(): void {
  stream?.close();
  stream = new EventSource(`${ADMIN}/events`);
  const on = (type: string) =>
    stream!.addEventListener(type, (m) => {
      const data = JSON.parse((m as MessageEvent).data);
      eventsSeen++;
      monitor.apply(type, data);
      if (type === 'snapshot') for (const d of data.deployments as { info: DeploymentInfo }[]) infos.set(d.info.id, d.info);
      if (type === 'deployment') infos.set(data.id, data);
      schedule();
    });
  ['snapshot', 'deployment', 'progress'].forEach(on);
  stream.onerror = () => {
    // The browser reconnects by itself (retry: 2000); a 401 closes the stream for good.
    if (stream?.readyState === EventSource.CLOSED) checkSession();
  };
}

// ---- login ----
async function checkSession(): Promise<void> {
  try {
    const s = await call<{ session: boolean; csrf: string; csrfHeader: string; why?: string }>('GET', '/ui/session');
    if (!s.session) return login(s.why === 'expired' ? 'Your session expired; log in again.' : '');
    setSession(s);
    start();
  } catch (e) {
    login(e instanceof CallError ? `${e.error.code}: ${e.error.message}` : String(e));
  }
}

function login(note = ''): void {
  stream?.close();
  redraw = undefined;
  const token = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', required: true, 'aria-label': 'admin token' }) as HTMLInputElement;
  const err = h('p', { id: 'login-error', class: 'bad', role: 'alert' }, note);
  const form = h(
    'form',
    {
      id: 'login',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          setSession(await call('POST', '/ui/login', { token: token.value }));
          token.value = '';
          start();
        } catch (x) {
          err.textContent = x instanceof CallError ? `${x.error.code}: ${x.error.message}` : String(x);
        }
      },
    },
    h('h1', {}, 'Ferry'),
    h('label', { for: 'token' }, 'Admin token (DATA/admin.token)'),
    token,
    h('button', { type: 'submit' }, 'Log in'),
    err,
  );
  clear(app, form);
  token.focus();
}

async function logout(): Promise<void> {
  try {
    await call('POST', '/ui/logout');
  } finally {
    login();
  }
}

// ---- frame and routing ----
const PAGES: [string, string][] = [['#/', 'Dashboard'], ['#/nodes', 'Nodes'], ['#/images', 'Images'], ['#/groups', 'Groups']];

function start(): void {
  const nav = h('nav', { 'aria-label': 'pages' }, h('strong', {}, 'Ferry'), ...PAGES.map(([href, text]) => h('a', { href }, text)), h('button', { id: 'logout', onclick: () => void logout() }, 'Log out'));
  clear(app, h('header', {}, nav), flash, main);
  connect();
  route();
}

function route(): void {
  if (!main.isConnected) return;
  const hash = location.hash || '#/';
  for (const a of app.querySelectorAll('nav a')) a.setAttribute('aria-current', String(a.getAttribute('href') === hash || (hash.startsWith('#/node/') && a.getAttribute('href') === '#/nodes')));
  redraw = undefined;
  say('');
  const page = hash.startsWith('#/node/') ? nodePage(decodeURIComponent(hash.slice(7))) : hash === '#/nodes' ? nodesPage() : hash === '#/images' ? imagesPage() : hash === '#/groups' ? groupsPage() : dashboard();
  page.catch(failure);
}

window.addEventListener('hashchange', route);
whenLoggedOut(() => login('Your session ended; log in again.'));

// ---- dashboard ----
const ACTIVE = new Set(['armed', 'running', 'lost', 'error']);

function cell(text: string | number | undefined, cls?: string): HTMLElement {
  return h('td', cls ? { class: cls } : {}, text ?? '');
}

function progressRow(r: MonitorRow, now: number): HTMLElement {
  return h(
    'tr',
    { 'data-node': r.node, 'data-state': r.state, 'data-stage': r.stage },
    h('td', {}, h('a', { href: `#/node/${encodeURIComponent(r.node)}` }, r.node)),
    cell(r.image),
    cell(r.transport),
    cell(r.stage),
    h('td', {}, r.percent === undefined ? '' : h('progress', { max: 100, value: r.percent.toFixed(0), 'aria-label': `${r.percent.toFixed(0)}%` }), r.percent === undefined ? '' : ` ${r.percent.toFixed(0)}%`),
    cell(r.mbps === undefined ? '' : `${r.mbps.toFixed(1)} MB/s`),
    cell(formatEta(r.etaSeconds)),
    cell(r.state, `state ${r.state}`),
    cell(age(r.updatedAt, now)),
  );
}

async function dashboard(): Promise<void> {
  const counts = h('ul', { id: 'counts', class: 'counts' });
  const body = h('tbody', { id: 'progress' });
  const fails = h('ul', { id: 'failures' });
  const rate = h('p', { class: 'muted', id: 'rate' });
  const HEAD = ['node', 'image', 'via', 'stage', 'progress', 'rate', 'ETA', 'state', 'heartbeat'];
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
  let last = { t: performance.now(), n: eventsSeen };
  redraw = () => {
    const now = Date.now();
    const rows = monitor.rows();
    const by: Record<string, number> = {};
    for (const r of rows) by[r.state] = (by[r.state] ?? 0) + 1;
    clear(counts, Object.keys(by).sort().map((s) => h('li', { class: `state ${s}`, 'data-count': s }, `${s}: ${by[s]}`)));
    const live = rows.filter((r) => ACTIVE.has(r.state) || (r.state === 'success' && infos.get(r.id)?.endedAt && now - Date.parse(infos.get(r.id)!.endedAt!) < 600_000));
    clear(body, live.length ? live.map((r) => progressRow(r, now)) : h('tr', {}, h('td', { colspan: HEAD.length, class: 'muted' }, 'No deployment in progress.')));
    const failed = [...infos.values()].filter((d) => d.status === 'failed' || d.error).sort((a, b) => (b.endedAt ?? '').localeCompare(a.endedAt ?? '')).slice(0, 10);
    clear(
      fails,
      failed.length
        ? failed.map((d) => h('li', { 'data-node': d.node }, h('a', { href: `#/node/${encodeURIComponent(d.node)}` }, d.node), ' ', h('code', { class: 'code' }, d.error?.code ?? d.status), ' ', d.error?.message ?? '', fixLine(d.error?.code)))
        : h('li', { class: 'muted' }, 'No failures in the last hour.'),
    );
    const t = performance.now();
    if (t - last.t > 2000) last = { t, n: eventsSeen };
    rate.textContent = `${eventsSeen} events received`;
  };
  redraw();
  // Heartbeat ages move with the clock, not only with events.
  const tick = setInterval(() => (redraw ? schedule() : clearInterval(tick)), 1000);
}

// ---- nodes ----
type SortKey = 'name' | 'image' | 'state' | 'groups';

function latestByNode(deps: DeploymentInfo[]): Map<string, DeploymentInfo> {
  const m = new Map<string, DeploymentInfo>();
  for (const d of deps) if (!m.has(d.node) || m.get(d.node)!.id < d.id) m.set(d.node, d);
  return m;
}

async function nodesPage(): Promise<void> {
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

// ---- one node ----
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

async function nodePage(name: string): Promise<void> {
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

// ---- images ----
async function imagesPage(): Promise<void> {
  const [{ images }, { nodes }] = await Promise.all([call<{ images: ImageInfo[] }>('GET', `${ADMIN}/images`), call<{ nodes: NodeInfo[] }>('GET', `${ADMIN}/nodes`)]);
  clear(
    main,
    h('h1', {}, 'Images'),
    images.length
      ? images.map((i) => {
          const ref = `${i.name}@${i.version}`;
          const users = nodes.filter((n) => n.image === ref || n.image === i.name).map((n) => n.name);
          return h(
            'section',
            { class: 'image', 'data-image': ref },
            h('h2', {}, ref, i.master ? h('span', { class: 'muted' }, ` clone of ${i.master}`) : ''),
            h('p', {}, `${bytes(i.size)} stored, ${bytes(i.uncompressedSize)} unpacked; digest `, h('code', {}, i.digest.slice(0, 19))),
            h('ol', { class: 'layers' }, i.layers.map((l) => h('li', {}, h('code', {}, l.digest.slice(0, 19)), ` ${bytes(l.size)}`, l.uncompressedSize ? ` (${bytes(l.uncompressedSize)} unpacked)` : ''))),
            h('p', {}, 'Nodes: ', users.length ? users.map((n, k) => [k ? ', ' : '', h('a', { href: `#/node/${encodeURIComponent(n)}` }, n)]).flat() : '-'),
          );
        })
      : h('p', { class: 'muted' }, 'No images (ferry image import).'),
  );
}

// ---- groups ----
async function groupsPage(): Promise<void> {
  const { groups } = await call<{ groups: GroupInfo[] }>('GET', `${ADMIN}/groups`);
  const byName = new Map(groups.map((g) => [g.name, g]));
  const included = new Set(groups.flatMap((g) => g.includes));
  const branch = (g: GroupInfo, seen: Set<string>): HTMLElement =>
    h(
      'li',
      { role: 'treeitem', 'data-group': g.name },
      h('details', { open: true }, h('summary', {}, g.name, h('span', { class: 'muted' }, ` ${g.allNodes.length} nodes${g.description ? ' - ' + g.description : ''}`)),
        h('ul', { role: 'group' }, g.includes.filter((c) => !seen.has(c) && byName.has(c)).map((c) => branch(byName.get(c)!, new Set([...seen, c]))), g.nodes.map((n) => h('li', { role: 'treeitem' }, h('a', { href: `#/node/${encodeURIComponent(n)}` }, n))))),
    );
  const roots = groups.filter((g) => !included.has(g.name));
  clear(main, h('h1', {}, 'Groups'), groups.length ? h('ul', { role: 'tree', class: 'tree', id: 'group-tree' }, roots.map((g) => branch(g, new Set([g.name])))) : h('p', { class: 'muted' }, 'No groups (ferry group add).'));
}

void checkSession();

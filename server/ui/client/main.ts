/**
 * The web console: plain TypeScript and the DOM, bundled by esbuild (scripts/bundle.mjs). Pages
 * by the URL's hash (#/, #/nodes, #/node/NAME, #/images, #/groups), one module each in pages/.
 * The dashboard is the CLI monitor's own state machine (server/monitor-state.ts) fed by the same
 * event stream (GET /api/v1/admin/events, live.ts); every other page reads the admin API.
 * This file is the login, the frame and the routing.
 */
import './app.css';
import { call, CallError, setSession, whenLoggedOut } from './api.js';
import { clear, h } from './dom.js';
import { connect, disconnect, onRedraw } from './live.js';
import { dashboard } from './pages/dashboard.js';
import { groupsPage } from './pages/groups.js';
import { imagesPage } from './pages/images.js';
import { nodePage } from './pages/node.js';
import { nodesPage } from './pages/nodes.js';
import { failure, flash, main, say } from './ui.js';

const app = document.getElementById('app')!;

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
  disconnect();
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
  connect(() => void checkSession());
  route();
}

function route(): void {
  if (!main.isConnected) return;
  const hash = location.hash || '#/';
  for (const a of app.querySelectorAll('nav a')) a.setAttribute('aria-current', String(a.getAttribute('href') === hash || (hash.startsWith('#/node/') && a.getAttribute('href') === '#/nodes')));
  onRedraw(undefined);
  say('');
  const page = hash.startsWith('#/node/') ? nodePage(decodeURIComponent(hash.slice(7))) : hash === '#/nodes' ? nodesPage() : hash === '#/images' ? imagesPage() : hash === '#/groups' ? groupsPage() : dashboard();
  page.catch(failure);
}

window.addEventListener('hashchange', route);
whenLoggedOut(() => login('Your session ended; log in again.'));

void checkSession();

/**
 * The web console in a real browser: Debian's Chromium (/usr/bin/chromium, no download) driven by
 * puppeteer-core, against a real `ferry serve` on loopback with the loopback installer
 * (installer/install.ts runInstall into a directory) doing real installs. Screenshots of every
 * page at 1280x800 and at a phone's width go to build/screenshots/.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHASES } from '../../common/progress.js';
import { runInstall } from '../../installer/install.js';
import { addNode, getNode, getNodeRow } from '../../server/db/inventory.js';
import { addToGroup } from '../../server/db/groups.js';
import { deploymentInfo, getDeploymentRow } from '../../server/db/deployments.js';
import { deploymentEvents } from '../../server/db/deployment-events.js';
import { recordInventory } from '../../server/db/hardware.js';
import { cloneImage } from '../../server/store/images.js';
import { FerryServer, DIR_LAYOUT } from './helpers/ferry-server.js';
import { smallTree } from './server/helpers.js';
import { slowProxy } from './helpers/net.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join('build', 'screenshots');
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const FAST = { baseMs: 20, maxMs: 200, giveUpAfterMs: 30_000 };
const WAIT = { timeout: 20_000 };

let server: FerryServer;
let browser: Browser;
let page: Page;
let work: string;
/** The image's first layer, corrupted for the failing install. */
let webLayer: string;
/**
 * The nodes' link to the server, at 1 MB/s: the installer reports its events once a second, so
 * its 2 MB layer keeps it in the layers stage long enough for the stages to be seen one by one.
 */
let slow: { url: string; close(): Promise<void> };
/** JavaScript errors and console errors of the console's pages: there must be none. */
const jsErrors: string[] = [];

/** The loopback installer into a directory; `via` is the server URL it uses. */
async function install(deploymentId: number, name: string, via = slow.url) {
  const token = getDeploymentRow(server.data, deploymentId).token;
  const root = path.join(work, name);
  fs.mkdirSync(root, { recursive: true });
  return runInstall({ server: via, token, root, yes: true, initramfs: false, backoff: FAST, console: () => {} });
}

async function go(hash: string, ready: string): Promise<void> {
  await page.evaluate((h) => (location.hash = h), hash);
  await page.waitForSelector(ready, WAIT);
}

async function flash(re: RegExp): Promise<string> {
  try {
    const h = await page.waitForFunction((src) => {
      const t = document.getElementById('flash')?.textContent ?? '';
      return new RegExp(src).test(t) ? t : false;
    }, WAIT, re.source);
    return (await h.jsonValue()) as string;
  } catch (e) {
    // Say what the page said instead.
    throw new Error(`the flash line never matched ${re}: it says "${await page.$eval('#flash', (x) => x.textContent).catch(() => '?')}" (${(e as Error).message})`);
  }
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-ui-'));
  fs.mkdirSync(SHOTS, { recursive: true });
  server = await FerryServer.start();
  const src = smallTree(path.join(work, 'src'));
  fs.writeFileSync(path.join(src, 'random.bin'), randomBytes(2 << 20));
  webLayer = (await server.image('web', src)).layers[0].digest;
  // Nodes reach the server (config, layers, events) through the slow link only.
  slow = await slowProxy(server.url, 1 << 20);
  await server.restart({ publicUrl: slow.url });
  addNode(server.data, 'n1', { macs: ['52:54:00:aa:01:01'], image: 'web', layoutXml: DIR_LAYOUT, properties: { rack: 'r1' }, power: { driver: 'manual', address: 'row 3 slot 1' } }, 'test');
  addNode(server.data, 'n2', { macs: ['52:54:00:aa:01:02'], image: 'web', layoutXml: DIR_LAYOUT, properties: { rack: 'r2' } }, 'test');
  addToGroup(server.data, 'rack1', { nodes: ['n1', 'n2'], description: 'first rack' }, 'test');
  addToGroup(server.data, 'site', { includes: ['rack1'] }, 'test');
  // What the installer's inventory report stores (its hw.* properties), for the node page.
  recordInventory(server.data, getNodeRow(server.data, 'n1').id, {
    system: { vendor: 'QEMU', product: 'Standard PC (i440FX)', serial: 'SN-0001' },
    firmware: { mode: 'bios' },
    cpu: { model: 'Virtual CPU', sockets: 1, cores: 2, threads: 2 },
    memoryBytes: 2 * 2 ** 30,
    disks: [{ path: '/dev/vda', sizeBytes: 8 * 2 ** 30, model: 'virtio disk', rotational: false }],
    nics: [{ name: 'eth0', mac: '52:54:00:aa:01:01', link: 'up', speedMbps: 1000 }],
  }, 'test');
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage();
  await page.setViewport(SIZES.desktop);
  page.on('pageerror', (e) => jsErrors.push(`pageerror: ${(e as Error).message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') jsErrors.push(`console: ${m.text()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await slow?.close();
  await server?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('the web console in Chromium', () => {
  it('logs in with the admin token and gets an HttpOnly, SameSite=Strict session cookie', async () => {
    await page.goto(`${server.url}/ui/`);
    await page.waitForSelector('#token', WAIT);
    await page.type('#token', server.srv.adminToken);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#live', WAIT);
    const [cookie] = await browser.cookies();
    expect(cookie).toMatchObject({ name: 'ferry_session', httpOnly: true, sameSite: 'Strict', secure: false, path: '/' });
    expect(await page.evaluate(() => document.cookie)).toBe('');
  });

  it('arms an install from the Nodes page and shows the row go through the stages to success', async () => {
    await go('#/nodes', 'tr[data-node="n1"]');
    await page.click('[data-select="n1"]');
    await page.click('#arm');
    const id = Number(/n1 \(#(\d+)\)/.exec(await flash(/armed n1 \(#\d+\)/))![1]);
    expect(getDeploymentRow(server.data, id)).toMatchObject({ node_name: 'n1', status: 'armed', created_by: 'api:admin' });

    await go('#/', '#live');
    await page.waitForSelector('tr[data-node="n1"][data-state="armed"]', WAIT);
    // Every stage the row shows, in order, as the page draws it.
    await page.evaluate(() => {
      const seen: string[] = ((window as any).__stages = []);
      const look = () => {
        const r = document.querySelector('tr[data-node="n1"]');
        const s = r?.getAttribute('data-stage');
        if (s && s !== '-' && seen[seen.length - 1] !== s) seen.push(s);
      };
      new MutationObserver(look).observe(document.getElementById('progress')!, { childList: true, subtree: true });
    });
    const outcome = await install(id, 'n1', slow.url);
    expect(outcome.result).toEqual({ status: 'success' });
    await page.waitForSelector('tr[data-node="n1"][data-state="success"]', WAIT);
    const stages = (await page.evaluate(() => (window as any).__stages)) as string[];
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const order = stages.map((s) => (PHASES as readonly string[]).indexOf(s));
    expect(order.every((x) => x >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(await page.$eval('[data-count="success"]', (e) => e.textContent)).toBe('success: 1');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-1280.png') });
  });

  it('shows a failing install with its error code and the fix line, on the dashboard and the node page', async () => {
    await go('#/nodes', 'tr[data-node="n2"]');
    await page.click('[data-select="n2"]');
    await page.click('#arm');
    const id = Number(/n2 \(#(\d+)\)/.exec(await flash(/armed n2/))![1]);
    server.corruptBlob(webLayer);
    await go('#/', '#live');
    const outcome = await install(id, 'n2');
    expect(outcome.result).toMatchObject({ status: 'failed', error: { code: 'FERRY_E_LAYER_DIGEST' } });
    await page.waitForSelector('#failures li[data-node="n2"] .code', WAIT);
    const text = await page.$eval('#failures li[data-node="n2"]', (e) => e.textContent ?? '');
    expect(text).toContain('FERRY_E_LAYER_DIGEST');
    expect(text).toMatch(/Fix: \S/);
    // The live table's SEEN and ERROR columns, as the CLI monitor has them.
    expect(await page.$$eval('#live thead th', (ths) => ths.map((t) => t.textContent))).toEqual(expect.arrayContaining(['seen', 'error']));
    await page.waitForSelector('#progress tr[data-node="n2"][data-state="failed"] td[data-col="error"].code', WAIT);
    expect(await page.$eval('#progress tr[data-node="n2"] td[data-col="error"]', (e) => e.textContent)).toMatch(/^FERRY_E_LAYER_DIGEST: \S/);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-failure-1280.png') });

    await go('#/node/n2', `details.deployment[data-id="${id}"] .timeline tbody tr`);
    expect(await page.$eval(`details.deployment[data-id="${id}"] .error`, (e) => e.textContent)).toContain('FERRY_E_LAYER_DIGEST');
    const stages = await page.$$eval(`details.deployment[data-id="${id}"] .timeline tbody tr td:first-child`, (tds) => tds.map((t) => t.textContent));
    expect(stages).toContain('layers');
    await page.screenshot({ path: path.join(SHOTS, 'node-1280.png'), fullPage: true });
  });

  it('filters, sorts and selects on the Nodes page, and redeploys and cancels the selection', async () => {
    await go('#/nodes', 'tr[data-node="n2"]');
    await page.type('#search', 'rack=r2');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tr').length === 1, WAIT);
    expect(await page.$$eval('#nodes tr', (r) => r.map((x) => x.getAttribute('data-node')))).toEqual(['n2']);
    await page.click('#search', { count: 3 });
    await page.keyboard.press('Backspace');
    await page.select('#f-state', 'failed');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tr').length === 1, WAIT);
    await page.select('#f-state', '');
    await page.click('[data-sort="name"]'); // already by name: now descending
    await page.waitForFunction(() => document.querySelector('#nodes tr')?.getAttribute('data-node') === 'n2', WAIT);
    await page.click('#select-all');
    expect(await page.$eval('#selected', (e) => e.textContent)).toBe('2 selected');
    await page.click('#select-all');
    await page.click('[data-select="n2"]');
    await page.click('#redeploy');
    await flash(/redeployed n2 \(#\d+ from #\d+\)/);
    const armed = server.data.db.prepare("SELECT COUNT(*) AS n FROM deployments WHERE node_name = 'n2' AND status = 'armed'").get() as { n: number };
    expect(armed.n).toBe(1);
    await page.click('[data-select="n2"]');
    await page.click('#cancel');
    await flash(/cancelled 1;/);
    const after = server.data.db.prepare("SELECT COUNT(*) AS n FROM deployments WHERE node_name = 'n2' AND status = 'armed'").get() as { n: number };
    expect(after.n).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, 'nodes-1280.png') });
  });

  it('refuses a request without the session, and a state-changing one without the CSRF token', async () => {
    // In the logged-in browser (a second tab, whose refused requests Chromium logs as errors):
    // the cookie goes along, the CSRF header does not.
    const probe = await browser.newPage();
    await probe.goto(`${server.url}/ui/`);
    await probe.waitForSelector('#live', WAIT);
    const noCsrf = await probe.evaluate(async () => {
      const r = await fetch('/api/v1/admin/deploy', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ select: ['n1'] }) });
      return { status: r.status, body: await r.json() };
    });
    expect(noCsrf).toMatchObject({ status: 403, body: { error: { code: 'FERRY_E_CSRF' } } });
    const wrongCsrf = await probe.evaluate(async () => {
      const r = await fetch('/api/v1/admin/cancel', { method: 'POST', headers: { 'content-type': 'application/json', 'x-ferry-csrf': 'not-it' }, body: JSON.stringify({ select: ['n1'] }) });
      return r.status;
    });
    expect(wrongCsrf).toBe(403);
    // Reading with the cookie alone is allowed (GET changes nothing).
    expect(await probe.evaluate(async () => (await fetch('/api/v1/admin/nodes')).status)).toBe(200);
    await probe.close();
    // Without the session: nothing.
    const r = await fetch(`${server.url}/api/v1/admin/nodes`);
    expect(r.status).toBe(401);
    expect(((await r.json()) as any).error.code).toBe('FERRY_E_TOKEN_MISSING');
    const forged = await fetch(`${server.url}/api/v1/admin/deploy`, { method: 'POST', headers: { cookie: 'ferry_session=forged', 'content-type': 'application/json', 'x-ferry-csrf': 'x' }, body: '{"select":["n1"]}' });
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as any).error.code).toBe('FERRY_E_SESSION_INVALID');
    const bad = await fetch(`${server.url}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"token":"wrong"}' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    // No deployment was armed by any of these.
    expect((server.data.db.prepare("SELECT COUNT(*) AS n FROM deployments WHERE node_name = 'n1'").get() as { n: number }).n).toBe(1);
  });

  it('powers the selection through the admin API and lists each node\'s outcome with its fix', async () => {
    await go('#/nodes', 'tr[data-node="n1"]');
    await page.click('#select-all');
    await page.click('#power-cycle');
    await flash(/power cycle: 1 ok, 1 failed/);
    expect(await page.$eval('#power-results tr[data-node="n1"]', (e) => [e.getAttribute('data-ok'), e.textContent])).toEqual(['true', expect.stringMatching(/manual.*power-cycle \(reset\) node n1 \(row 3 slot 1\) by hand/)]);
    const n2 = await page.$eval('#power-results tr[data-node="n2"]', (e) => [e.getAttribute('data-ok'), e.textContent]);
    expect(n2).toEqual(['false', expect.stringMatching(/FERRY_E_POWER_NOT_SET.*Fix: set one: ferry node set n2 --power/)]);
    const audit = server.data.db.prepare("SELECT actor, object FROM audit WHERE action = 'power.cycle' ORDER BY object").all();
    expect(audit).toEqual([{ actor: 'api:admin', object: 'n1' }, { actor: 'api:admin', object: 'n2' }]);
    // status with the keyboard: Space on the focused button.
    await page.click('[data-select="n1"]');
    await page.focus('#power-status');
    await page.keyboard.press('Space');
    await flash(/power status: 1 ok, 0 failed/);
    expect(await page.$eval('#power-results tr[data-node="n1"]', (e) => e.textContent)).toContain('unknown');
    await page.screenshot({ path: path.join(SHOTS, 'nodes-power-1280.png') });
  });

  it('sets and removes properties and inputs of all selected nodes at once, and a bad key changes none', async () => {
    await go('#/nodes', 'tr[data-node="n1"]');
    await page.click('#select-all');
    await page.click('#editor summary');
    await page.type('#edit-props', 'role=web\nzone=a');
    await page.type('#edit-inputs', 'network.mode=dhcp');
    await page.click('#edit-apply');
    await flash(/changed 2 nodes: n1, n2/);
    for (const n of ['n1', 'n2']) {
      expect(getNode(server.data, n).properties).toMatchObject({ role: 'web', zone: 'a' });
      expect(getNode(server.data, n).inputs).toEqual({ 'network.mode': 'dhcp' });
    }
    // The table shows the change: search by the new property.
    await page.type('#search', 'zone=a');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tr').length === 2, WAIT);
    await page.click('#search', { count: 3 });
    await page.keyboard.press('Backspace');
    await page.click('[data-select="n2"]');
    await page.click('#editor summary');
    await page.type('#edit-unprops', 'zone');
    await page.type('#edit-uninputs', 'network.mode');
    await page.click('#edit-apply');
    await flash(/changed 1 nodes: n2/);
    expect(getNode(server.data, 'n2').properties).not.toHaveProperty('zone');
    expect(getNode(server.data, 'n2').inputs).toEqual({});
    expect(getNode(server.data, 'n1').properties).toHaveProperty('zone', 'a');
    await page.click('#select-all');
    await page.click('#editor summary');
    await page.type('#edit-props', 'bad key=x');
    const before = jsErrors.length;
    await page.click('#edit-apply');
    expect(await flash(/FERRY_E_BAD_REQUEST/)).toContain('bad key');
    expect(getNode(server.data, 'n1').properties).not.toHaveProperty('bad key');
    // Chromium logs the refused request itself; that one error is expected, and only it.
    expect(jsErrors.splice(before)).toEqual(['console: Failed to load resource: the server responded with a status of 400 (Bad Request)']);
  });

  it('arms with the chosen image, layout, inputs and transport', async () => {
    // A fresh Nodes page: the refused edit left the last one's selection.
    await go('#/', '#live');
    await go('#/nodes', 'tr[data-node="n1"]');
    const layout = getNode(server.data, 'n1').layout!.digest;
    await page.click('#arm-options summary');
    await page.select('#arm-image', 'web@1');
    await page.select('#arm-layout', layout);
    await page.type('#arm-inputs', 'hostname=armed-from-ui\ncustom.note=x');
    await page.select('#arm-transport', 'http');
    await page.click('[data-select="n1"]');
    await page.click('#arm');
    const id = Number(/n1 \(#(\d+)\)/.exec(await flash(/armed n1 \(#\d+\)/))![1]);
    const d = deploymentInfo(getDeploymentRow(server.data, id));
    expect(d).toMatchObject({ node: 'n1', image: 'web@1', layoutDigest: layout, status: 'armed', transport: { kind: 'http' } });
    expect(d.inputs).toMatchObject({ hostname: 'armed-from-ui', 'custom.note': 'x' });
    // A line that is not KEY=VALUE is refused before anything is sent.
    await page.click('#arm-options summary');
    await page.type('#arm-inputs', 'nonsense');
    await page.click('[data-select="n1"]');
    await page.click('#arm');
    await flash(/inputs: "nonsense" is not KEY=VALUE/);
    await page.click('#cancel');
    await flash(/cancelled 1;/);
    expect(getDeploymentRow(server.data, id).status).toBe('cancelled');
  });

  it('shows a node\'s hardware, and per deployment its stages with durations, the log and every event', async () => {
    await go('#/node/n1', 'details.deployment[data-loaded]');
    expect(await page.$eval('#hardware tr[data-hw="system"]', (e) => e.textContent)).toMatch(/vendor=QEMU.*serial=SN-0001/);
    expect(await page.$eval('#hardware tr[data-hw="memory"]', (e) => e.textContent)).toContain('memory=2.0 GiB');
    expect(await page.$eval('#hardware tr[data-hw="disk 0"]', (e) => e.textContent)).toMatch(/path=\/dev\/vda.*size=8\.0 GiB/);
    // The deployment that succeeded (the newest, the cancelled one, is open first).
    const ok = (server.data.db.prepare("SELECT id FROM deployments WHERE node_name = 'n1' AND status = 'success'").get() as { id: number }).id;
    const sel = `details.deployment[data-id="${ok}"]`;
    if (!(await page.$eval(sel, (e) => (e as HTMLDetailsElement).open))) await page.click(`${sel} > summary`);
    await page.waitForSelector(`${sel} .timeline tbody tr`, WAIT);
    const rows = await page.$$eval(`${sel} .timeline tbody tr`, (trs) => trs.map((t) => [...t.querySelectorAll('td')].map((c) => c.textContent)));
    const layers = rows.find((r) => r[0] === 'layers')!;
    expect(layers[1]).toBe('end');
    expect(layers[3]).toMatch(/^\d+\.\d s$/);
    expect(Number(layers[3]!.split(' ')[0])).toBeGreaterThan(0.5); // 2 MB at 1 MB/s
    const log = await page.$eval(`${sel} pre.log`, (e) => e.textContent ?? '');
    expect(log).toMatch(/layers start[\s\S]*layers end[\s\S]*finish end/);
    const events = deploymentEvents(server.data, ok);
    await page.click(`${sel} details.events > summary`);
    expect(await page.$$eval(`${sel} details.events tbody tr`, (r) => r.length)).toBe(events.length);
    await page.screenshot({ path: path.join(SHOTS, 'node-log-1280.png'), fullPage: true });
  });

  it('shows which nodes run which image version', async () => {
    // A clone, which no install has put on a node yet.
    cloneImage(server.data, 'web@1', 'web-eu', { actor: 'test' });
    await go('#/', '#live');
    await go('#/images', 'section.image[data-image="web-eu@1"] .running');
    expect(await page.$eval('section.image[data-image="web-eu@1"]', (e) => e.textContent)).toMatch(/clone of web.*Running this version: -$/s);
    expect(await page.$eval('section.image[data-image="web@1"]', (e) => e.textContent)).toContain('Clones: web-eu@1');
    expect(await page.$$eval('section.image[data-image="web@1"] .running [data-running]', (e) => e.map((x) => x.getAttribute('data-running')))).toEqual(['n1']);
    expect(await page.$eval('section.image[data-image="web@1"] .running', (e) => e.textContent)).toMatch(/n1 \(#\d+ \d{4}-\d\d-\d\d\)/);
  });

  it('edits a node\'s power settings on its page; the password is write-only', async () => {
    const secret = 'ui-bmc-secret-41c7';
    await go('#/node/n2', '#power-form');
    await page.select('#power-driver', 'ipmi');
    await page.type('#power-address', '10.0.9.22:623');
    await page.type('#power-user', 'admin');
    await page.type('#power-password', secret);
    await page.click('#power-save');
    await flash(/power of n2: ipmi 10\.0\.9\.22:623, user admin, password stored/);
    expect(getNode(server.data, 'n2').power).toEqual({ driver: 'ipmi', address: '10.0.9.22:623', user: 'admin', password: true });
    expect(await page.$eval('#power-password', (e) => (e as HTMLInputElement).value)).toBe('');
    // Drawn again from the server: the password is never sent back to the page.
    await go('#/nodes', 'tr[data-node="n1"]');
    await go('#/node/n2', '#power-form');
    expect(await page.$eval('#power-password', (e) => [(e as HTMLInputElement).value, (e as HTMLInputElement).placeholder])).toEqual(['', '(stored: leave empty to keep)']);
    expect(await page.content()).not.toContain(secret);
    await page.click('#power-forget-password');
    await page.click('#power-save');
    await flash(/power of n2: ipmi 10\.0\.9\.22:623, user admin, no password/);
    // Driver none removes the settings, as ferry node set --no-power does (n2 is left as it was).
    await page.select('#power-driver', '');
    await page.click('#power-save');
    await flash(/power settings of n2 removed/);
    expect(getNode(server.data, 'n2').power).toBeUndefined();
    const audit = JSON.stringify(server.data.db.prepare("SELECT details FROM audit WHERE object = 'n2'").all());
    expect(audit).not.toContain(secret);
    expect(audit).toContain('(set)');
  });

  it('draws every page at 1280x800 and at a phone width with the keyboard alone, without JavaScript errors', async () => {
    const pages: [string, string, string][] = [['#/', '#live', 'dashboard'], ['#/nodes', '#node-table', 'nodes'], ['#/node/n1', 'details.deployment[data-loaded]', 'node'], ['#/images', 'section.image', 'images'], ['#/groups', '#group-tree li[data-group="rack1"]', 'groups']];
    for (const [size, vp] of Object.entries(SIZES)) {
      await page.setViewport(vp);
      for (const [hash, ready, name] of pages) {
        await go(hash, ready);
        await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: size === 'phone' });
        // Nothing wider than the screen: wide tables scroll inside their own box.
        expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at ${size}`).toBeLessThanOrEqual(vp.width);
      }
    }
    await page.setViewport(SIZES.desktop);
    // Keyboard: Tab reaches the navigation, Enter follows a link.
    await go('#/', '#live');
    await page.focus('nav a[href="#/groups"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#group-tree', WAIT);
    expect(await page.$eval('#group-tree > li', (e) => e.getAttribute('data-group'))).toBe('site');
    // Images page: the layer sizes and which nodes run it.
    await go('#/images', 'section.image');
    expect(await page.$eval('section.image[data-image="web@1"]', (e) => e.textContent)).toMatch(/web@1.*Nodes: n1, n2/s);
    // Logging out ends the session on the server: the old cookie is refused.
    const [cookie] = await browser.cookies();
    await page.click('#logout');
    await page.waitForSelector('#token', WAIT);
    const after = await fetch(`${server.url}/api/v1/admin/nodes`, { headers: { cookie: `ferry_session=${cookie.value}` } });
    expect(after.status).toBe(401);
    expect(jsErrors).toEqual([]);
  });
});

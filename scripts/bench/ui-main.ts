/**
 * Benchmark of the web console (scripts/bench/ui): a real server on loopback with 1,000 nodes and
 * 100 deployments in progress, the dashboard in Debian's Chromium (puppeteer-core).
 *  - first render: from navigation to the dashboard showing all 100 rows (goal <= 1 s);
 *  - events kept up: for each offered rate, 100 simulated installers post progress events through
 *    the installer API (POST /api/v1/install/events, the path real nodes use) for a few seconds;
 *    the rate is kept up when the page has drawn every event within 1 s of the last one sent
 *    (goal 200 events/s). Every loop is bounded in count and time; traffic stays on loopback.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import puppeteer from 'puppeteer-core';
import { INSTALL_ROUTES } from '../../common/protocol.js';
import { startServer } from '../../server/index.js';
import { DataDir } from '../../server/context.js';
import { addNode } from '../../server/db/inventory.js';
import { armDeployment } from '../../server/db/deployments.js';
import { importImage } from '../../server/store/image-import.js';

const NODES = 1000;
const ACTIVE = 100;
const SECONDS = 3;
const RATES = (process.argv[2] ?? '200,500,1000').split(',').map(Number);
const LAYOUT = `<config><disk dev="/dev/sda" label_type="gpt" unit_of_measurement="MB"><part num="1" size="*" p_type="primary" p_name="root" flags="-"/></disk><fsinfo line="10" real_dev="/dev/sda1" mp="/" fs="ext4" options="defaults" dump="1" pass="1"/></config>`;

const tmp = mkdtempSync(join(tmpdir(), 'ferry-bench-ui-'));
const dataDir = join(tmp, 'data');
const srv = await startServer({ dataDir, listen: '127.0.0.1:0' });
const data = new DataDir(dataDir);
const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  const tree = join(tmp, 'tree');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'hostname'), 'x\n');
  writeFileSync(join(tree, 'blob'), randomBytes(4096));
  await importImage(data, 'bench', { dir: tree, actor: 'bench' });
  const tokens: string[] = [];
  data.write(() => {
    for (let i = 0; i < NODES; i++) {
      const mac = `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      addNode(data, `node${String(i).padStart(4, '0')}`, { macs: [mac], image: 'bench', layoutXml: LAYOUT, properties: { rack: `r${i % 20}` } }, 'bench');
    }
    for (let i = 0; i < ACTIVE; i++) tokens.push(armDeployment(data, `node${String(i).padStart(4, '0')}`, { actor: 'bench' }).token);
  });
  const post = (token: string, events: object[]) =>
    fetch(srv.url + INSTALL_ROUTES.events, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ events }) }).then((r) => {
      if (!r.ok) throw new Error(`events: HTTP ${r.status}`);
    });
  // Every install starts, so the dashboard has 100 running rows.
  // (32 at a time: the server takes at most 64 connections from one client.)
  for (let i = 0; i < ACTIVE; i += 32) await Promise.all(tokens.slice(i, i + 32).map((t) => post(t, [{ phase: 'layers', state: 'start', ts: new Date().toISOString() }])));

  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${srv.url}/ui/`);
  await page.waitForSelector('#token');
  await page.type('#token', srv.adminToken);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#live');
  // First render: a fresh load of the dashboard with the session, until all rows are drawn.
  const t0 = Date.now();
  await page.reload();
  await page.waitForFunction((n) => document.querySelectorAll('#progress tr[data-node]').length >= n, { timeout: 30_000 }, ACTIVE);
  const firstRender = (Date.now() - t0) / 1000;
  // Where it went, as the page saw it (ms since its navigation started).
  const parts = await page.evaluate(() => {
    const r = (name: string) => performance.getEntriesByType('resource').find((e) => e.name.includes(name)) as PerformanceResourceTiming | undefined;
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    return { html: nav.responseEnd, script: r('app.js')?.responseEnd, session: r('/ui/session')?.responseEnd, stream: r('/events')?.responseStart, drawn: performance.now() };
  });
  console.log(`nodes ${NODES}, installs in progress ${ACTIVE}`);
  console.log(`first render (load to ${ACTIVE} rows drawn): ${firstRender.toFixed(2)} s (goal <= 1 s); in the page: ${Object.entries(parts).map(([k, v]) => `${k} ${v === undefined ? '-' : (v as number).toFixed(0)} ms`).join(', ')}`);

  const seen = () => page.evaluate(() => Number(/^(\d+)/.exec(document.getElementById('rate')?.textContent ?? '')?.[1] ?? 0));
  let bytes = 0;
  for (const rate of RATES) {
    const before = await seen();
    const total = rate * SECONDS;
    const start = Date.now();
    // Every 50 ms, what is due is sent in requests of up to 10 events, from node after node.
    let sent = 0;
    let turn = 0;
    while (sent < total && Date.now() - start < SECONDS * 3000) {
      let due = Math.min(total, Math.ceil(((Date.now() - start) / 1000) * rate)) - sent;
      const jobs: Promise<void>[] = [];
      while (due > 0 && jobs.length < 32) {
        const n = Math.min(10, due);
        jobs.push(post(tokens[turn++ % ACTIVE], Array.from({ length: n }, () => ({ phase: 'layers', state: 'progress', object: 'sha256:' + '0'.repeat(64), bytes: (bytes += 65536), total: 1 << 40, ts: new Date().toISOString() }))));
        due -= n;
        sent += n;
      }
      await Promise.all(jobs);
      await new Promise((r) => setTimeout(r, 50));
    }
    const sentAt = Date.now();
    const want = before + sent;
    let caughtUp = -1;
    try {
      await page.waitForFunction((w) => Number(/^(\d+)/.exec(document.getElementById('rate')?.textContent ?? '')?.[1] ?? 0) >= w, { timeout: 10_000, polling: 20 }, want);
      caughtUp = (Date.now() - sentAt) / 1000;
    } catch {
      /* reported below */
    }
    const offered = total / ((sentAt - start) / 1000);
    console.log(`offered ${rate}/s (sent ${total} in ${((sentAt - start) / 1000).toFixed(2)} s = ${offered.toFixed(0)}/s): ${caughtUp < 0 ? `fell behind (${(await seen()) - before} of ${total} drawn after 10 s)` : `drawn ${caughtUp.toFixed(2)} s after the last was sent: ${caughtUp <= 1 ? 'kept up' : 'behind'}`}`);
  }
  if (errors.length) console.log('page errors:', errors);
} finally {
  await browser.close();
  await srv.close();
  data.close();
  rmSync(tmp, { recursive: true, force: true });
}

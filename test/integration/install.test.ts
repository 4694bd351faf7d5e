/**
 * Whole installs against the real server on loopback, into a directory target (the disk stage is
 * exercised by install-disk.test.ts): every file kind, layers with deletions, failures reported.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../../common/progress.js';
import { runInstall, type InstallOptions } from '../../installer/install.js';
import { FerryServer } from './helpers/ferry-server.js';
import { droppingProxy, seededRandom } from '../harness/cutting-proxy.js';
import { describeTree, makeKitchenSink } from './helpers/trees.js';

const FAST = { baseMs: 20, maxMs: 200, giveUpAfterMs: 30_000 };
let work: string;
let server: FerryServer;

beforeEach(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-install-'));
  server = await FerryServer.start();
});
afterEach(async () => {
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function dir(name: string): string {
  const d = path.join(work, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

async function install(token: string, root: string, extra: Partial<InstallOptions> = {}) {
  const events: ProgressEvent[] = [];
  const outcome = await runInstall({
    server: server.url, token, root, yes: true, initramfs: false, backoff: FAST, console: () => {}, ...extra,
    onEvent: (e) => {
      events.push(e);
      extra.onEvent?.(e);
    },
  });
  return { outcome, events };
}

/** What customization always changes; the rest must equal the source. */
function withoutCustomized(t: Awaited<ReturnType<typeof describeTree>>) {
  const e = { ...t.entries };
  for (const k of ['etc/hostname', 'etc/hosts', 'etc/machine-id']) delete e[k];
  if (e.etc) e.etc = { ...e.etc, mtime: undefined };
  return { entries: e, links: t.links };
}

describe('install into a directory from the real server', () => {
  it('installs every file kind with every attribute, and the server records a success', async () => {
    const src = dir('src');
    await makeKitchenSink(src);
    await server.image('sink', src);
    const armed = server.arm('n1', 'sink');
    const dst = dir('dst');
    const { outcome, events } = await install(armed.token, dst);
    expect(outcome.result).toEqual({ status: 'success' });
    expect(outcome.finish).toBe('stay');
    expect(withoutCustomized(await describeTree(dst))).toEqual(withoutCustomized(await describeTree(src)));
    expect(fs.readFileSync(path.join(dst, 'etc/hostname'), 'utf8')).toBe('n1\n');
    expect(fs.readFileSync(path.join(dst, 'etc/machine-id'), 'utf8')).toMatch(/^[0-9a-f]{32}\n$/);
    const rec = server.deployment(armed.id);
    expect(rec.row.status).toBe('success');
    const phases = rec.events.filter((e) => e.state === 'end' && !e.object).map((e) => e.phase);
    expect(phases).toEqual(['identify', 'config', 'disks', 'layers', 'customize', 'bootloader', 'finish']);
    expect(events.some((e) => e.phase === 'bootloader' && e.state === 'warning')).toBe(true);
  });

  it('applies layers in order with deletions (whiteouts) from image commits', async () => {
    const v1 = dir('v1');
    for (const f of ['etc/os-release', 'keep', 'gone', 'dir/a', 'dir/b', 'olddir/x', 'olddir/sub/y', 'change']) {
      fs.mkdirSync(path.dirname(path.join(v1, f)), { recursive: true });
      fs.writeFileSync(path.join(v1, f), 'v1 ' + f);
    }
    fs.symlinkSync('keep', path.join(v1, 'link'));
    await server.image('multi', v1);
    const v2 = dir('v2');
    fs.cpSync(v1, v2, { recursive: true, verbatimSymlinks: true });
    fs.rmSync(path.join(v2, 'gone'));
    fs.rmSync(path.join(v2, 'olddir'), { recursive: true });
    fs.rmSync(path.join(v2, 'dir/a'));
    fs.writeFileSync(path.join(v2, 'change'), 'v2 change');
    fs.writeFileSync(path.join(v2, 'new'), 'v2 new');
    fs.rmSync(path.join(v2, 'link'));
    fs.mkdirSync(path.join(v2, 'link'));
    const c2 = await server.commit('multi', v2);
    expect(c2.image!.layers.length).toBe(2);
    const v3 = dir('v3');
    fs.cpSync(v2, v3, { recursive: true, verbatimSymlinks: true });
    fs.rmSync(path.join(v3, 'dir'), { recursive: true });
    fs.writeFileSync(path.join(v3, 'dir'), 'now a file');
    const c3 = await server.commit('multi', v3);
    expect(c3.image!.layers.length).toBe(3);
    const armed = server.arm('n2', 'multi');
    const dst = dir('dst');
    const { outcome } = await install(armed.token, dst);
    expect(outcome.result.status).toBe('success');
    expect(withoutCustomized(await describeTree(dst))).toEqual(withoutCustomized(await describeTree(v3)));
  });

  it('fails with the digest error when a blob is corrupted, and reports it to the server', async () => {
    const src = dir('src');
    fs.writeFileSync(path.join(src, 'data'), Buffer.alloc(2 << 20, 'x'));
    const img = await server.image('bad', src);
    server.corruptBlob(img.layers[0].digest);
    const armed = server.arm('n3', 'bad');
    const { outcome } = await install(armed.token, dir('dst'));
    expect(outcome.result.status).toBe('failed');
    expect(outcome.result.error).toMatchObject({ code: 'FERRY_E_LAYER_DIGEST', phase: 'layers', details: { expected: img.layers[0].digest, layer: 0 } });
    const rec = server.deployment(armed.id);
    expect(rec.row.status).toBe('failed');
    expect(JSON.parse(rec.row.error!).code).toBe('FERRY_E_LAYER_DIGEST');
    const err = rec.events.find((e) => e.state === 'error')!;
    expect(err).toMatchObject({ phase: 'layers', code: 'FERRY_E_LAYER_DIGEST' });
    expect(err.message).toContain(img.layers[0].digest);
    // It stopped: no later stage started.
    expect(rec.events.some((e) => e.phase === 'customize')).toBe(false);
  });

  it('completes when the server is killed and restarted in the middle of a layer', async () => {
    const src = dir('src');
    const buf = randomBytes(48 << 20);
    fs.writeFileSync(path.join(src, 'noise'), buf);
    await server.image('big', src);
    const armed = server.arm('n4', 'big');
    let restarted: Promise<void> | undefined;
    let killedAt = -1;
    const dst = dir('dst');
    const { outcome, events } = await install(armed.token, dst, {
      heartbeatMs: 100,
      onEvent: (e) => {
        if (!restarted && e.phase === 'layers' && e.state === 'progress' && (e.bytes ?? 0) > 0 && (e.bytes ?? 0) < (e.total ?? 0)) {
          killedAt = e.bytes!;
          restarted = server.restart();
        }
      },
    });
    await restarted;
    expect(killedAt).toBeGreaterThan(0);
    expect(outcome.result.status).toBe('success');
    expect(events.some((e) => e.phase === 'layers' && e.state === 'warning' && /resuming/.test(e.message ?? ''))).toBe(true);
    expect(fs.readFileSync(path.join(dst, 'noise')).equals(buf)).toBe(true);
    const rec = server.deployment(armed.id);
    expect(rec.row.status).toBe('success');
    // The node kept saying it was alive, and the events sent while the server was away arrived.
    expect(rec.events.some((e) => e.state === 'heartbeat')).toBe(true);
    expect(rec.events.filter((e) => e.phase === 'layers' && e.state === 'warning').length).toBeGreaterThan(0);
  });

  it('completes through a proxy that drops every connection after 2 MB', async () => {
    const src = dir('src');
    const buf = randomBytes(12 << 20);
    fs.writeFileSync(path.join(src, 'noise'), buf);
    await server.image('flaky', src);
    const armed = server.arm('n5', 'flaky');
    const proxy = await droppingProxy(server.url, 2 << 20);
    // Nodes reach blobs at the server's public URL: make that the proxy too.
    await server.restart({ publicUrl: proxy.url });
    try {
      const dst = dir('dst');
      const { outcome } = await install(armed.token, dst, { server: proxy.url });
      expect(outcome.result.status).toBe('success');
      expect(proxy.drops).toBeGreaterThanOrEqual(5);
      expect(fs.readFileSync(path.join(dst, 'noise')).equals(buf)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('survives a server side closing (FIN) in the middle of a body it is still pushing, many times in a row', async () => {
    // A layer download applies backpressure on every chunk; a FIN landing on a paused response
    // crashed undici 7 uncatchably (nodejs/undici#5360). Cuts at seeded random points up to 1 MiB.
    const src = dir('src');
    const buf = randomBytes(6 << 20);
    fs.writeFileSync(path.join(src, 'noise'), buf);
    await server.image('fin', src);
    const armed = server.arm('n7', 'fin');
    const proxy = await droppingProxy(server.url, 1 << 20, { fin: true, random: seededRandom(7) });
    await server.restart({ publicUrl: proxy.url });
    try {
      const dst = dir('dst');
      const { outcome } = await install(armed.token, dst, { server: proxy.url });
      expect(outcome.result.status, JSON.stringify(outcome.result.error)).toBe('success');
      expect(proxy.drops).toBeGreaterThanOrEqual(8);
      expect(fs.readFileSync(path.join(dst, 'noise')).equals(buf)).toBe(true);
      expect(server.deployment(armed.id).row.status).toBe('success');
    } finally {
      await proxy.close();
    }
  });

  it('ends an error thrown where nobody can catch it (a socket or timer handler) as a reported failure', async () => {
    const src = dir('src');
    fs.writeFileSync(path.join(src, 'f'), 'x');
    await server.image('boom', src);
    const armed = server.arm('n8', 'boom');
    // The runner's own listener must be the only one, as in the installer's process.
    const saved = process.rawListeners('uncaughtException') as ((e: Error) => void)[];
    process.removeAllListeners('uncaughtException');
    try {
      const { outcome, events } = await install(armed.token, dir('dst'), {
        onEvent: (e) => {
          if (e.phase === 'layers' && e.state === 'start') setImmediate(() => { throw new Error('assert(!this.paused)'); });
        },
      });
      expect(outcome.result.status).toBe('failed');
      expect(outcome.result.error).toMatchObject({ code: 'FERRY_E_INTERNAL', phase: 'layers' });
      expect(outcome.result.error?.message).toMatch(/uncaught error in the installer: assert\(!this\.paused\)/);
      expect(events.some((e) => e.state === 'error' && e.phase === 'layers')).toBe(true);
      expect(server.deployment(armed.id).row.status).toBe('failed');
      // And the guard is gone once the install has ended.
      expect(process.listenerCount('uncaughtException')).toBe(0);
    } finally {
      for (const l of saved) process.on('uncaughtException', l);
    }
  });

  it('explains a rejected token and stops', async () => {
    const { outcome } = await install('not-a-token', dir('dst'));
    expect(outcome.result.status).toBe('failed');
    expect(outcome.result.error).toMatchObject({ code: 'FERRY_E_TOKEN_REJECTED', phase: 'config' });
  });
});

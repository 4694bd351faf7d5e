/**
 * The next layer downloads while the previous one extracts (installer/transport/prefetch.ts):
 * whole installs of a 3-layer image from the real server on loopback, through a small proxy in
 * front of it that can spoil or hold back the blob of one layer.
 *  - overlap, read from the events' timestamps: layer 2 is fetched ahead while layer 1 extracts,
 *    layer 3 while layer 2 does; each prefetched layer is verified before its turn; the tree is
 *    the image's last commit; no staging directory is left;
 *  - a prefetched copy with a bad byte (the first answer for layer 2 is spoiled): a warning with
 *    the digest error, the layer streamed at its turn, the install succeeds;
 *  - the install fails on layer 1 while layer 2's prefetch is held back: the prefetch is
 *    cancelled (its request closed), nothing of layer 2 counts, no staging directory is left.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../../common/progress.js';
import { runInstall } from '../../installer/install.js';
import { FerryServer } from './helpers/ferry-server.js';

const FAST = { baseMs: 20, maxMs: 200, giveUpAfterMs: 10_000 };
let work: string;
let server: FerryServer;
let proxies: http.Server[] = [];

beforeEach(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-prefetch-'));
  server = await FerryServer.start();
});
afterEach(async () => {
  for (const p of proxies.splice(0)) {
    p.closeAllConnections();
    p.close();
  }
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function dir(name: string): string {
  const d = path.join(work, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

interface Rule {
  /** The blob's hex digest. */
  hex: string;
  /** Spoil one byte of the first answer for this blob. */
  spoilFirst?: boolean;
  /** Hold every answer for this blob this long before sending it. */
  holdMs?: number;
}

/** A proxy to the server that applies `rules` to blob GETs and records them. */
async function proxy(rules: Rule[]): Promise<{ url: string; log: { hex?: string; at: number; closedEarly?: boolean }[] }> {
  const log: { hex?: string; at: number; closedEarly?: boolean }[] = [];
  const upstream = new URL(server.url);
  const seen = new Set<string>();
  const srv = http.createServer((req, res) => {
    const hex = /([0-9a-f]{64})/.exec(req.url ?? '')?.[1];
    const rule = rules.find((r) => r.hex === hex);
    const entry: { hex?: string; at: number; closedEarly?: boolean } = { hex, at: Date.now() };
    log.push(entry);
    res.on('close', () => {
      if (!res.writableFinished) entry.closedEarly = true;
    });
    const forward = () => {
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        const spoil = rule?.spoilFirst && !seen.has(rule.hex);
        if (rule) seen.add(rule.hex);
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        let flipped = false;
        ur.on('data', (c: Buffer) => {
          if (spoil && !flipped) {
            c = Buffer.from(c);
            c[c.length >> 1] ^= 0x55;
            flipped = true;
          }
          if (!res.write(c)) {
            ur.pause();
            res.once('drain', () => ur.resume());
          }
        });
        ur.on('end', () => res.end());
        ur.on('error', () => res.destroy());
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
      res.on('close', () => up.destroy());
    };
    if (rule?.holdMs) {
      const t = setTimeout(forward, rule.holdMs);
      res.on('close', () => clearTimeout(t));
    } else forward();
  });
  proxies.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  // The install config names the server's public URL as where the blobs are: make it the proxy.
  await server.restart({ publicUrl: url });
  return { url, log };
}

/** An image of 3 layers, each adding 12 MiB of incompressible bytes (so each takes a while). */
async function threeLayers(name: string) {
  const v = dir(`${name}-v1`);
  fs.mkdirSync(path.join(v, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(v, 'etc', 'os-release'), 'ID=test\n');
  fs.writeFileSync(path.join(v, 'one'), randomBytes(12 << 20));
  await server.image(name, v);
  fs.writeFileSync(path.join(v, 'two'), randomBytes(12 << 20));
  await server.commit(name, v);
  fs.writeFileSync(path.join(v, 'three'), randomBytes(12 << 20));
  fs.rmSync(path.join(v, 'one'));
  const c = await server.commit(name, v);
  expect(c.image!.layers.length).toBe(3);
  return { tree: v, layers: c.image!.layers };
}

async function install(url: string, token: string, root: string) {
  const events: ProgressEvent[] = [];
  const outcome = await runInstall({ server: url, token, root, yes: true, initramfs: false, backoff: FAST, console: () => {}, onEvent: (e) => events.push(e) });
  return { outcome, events };
}

const t = (e: ProgressEvent | undefined) => Date.parse(e!.ts!);
const find = (events: ProgressEvent[], digest: string, pred: (e: ProgressEvent) => boolean) => events.find((e) => e.phase === 'layers' && e.object === digest && pred(e));
const leftovers = (root: string) => fs.readdirSync(root).filter((n) => n.startsWith('.ferry-prefetch-'));

describe('layers: the next one downloads while the previous one extracts', () => {
  it('fetches layer N+1 during layer N, verifies it, and installs the last commit\'s tree', { timeout: 180_000 }, async () => {
    const img = await threeLayers('pre');
    const p = await proxy([]);
    const armed = server.arm('p1', 'pre');
    const root = dir('dst');
    const { outcome, events } = await install(p.url, armed.token, root);
    expect(outcome.result).toEqual({ status: 'success' });
    const [l1, l2, l3] = img.layers.map((l) => l.digest);
    // Layer 1 streams; layers 2 and 3 are fetched ahead, each while the one before extracts.
    for (const [prev, next] of [[l1, l2], [l2, l3]]) {
      const prevStart = t(find(events, prev, (e) => e.state === 'start'));
      const prevEnd = t(find(events, prev, (e) => e.state === 'end'));
      const aheadStart = t(find(events, next, (e) => e.details?.prefetch === 'start'));
      const aheadDone = t(find(events, next, (e) => e.details?.prefetch === 'done'));
      const nextStart = t(find(events, next, (e) => e.state === 'start'));
      // The fetch ahead starts as layer N starts (its event just before N's start event) and
      // runs while N extracts: the two intervals overlap.
      expect(Math.abs(aheadStart - prevStart)).toBeLessThan(1000);
      expect(aheadStart).toBeLessThan(prevEnd);
      expect(aheadDone).toBeGreaterThan(prevStart);
      // Verified before its turn came: the staged copy counts only through the sink after this.
      expect(aheadDone).toBeLessThanOrEqual(nextStart);
    }
    // The server saw each blob once: the prefetched ones were not downloaded again.
    for (const d of [l1, l2, l3]) expect(p.log.filter((r) => r.hex === d.slice(7)).length).toBe(1);
    // And the blob requests overlapped: layer 2's began before layer 1's layer-end event.
    expect(p.log.find((r) => r.hex === l2.slice(7))!.at).toBeLessThan(t(find(events, l1, (e) => e.state === 'end')));
    expect(events.filter((e) => e.details?.prefetch === 'failed' || e.details?.prefetch === 'refused')).toEqual([]);
    expect(fs.readFileSync(path.join(root, 'three')).equals(fs.readFileSync(path.join(img.tree, 'three')))).toBe(true);
    expect(fs.readFileSync(path.join(root, 'two')).equals(fs.readFileSync(path.join(img.tree, 'two')))).toBe(true);
    expect(fs.existsSync(path.join(root, 'one'))).toBe(false);
    expect(leftovers(root)).toEqual([]);
  });

  it('a prefetched copy with a bad byte is not counted: warned, streamed at its turn, the install succeeds', { timeout: 180_000 }, async () => {
    const img = await threeLayers('spoil');
    const l2 = img.layers[1].digest;
    const p = await proxy([{ hex: l2.slice(7), spoilFirst: true }]);
    const armed = server.arm('p2', 'spoil');
    const root = dir('dst');
    const { outcome, events } = await install(p.url, armed.token, root);
    expect(outcome.result).toEqual({ status: 'success' });
    const warn = find(events, l2, (e) => e.details?.prefetch === 'failed');
    expect(warn).toMatchObject({ state: 'warning', code: 'FERRY_E_LAYER_DIGEST' });
    expect(find(events, l2, (e) => e.details?.prefetch === 'done')).toBeUndefined();
    // Its turn came after the warning and it streamed from the server (a second request).
    expect(t(find(events, l2, (e) => e.state === 'start'))).toBeGreaterThanOrEqual(t(warn));
    expect(p.log.filter((r) => r.hex === l2.slice(7)).length).toBe(2);
    expect(fs.readFileSync(path.join(root, 'two')).equals(fs.readFileSync(path.join(img.tree, 'two')))).toBe(true);
    expect(leftovers(root)).toEqual([]);
  });

  it('an install that fails while the next layer is being fetched cancels that fetch and leaves no staging directory', { timeout: 180_000 }, async () => {
    const img = await threeLayers('cancel');
    const [l1, l2] = img.layers.map((l) => l.digest);
    server.corruptBlob(l1);
    const p = await proxy([{ hex: l2.slice(7), holdMs: 30_000 }]);
    const armed = server.arm('p3', 'cancel');
    const root = dir('dst');
    const before = Date.now();
    const { outcome, events } = await install(p.url, armed.token, root);
    expect(outcome.result.status).toBe('failed');
    expect(outcome.result.error).toMatchObject({ code: 'FERRY_E_LAYER_DIGEST', details: { layer: 0 } });
    // The held prefetch did not keep the install waiting, and its request was closed.
    expect(Date.now() - before).toBeLessThan(25_000);
    expect(find(events, l2, (e) => e.details?.prefetch === 'start')).toBeDefined();
    expect(find(events, l2, (e) => e.details?.prefetch === 'done')).toBeUndefined();
    expect(find(events, l2, (e) => e.state === 'start')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(p.log.find((r) => r.hex === l2.slice(7))).toMatchObject({ closedEarly: true });
    expect(leftovers(root)).toEqual([]);
    expect(fs.existsSync(path.join(root, 'two'))).toBe(false);
  });
});

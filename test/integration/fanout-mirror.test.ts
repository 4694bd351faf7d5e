/**
 * `ferry serve --mirror URL` (issue 13): nodes fetch layers from static HTTP mirrors of DATA/blobs
 * in order, the digest as the only trust, the server as the last resort. A mirror that is down,
 * and one that serves damaged bytes, are each named in a warning and skipped; the install completes.
 * Per subnet (`--mirror URL@CIDR`): the node's subnet's mirrors come first, other subnets' never.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../common/run.js';
import { INSTALL_ROUTES } from '../../common/protocol.js';
import type { ProgressEvent } from '../../common/progress.js';
import { runInstall } from '../../installer/install.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { call, LAYOUT, smallTree, tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');

/** A static file server over `dir` (what nginx over a copy of DATA/blobs is), recording requests. */
async function staticMirror(dir: string, damage = false): Promise<{ url: string; requests: { url: string; auth?: string }[]; close: () => Promise<void> }> {
  const requests: { url: string; auth?: string }[] = [];
  const srv = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', auth: req.headers.authorization });
    const f = join(dir, (req.url ?? '').replace(/^\/blobs\//, ''));
    if (!/^\/blobs\/sha256\/[0-9a-f]{64}$/.test(req.url ?? '') || !fs.existsSync(f)) return res.writeHead(404).end();
    const body = fs.readFileSync(f);
    if (damage) body[body.length >> 1] ^= 0xff;
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/blobs`, requests, close: () => new Promise((r) => srv.close(() => r())) };
}

async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('static HTTP mirrors', () => {
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let srv: RunningServer | undefined;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000, quiet: true });

  beforeAll(async () => {
    t = tempDir('ferry-mirror-');
    data = join(t.dir, 'data');
    smallTree(join(t.dir, 'tree'));
    fs.writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
    await ferry(['image', 'import', 'base', '--dir', join(t.dir, 'tree')]);
    await ferry(['node', 'add', 'm1', '--mac', '52:54:00:00:02:01', '--image', 'base', '--layout', join(t.dir, 'layout.xml')]);
  });
  afterAll(async () => {
    await srv?.close();
    t?.cleanup();
  });

  async function installWith(mirrors: string[], told = mirrors): Promise<ProgressEvent[]> {
    await srv?.close();
    srv = await startServer({ dataDir: data, listen: '127.0.0.1:0', mirrors });
    const armed = JSON.parse((await ferry(['deploy', 'm1', '--json'])).stdout).deployments[0];
    const cfg = await call(srv.url, 'GET', INSTALL_ROUTES.config, { token: armed.token });
    expect(cfg.json.transport.mirrors).toEqual(told);
    const root = join(t.dir, `root-${armed.id}`);
    fs.mkdirSync(root);
    const events: ProgressEvent[] = [];
    const outcome = await runInstall({ server: srv.url, token: armed.token, root, yes: true, initramfs: false, console: () => {}, onEvent: (e) => events.push(e) });
    expect(outcome.result).toEqual({ status: 'success' });
    expect(fs.readFileSync(join(root, 'data.bin')).length).toBe(300_000);
    return events;
  }
  const ends = (ev: ProgressEvent[]) => ev.filter((e) => e.phase === 'layers' && e.state === 'end' && e.object).map((e) => e.details?.mirror ?? 'server');

  it('takes the layers from the first mirror that works, skipping one that is down; the token never goes to a mirror', async () => {
    const good = await staticMirror(join(data, 'blobs'));
    try {
      const down = `http://127.0.0.1:${await closedPort()}/blobs`;
      const ev = await installWith([down, good.url]);
      expect(ends(ev)).toEqual([good.url]);
      const warn = ev.filter((e) => e.state === 'warning' && e.details?.mirror === down && e.details?.fallback);
      expect(warn).toEqual([expect.objectContaining({ code: 'FERRY_E_LAYER_FETCH', details: expect.objectContaining({ fallback: good.url }) })]);
      expect(good.requests.length).toBeGreaterThan(0);
      expect(good.requests.every((r) => r.auth === undefined)).toBe(true);
    } finally {
      await good.close();
    }
  });

  it('per subnet (--mirror URL@CIDR): the node\'s subnet mirror first (down: skipped), then the global one; another subnet\'s mirror is never asked', async () => {
    const good = await staticMirror(join(data, 'blobs'));
    const elsewhere = await staticMirror(join(data, 'blobs'));
    try {
      const down = `http://127.0.0.1:${await closedPort()}/blobs`;
      // The node reaches the server from 127.0.0.1: the loopback subnet is its own.
      const ev = await installWith([`${good.url}`, `${elsewhere.url}@10.99.0.0/16`, `${down}@127.0.0.0/8`], [down, good.url]);
      expect(ends(ev)).toEqual([good.url]);
      expect(ev.filter((e) => e.state === 'warning' && e.details?.mirror === down && e.details?.fallback)).toEqual([expect.objectContaining({ details: expect.objectContaining({ fallback: good.url }) })]);
      expect(elsewhere.requests).toEqual([]);
      expect(good.requests.length).toBeGreaterThan(0);
    } finally {
      await good.close();
      await elsewhere.close();
    }
  });

  it('a mirror serving damaged bytes is caught by the digest; the server delivers', async () => {
    const bad = await staticMirror(join(data, 'blobs'), true);
    try {
      const ev = await installWith([bad.url]);
      expect(ends(ev)).toEqual(['server']);
      const warn = ev.find((e) => e.state === 'warning' && e.details?.mirror === bad.url && e.details?.fallback)!;
      expect(warn.code).toMatch(/^FERRY_E_LAYER_(DIGEST|INVALID)$/);
      expect(warn.details?.fallback).toBe('the server');
    } finally {
      await bad.close();
    }
  });

  it('refuses a mirror that is not an http(s) URL', async () => {
    await srv?.close();
    srv = undefined;
    await expect(startServer({ dataDir: data, listen: '127.0.0.1:0', mirrors: ['ftp://x/blobs', 'http://user:pw@x/'] })).rejects.toMatchObject({ code: 'FERRY_E_BAD_VALUE', details: { problems: [expect.stringMatching(/ftp/), expect.stringMatching(/user/)] } });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { ADMIN_ROUTES, INSTALL_ROUTES, blobPath, type LayerRef } from '../../../common/protocol.js';
import { armDeployment, getDeploymentRow } from '../../../server/db/deployments.js';
import { deploymentEvents, recordEvents } from '../../../server/db/deployment-events.js';
import { addNode } from '../../../server/db/inventory.js';
import { imageInfo, getImage } from '../../../server/store/images.js';
import { importImage } from '../../../server/store/image-import.js';
import { call, harness, LAYOUT, type Harness } from './helpers.js';

/** A raw GET with the path exactly as written (no URL normalisation of "..", "%2e"). */
function rawGet(base: string, path: string, token?: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('server security and blob transfer', () => {
  let h: Harness;
  let base: string;
  let admin: string;
  let big: LayerRef;
  let small: LayerRef;
  let tokA: string;
  let tokB: string;
  let bigBytes: Buffer;

  beforeAll(async () => {
    h = await harness();
    base = h.srv.url;
    admin = h.srv.adminToken;
    const t1 = join(h.tmp, 't1'), t2 = join(h.tmp, 't2');
    mkdirSync(t1);
    mkdirSync(t2);
    writeFileSync(join(t1, 'random'), randomBytes(6 * 1024 * 1024));
    writeFileSync(join(t2, 'small'), 'small');
    big = (await importImage(h.data, 'big', { dir: t1, actor: 'test' })).layers[0];
    small = (await importImage(h.data, 'small', { dir: t2, actor: 'test' })).layers[0];
    bigBytes = readFileSync(h.data.blobs.path(big.digest));
    addNode(h.data, 'a', { macs: ['02:00:00:00:00:0a'], image: 'big', layoutXml: LAYOUT }, 'test');
    addNode(h.data, 'b', { macs: ['02:00:00:00:00:0b'], image: 'small', layoutXml: LAYOUT }, 'test');
    tokA = armDeployment(h.data, 'a', { actor: 'test' }).token;
    tokB = armDeployment(h.data, 'b', { actor: 'test' }).token;
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('tokens', () => {
    it('missing, wrong, or of another deployment: 401/403 with an ErrorBody', async () => {
      const cases: [string, string, string | undefined, number, string][] = [
        ['GET', INSTALL_ROUTES.config, undefined, 401, 'FERRY_E_TOKEN_MISSING'],
        ['GET', INSTALL_ROUTES.config, 'ferry-deploy-nonsense', 401, 'FERRY_E_TOKEN_INVALID'],
        ['GET', INSTALL_ROUTES.config, '', 401, 'FERRY_E_TOKEN_INVALID'],
        ['GET', INSTALL_ROUTES.config, admin, 403, 'FERRY_E_FORBIDDEN'],
        ['GET', blobPath(big.digest), undefined, 401, 'FERRY_E_TOKEN_MISSING'],
        ['GET', blobPath(big.digest), 'wrong', 401, 'FERRY_E_TOKEN_INVALID'],
        ['GET', blobPath(big.digest), tokB, 403, 'FERRY_E_FORBIDDEN'],
        ['HEAD', blobPath(small.digest), tokA, 403, ''],
        ['GET', ADMIN_ROUTES.deployments, tokA, 403, 'FERRY_E_FORBIDDEN'],
        ['GET', ADMIN_ROUTES.deployments, undefined, 401, 'FERRY_E_TOKEN_MISSING'],
        ['GET', ADMIN_ROUTES.deployments, admin + 'x', 401, 'FERRY_E_TOKEN_INVALID'],
        ['GET', '/api/v1/admin/events', tokA, 403, 'FERRY_E_FORBIDDEN'],
        ['POST', INSTALL_ROUTES.events, undefined, 401, 'FERRY_E_TOKEN_MISSING'],
        ['POST', INSTALL_ROUTES.result, 'ferry-admin-guess', 401, 'FERRY_E_TOKEN_INVALID'],
      ];
      for (const [method, path, token, status, code] of cases) {
        const r = await call(base, method, path, { token, body: method === 'POST' ? { events: [] } : undefined });
        expect({ method, path, token, status: r.status }).toEqual({ method, path, token, status });
        if (method !== 'HEAD') expect(r.json?.error?.code, `${method} ${path}`).toBe(code);
        if (status === 401) expect(r.headers['www-authenticate']).toBe('Bearer realm="ferry"');
      }
      // The rightful tokens work.
      expect((await call(base, 'HEAD', blobPath(big.digest), { token: tokA })).status).toBe(200);
      expect((await call(base, 'HEAD', blobPath(small.digest), { token: admin })).status).toBe(200);
    });

    it('expired tokens are refused', async () => {
      addNode(h.data, 'c', { macs: ['02:00:00:00:00:0c'], image: 'small', layoutXml: LAYOUT }, 'test');
      const c = armDeployment(h.data, 'c', { actor: 'test' });
      expect((await call(base, 'GET', INSTALL_ROUTES.config, { token: c.token })).status).toBe(200);
      h.data.db.prepare('UPDATE deployments SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), c.id);
      for (const path of [INSTALL_ROUTES.config, blobPath(small.digest)]) {
        const r = await call(base, 'GET', path, { token: c.token });
        expect(r.status).toBe(401);
        expect(r.json.error.code).toBe('FERRY_E_TOKEN_EXPIRED');
      }
      const ipxe = await call(base, 'GET', '/boot/ipxe?mac=02:00:00:00:00:0c');
      expect(ipxe.text).not.toContain(c.token);
    });
  });

  it('refuses path traversal on every URL that takes a name', async () => {
    const secret = readFileSync(join(h.dataDir, 'admin.token'), 'utf8').trim();
    const paths = [
      '/blobs/../ferry.db',
      '/blobs/../admin.token',
      '/blobs/sha256:../../admin.token',
      '/blobs/sha256%3a..%2f..%2fadmin.token',
      '/blobs/%2e%2e/%2e%2e/admin.token',
      `/blobs/sha256:${'0'.repeat(64)}/../../../admin.token`,
      `/blobs/sha256:${big.digest.slice(7)}/..`,
      '/boot/../admin.token',
      '/boot/..%2fadmin.token',
      '/boot/vmlinuz/../../admin.token',
      '/boot/%2e%2e/ferry.db',
      '/boot/ipxe/../../admin.token',
      '/api/v1/admin/nodes/..%2f..%2fadmin.token',
      '/api/v1/admin/nodes/../../../admin.token',
      '/api/v1/admin/nodes/%2e%2e',
      '/api/v1/admin/images/..%2fferry.db',
      '/api/v1/admin/images/big%2f..%2f..%2fadmin.token',
      '/api/v1/admin/images/..',
      '/api/v1/admin/groups/%2e%2e%2f%2e%2e',
      '/api/v1/admin/deployments/..%2f1',
      '/api/v1/admin/deployments/1/..%2f..%2fevents',
      '/api/v1/admin/deployments?node=..%2f..%2fadmin.token',
      '/../admin.token',
      '/%2e%2e/admin.token',
      '//etc/passwd',
    ];
    for (const p of paths) {
      for (const token of [admin, tokA]) {
        const r = await rawGet(base, p, token);
        expect([400, 403, 404], `${p} → ${r.status}`).toContain(r.status);
        expect(r.body).not.toContain(secret);
        expect(r.body).not.toContain('SQLite format');
        expect(r.body).not.toContain('root:');
        expect(JSON.parse(r.body).error.code).toMatch(/^FERRY_E_/);
      }
    }
  });

  it('one client with hundreds of half-sent requests cannot take the server from the others', async () => {
    const u = new URL(base);
    const open = (localAddress: string) =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect({ host: u.hostname, port: Number(u.port), localAddress }, () => resolve(s));
        s.on('error', reject);
      });
    const hog: Socket[] = [];
    const answered = new Set<Socket>();
    try {
      // 300 connections from 127.0.0.2, each with a request that never ends its headers.
      for (let i = 0; i < 300; i++) {
        const s = await open('127.0.0.2');
        s.on('error', () => {});
        s.on('data', (d) => {
          if (/^HTTP\/1\.1 503 /.test(String(d))) answered.add(s);
        });
        s.write('GET /api/v1/images HTTP/1.1\r\nHost: x\r\n');
        hog.push(s);
      }
      await new Promise((r) => setTimeout(r, 300));
      // 64 are held (until headersTimeout), every other one was refused at once.
      expect(answered.size).toBe(300 - 64);
      // The refused ones were told why.
      const refused = await new Promise<string>((resolve) => {
        const s = connect({ host: u.hostname, port: Number(u.port), localAddress: '127.0.0.2' });
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('close', () => resolve(got));
        s.on('error', () => {});
      });
      expect(refused).toMatch(/^HTTP\/1\.1 503 [\s\S]*FERRY_E_TOO_MANY_CONNECTIONS/);
      // Everyone else is served as usual.
      const other = await call(base, 'GET', '/api/v1/admin/nodes', { token: admin });
      expect(other.status).toBe(200);
    } finally {
      for (const s of hog) s.destroy();
    }
    // And the client itself is served again once its connections are gone.
    await new Promise((r) => setTimeout(r, 200));
    const again = await new Promise<string>((resolve) => {
      const s = connect({ host: u.hostname, port: Number(u.port), localAddress: '127.0.0.2' }, () => s.write(`GET /api/v1/admin/nodes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nConnection: close\r\n\r\n`));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('close', () => resolve(got));
    });
    expect(again).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('bounds what one deployment stores: past the budget only starts, ends and errors, and one warning', () => {
    addNode(h.data, 'ev', { macs: ['02:00:00:00:00:0e'], image: 'small', layoutXml: LAYOUT }, 'test');
    const armed = armDeployment(h.data, 'ev', { actor: 'test' });
    const row = getDeploymentRow(h.data, armed.id)!;
    const budget = { events: 50, bytes: 1 << 20, essential: 5 };
    const flood = Array.from({ length: 100 }, (_, i) => ({ phase: 'layers', state: 'progress' as const, bytes: i, message: 'x' }));
    expect(recordEvents(h.data, row, flood, budget)).toHaveLength(51);
    const ev = deploymentEvents(h.data, armed.id);
    expect(ev.filter((e) => e.code === 'FERRY_W_EVENTS_DROPPED')).toHaveLength(1);
    // Still kept: what the record needs (stage ends and errors), up to the essential margin.
    const more = [...flood.slice(0, 10), { phase: 'layers', state: 'end' as const }, { phase: 'customize', state: 'error' as const, code: 'FERRY_E_X', message: 'boom' }];
    expect(recordEvents(h.data, row, more, budget).map((e) => e.state)).toEqual(['end', 'error']);
    expect(recordEvents(h.data, row, Array.from({ length: 10 }, () => ({ phase: 'x', state: 'start' as const })), budget)).toHaveLength(2); // 50 + the warning + end + error + 2 = 55
    expect(deploymentEvents(h.data, armed.id)).toHaveLength(budget.events + budget.essential);
    // The byte bound holds the same way: 3 events of 400 KiB fill a 1 MiB budget.
    addNode(h.data, 'ev2', { macs: ['02:00:00:00:00:0f'], image: 'small', layoutXml: LAYOUT }, 'test');
    const a2 = armDeployment(h.data, 'ev2', { actor: 'test' });
    const big = Array.from({ length: 5 }, () => ({ phase: 'layers', state: 'info' as const, details: { blob: 'y'.repeat(400 << 10) } }));
    expect(recordEvents(h.data, getDeploymentRow(h.data, a2.id)!, big, budget).map((e) => e.code ?? e.state)).toEqual(['info', 'info', 'FERRY_W_EVENTS_DROPPED']);
  });

  describe('request bodies', () => {
    it('malformed, wrong type and oversized bodies', async () => {
      const bad = await call(base, 'POST', INSTALL_ROUTES.events, { token: tokA, rawBody: '{"events": [' });
      expect(bad.status).toBe(400);
      expect(bad.json.error.code).toBe('FERRY_E_BAD_JSON');
      expect(bad.json.error.details.problems[0].path).toBe('$');

      const empty = await call(base, 'POST', INSTALL_ROUTES.result, { token: tokA, rawBody: '' });
      expect(empty.status).toBe(400);

      const ct = await call(base, 'POST', INSTALL_ROUTES.events, { token: tokA, rawBody: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(ct.status).toBe(415);
      expect(ct.json.error.code).toBe('FERRY_E_UNSUPPORTED_MEDIA_TYPE');

      const huge = JSON.stringify({ events: [{ phase: 'layers', state: 'info', message: 'x'.repeat(2 * 1024 * 1024) }] });
      const big1 = await call(base, 'POST', INSTALL_ROUTES.events, { token: tokA, rawBody: huge });
      expect(big1.status).toBe(413);
      expect(big1.json.error.code).toBe('FERRY_E_BODY_TOO_LARGE');

      // Without a Content-Length (chunked), the limit holds too.
      const chunked = await request(base + INSTALL_ROUTES.events, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokA}`, 'content-type': 'application/json' },
        body: Readable.from(
          (async function* () {
            for (let i = 0; i < 40; i++) yield Buffer.alloc(64 * 1024, 0x20);
          })(),
        ),
      });
      expect(chunked.statusCode).toBe(413);
      await chunked.body.dump();

      // Details nested 20,000 deep (and a string full of brackets, which does not count).
      const deep = `{"events":[{"phase":"layers","state":"info","details":{"x":${'['.repeat(20000)}${']'.repeat(20000)}}}]}`;
      for (const route of [INSTALL_ROUTES.events, INSTALL_ROUTES.result]) {
        const r = await call(base, 'POST', route, { token: tokA, rawBody: deep });
        expect(r.status).toBe(400);
        expect(r.json.error.code).toBe('FERRY_E_BAD_JSON');
        expect(r.json.error.details.problems[0].message).toMatch(/nests 20004 levels deep; at most 64/);
      }
      const brackets = await call(base, 'POST', INSTALL_ROUTES.events, { token: tokA, rawBody: JSON.stringify({ events: [{ phase: 'layers', state: 'info', message: '['.repeat(5000) }] }) });
      expect(brackets.status).toBe(200);

      const arm = await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, rawBody: '[]' });
      expect(arm.status).toBe(400);
      expect(arm.json.error.code).toBe('FERRY_E_BAD_REQUEST');
    });

    it('names every bad field by its JSON path', async () => {
      const r = await call(base, 'POST', INSTALL_ROUTES.events, {
        token: tokA,
        body: { events: [{ phase: 'layers', state: 'progress', bytes: 5 }, { phase: '', state: 'bogus', bytes: -1, total: 'x', ts: 'yesterday' }, 7] },
      });
      expect(r.status).toBe(400);
      const paths = r.json.error.details.problems.map((p: any) => p.path).sort();
      expect(paths).toEqual(['$.events[1].bytes', '$.events[1].phase', '$.events[1].state', '$.events[1].total', '$.events[1].ts', '$.events[2]']);

      const many = await call(base, 'POST', INSTALL_ROUTES.events, { token: tokA, body: { events: Array.from({ length: 1001 }, () => ({ phase: 'layers', state: 'heartbeat' })) } });
      expect(many.status).toBe(400);
      expect(many.json.error.details.problems[0].path).toBe('$.events');

      const res = await call(base, 'POST', INSTALL_ROUTES.result, { token: tokA, body: { status: 'failed', error: { code: 5 } } });
      expect(res.status).toBe(400);
      expect(res.json.error.details.problems.map((p: any) => p.path).sort()).toEqual(['$.error.code', '$.error.message']);

      const arm = await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, body: { node: '../x', image: 5, layout: '', extra: true, inputs: { 'bad key': 1 } } });
      expect(arm.status).toBe(400);
      expect(arm.json.error.details.problems.map((p: any) => p.path).sort()).toEqual(['$.extra', '$.image', '$.inputs.bad key', '$.inputs.bad key', '$.layout', '$.node']);

      const node = await call(base, 'POST', '/api/v1/admin/nodes', { token: admin, body: { name: 'n', macs: ['zz'], properties: [] } });
      expect(node.status).toBe(400);
      expect(node.json.error.details.problems.map((p: any) => p.path).sort()).toEqual(['$.macs[0]', '$.properties']);

      const unknownNode = await call(base, 'POST', ADMIN_ROUTES.deployments, { token: admin, body: { node: 'nobody' } });
      expect(unknownNode.status).toBe(404);
      expect(unknownNode.json.error.code).toBe('FERRY_E_NODE_NOT_FOUND');
    });
  });

  describe('blobs', () => {
    const get = (headers: Record<string, string>, method = 'GET') => call(base, method, blobPath(big.digest), { token: tokA, headers });
    const etag = () => `"${big.digest}"`;

    it('HEAD, ETag and If-None-Match', async () => {
      const head = await get({}, 'HEAD');
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(big.size));
      expect(head.headers.etag).toBe(etag());
      expect(head.headers['accept-ranges']).toBe('bytes');
      expect(head.buf.length).toBe(0);
      const nm = await get({ 'if-none-match': etag() });
      expect(nm.status).toBe(304);
      expect(nm.buf.length).toBe(0);
    });

    it('single ranges, suffixes, open ends and 416', async () => {
      const size = big.size;
      const r1 = await get({ range: 'bytes=0-99' });
      expect(r1.status).toBe(206);
      expect(r1.headers['content-range']).toBe(`bytes 0-99/${size}`);
      expect(r1.buf.equals(bigBytes.subarray(0, 100))).toBe(true);
      const r2 = await get({ range: 'bytes=-100' });
      expect(r2.status).toBe(206);
      expect(r2.buf.equals(bigBytes.subarray(size - 100))).toBe(true);
      const r3 = await get({ range: `bytes=${size - 10}-` });
      expect(r3.headers['content-range']).toBe(`bytes ${size - 10}-${size - 1}/${size}`);
      expect(r3.buf.equals(bigBytes.subarray(size - 10))).toBe(true);
      const r4 = await get({ range: `bytes=100-${size + 1000}` });
      expect(r4.status).toBe(206);
      expect(r4.buf.length).toBe(size - 100);
      for (const range of [`bytes=${size}-`, `bytes=${size + 5}-${size + 10}`, 'bytes=-0']) {
        const r = await get({ range });
        expect(r.status, range).toBe(416);
        expect(r.headers['content-range']).toBe(`bytes */${size}`);
      }
      // Multiple ranges and garbage are ignored: the whole blob.
      for (const range of ['bytes=0-1,5-6', 'items=0-5', 'bytes=9-3']) {
        const r = await get({ range });
        expect(r.status, range).toBe(200);
        expect(r.buf.length).toBe(size);
      }
    });

    it('If-Range: same ETag gives the range, another gives the whole blob', async () => {
      const ok = await get({ range: 'bytes=10-19', 'if-range': etag() });
      expect(ok.status).toBe(206);
      expect(ok.buf.equals(bigBytes.subarray(10, 20))).toBe(true);
      const stale = await get({ range: 'bytes=10-19', 'if-range': '"sha256:other"' });
      expect(stale.status).toBe(200);
      expect(stale.buf.length).toBe(big.size);
    });

    it('resumes an interrupted download', async () => {
      const half = Math.floor(big.size / 2);
      // Read part of the body, then drop the connection.
      const partial: Buffer[] = [];
      let got = 0;
      const first = await request(base + blobPath(big.digest), { headers: { authorization: `Bearer ${tokA}` } });
      for await (const c of first.body) {
        partial.push(c as Buffer);
        got += (c as Buffer).length;
        if (got >= half) break;
      }
      first.body.destroy();
      const have = Buffer.concat(partial).subarray(0, half);
      const rest = await get({ range: `bytes=${half}-`, 'if-range': etag() });
      expect(rest.status).toBe(206);
      const whole = Buffer.concat([have, rest.buf]);
      expect('sha256:' + createHash('sha256').update(whole).digest('hex')).toBe(big.digest);
    });

    it('serves 50 parallel downloads, every one verified', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const r = await request(base + blobPath(big.digest), { headers: { authorization: `Bearer ${i % 2 ? tokA : admin}` } });
          const hash = createHash('sha256');
          let n = 0;
          for await (const c of r.body) {
            hash.update(c as Buffer);
            n += (c as Buffer).length;
          }
          return { status: r.statusCode, n, digest: 'sha256:' + hash.digest('hex') };
        }),
      );
      for (const r of results) expect(r).toEqual({ status: 200, n: big.size, digest: big.digest });
    });
  });
});

import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armDeployment } from '../../../server/db/deployments.js';
import { addNode } from '../../../server/db/inventory.js';
import { blobPath, INSTALL_ROUTES, type LayerRef } from '../../../common/protocol.js';
import { bearer, fixture, LAYOUT, type Fixture } from './app-fixture.js';

const paths = (r: { json(): any }) => r.json().error.details.problems.map((p: any) => p.path);

describe('installer API, blobs and network boot (fastify inject)', () => {
  let f: Fixture;
  let layer: LayerRef;
  let other: LayerRef;
  let token: string;
  const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));

  beforeAll(async () => {
    f = await fixture();
    layer = await f.layer(bytes);
    other = await f.layer(Buffer.from('another layer'));
    f.image('base', [layer]);
    f.image('other', [other]);
    addNode(f.ctx.data, 'web1', { macs: ['52:54:00:aa:00:01'], image: 'base', layoutXml: LAYOUT, inputs: { hostname: 'web1' } }, 'test');
    token = armDeployment(f.ctx.data, 'web1', { actor: 'test' }).token;
  });
  afterAll(() => f?.close());

  it('bounds requests as before: 1 MiB bodies, headers in 30 s, the request in 120 s, keep-alive 10 s', () => {
    expect(f.app.initialConfig.bodyLimit).toBe(1 << 20);
    expect(f.app.server.headersTimeout).toBe(30_000);
    expect(f.app.server.requestTimeout).toBe(120_000);
    expect(f.app.server.keepAliveTimeout).toBe(10_000);
  });

  it('GET config answers the deployment with its image, layout and transport', async () => {
    const r = await f.app.inject({ method: 'GET', url: INSTALL_ROUTES.config, headers: bearer(token) });
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    const cfg = r.json();
    expect(cfg.node.name).toBe('web1');
    expect(cfg.image.layers).toEqual([layer]);
    expect(cfg.layout.xml).toBe(LAYOUT);
    expect(cfg.transport).toEqual({ kind: 'http', baseUrl: 'http://ferry.test:8080' });
  });

  it('installer routes need a deploy token, and check the method first', async () => {
    const none = await f.app.inject({ method: 'GET', url: INSTALL_ROUTES.config });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="ferry"');
    expect(none.json().error.code).toBe('FERRY_E_TOKEN_MISSING');
    const admin = await f.app.inject({ method: 'GET', url: INSTALL_ROUTES.config, headers: bearer(f.admin) });
    expect(admin.statusCode).toBe(403);
    expect(admin.json().error.code).toBe('FERRY_E_FORBIDDEN');
    const wrong = await f.app.inject({ method: 'GET', url: INSTALL_ROUTES.events });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.json().error).toMatchObject({ code: 'FERRY_E_METHOD_NOT_ALLOWED', details: { allowed: ['POST'] } });
  });

  it('expired and revoked deploy tokens are refused on the installer API and on blobs', async () => {
    addNode(f.ctx.data, 'e1', { macs: ['52:54:00:aa:00:0e'], image: 'base', layoutXml: LAYOUT }, 'test');
    const first = armDeployment(f.ctx.data, 'e1', { actor: 'test' });
    const second = armDeployment(f.ctx.data, 'e1', { actor: 'test' });
    const revoked = await f.app.inject({ method: 'GET', url: INSTALL_ROUTES.config, headers: bearer(first.token) });
    expect(revoked.statusCode).toBe(401);
    expect(revoked.json().error.code).toBe('FERRY_E_TOKEN_REVOKED');
    f.ctx.data.db.prepare('UPDATE deployments SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), second.id);
    for (const url of [INSTALL_ROUTES.config, blobPath(layer.digest)]) {
      const r = await f.app.inject({ method: 'GET', url, headers: bearer(second.token) });
      expect(r.statusCode, url).toBe(401);
      expect(r.json().error).toMatchObject({ code: 'FERRY_E_TOKEN_EXPIRED', hint: expect.stringMatching(/arm the node again/) });
    }
    expect((await f.app.inject({ method: 'GET', url: INSTALL_ROUTES.config, headers: { authorization: 'Bearer ' } })).json().error.code).toBe('FERRY_E_TOKEN_INVALID');
  });

  it('POST events stores them and names every bad field by its JSON path', async () => {
    const ok = await f.app.inject({ method: 'POST', url: INSTALL_ROUTES.events, headers: bearer(token), payload: { events: [{ phase: 'disks', state: 'start' }, { phase: 'layers', state: 'progress', bytes: 1, total: 2 }] } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ ok: true, stored: 2 });
    const bad = await f.app.inject({ method: 'POST', url: INSTALL_ROUTES.events, headers: bearer(token), payload: { events: [{ phase: '', state: 'nope', bytes: -1, ts: 'soon' }, 'x'] } });
    expect(bad.statusCode).toBe(400);
    const e = bad.json().error;
    expect(e.code).toBe('FERRY_E_BAD_REQUEST');
    expect(e.hint).toMatch(/correct every problem/);
    expect(e.details.problems).toEqual([
      { severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$.events[0].phase', message: expect.stringMatching(/1-64 characters/) },
      { severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$.events[0].state', message: expect.stringMatching(/one of start, progress/) },
      { severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$.events[0].bytes', message: 'must be a non-negative number' },
      { severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$.events[0].ts', message: 'must be an ISO 8601 time' },
      { severity: 'error', code: 'FERRY_E_BAD_REQUEST', path: '$.events[1]', message: 'must be an object' },
    ]);
    expect(paths(await f.app.inject({ method: 'POST', url: INSTALL_ROUTES.events, headers: bearer(token), payload: {} }))).toEqual(['$.events']);
  });

  it('bodies: malformed, empty, not JSON, too large, without a Content-Type', async () => {
    const post = (payload: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => f.app.inject({ method: 'POST', url: INSTALL_ROUTES.events, headers: { ...bearer(token), ...headers }, payload });
    const broken = await post('{"events": [');
    expect(broken.statusCode).toBe(400);
    expect(broken.json().error.code).toBe('FERRY_E_BAD_JSON');
    expect(paths(broken)).toEqual(['$']);
    const empty = await post('');
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.details.problems[0]).toMatchObject({ code: 'FERRY_E_BAD_JSON', path: '$' });
    const form = await post('x=1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.statusCode).toBe(415);
    expect(form.json().error.code).toBe('FERRY_E_UNSUPPORTED_MEDIA_TYPE');
    const huge = await post(JSON.stringify({ events: [{ phase: 'x', state: 'info', message: 'x'.repeat(1 << 20) }] }));
    expect(huge.statusCode).toBe(413);
    expect(huge.headers.connection).toBe('close');
    expect(huge.json().error).toMatchObject({ code: 'FERRY_E_BODY_TOO_LARGE', details: { limit: 1 << 20 } });
    const bare = await f.app.inject({ method: 'POST', url: INSTALL_ROUTES.events, headers: bearer(token), payload: Buffer.from('{"events":[]}') });
    expect(bare.statusCode).toBe(200);
  });

  it('POST result: a failure needs its error; success switches the node to local boot, once', async () => {
    addNode(f.ctx.data, 'r1', { macs: ['52:54:00:aa:00:09'], image: 'base', layoutXml: LAYOUT }, 'test');
    const t = armDeployment(f.ctx.data, 'r1', { actor: 'test' }).token;
    const post = (payload: unknown) => f.app.inject({ method: 'POST', url: INSTALL_ROUTES.result, headers: bearer(t), payload: payload as object });
    expect(paths(await post({ status: 'failed' }))).toEqual(['$.error']);
    expect(paths(await post({ status: 'maybe' }))).toEqual(['$.status']);
    expect(paths(await post({ status: 'failed', error: { code: 5 } }))).toEqual(['$.error.message', '$.error.code']);
    expect((await post({ status: 'success' })).json()).toEqual({ ok: true });
    // The token ended with its deployment: a second result is refused at the door.
    const again = await post({ status: 'success' });
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe('FERRY_E_TOKEN_ENDED');
  });

  it('blobs: GET, HEAD, Range, If-None-Match; scoped to the deployment; digests checked before tokens', async () => {
    const url = blobPath(layer.digest);
    const r = await f.app.inject({ method: 'GET', url, headers: bearer(token) });
    expect(r.statusCode).toBe(200);
    expect('sha256:' + createHash('sha256').update(r.rawPayload).digest('hex')).toBe(layer.digest);
    expect(r.headers).toMatchObject({ etag: `"${layer.digest}"`, 'accept-ranges': 'bytes', 'cache-control': 'public, max-age=31536000, immutable' });
    const head = await f.app.inject({ method: 'HEAD', url, headers: bearer(f.admin) });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(bytes.length));
    expect(head.rawPayload.length).toBe(0);
    const part = await f.app.inject({ method: 'GET', url, headers: { ...bearer(token), range: 'bytes=10-19' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${bytes.length}`);
    expect(part.rawPayload.equals(bytes.subarray(10, 20))).toBe(true);
    expect((await f.app.inject({ method: 'GET', url, headers: { ...bearer(token), 'if-none-match': `"${layer.digest}"` } })).statusCode).toBe(304);
    expect((await f.app.inject({ method: 'GET', url, headers: { ...bearer(token), range: 'bytes=999999-' } })).statusCode).toBe(416);
    const scoped = await f.app.inject({ method: 'GET', url: blobPath(other.digest), headers: bearer(token) });
    expect(scoped.statusCode).toBe(403);
    expect(scoped.json().error.code).toBe('FERRY_E_FORBIDDEN');
    const noToken = await f.app.inject({ method: 'GET', url });
    expect(noToken.statusCode).toBe(401);
    const badDigest = await f.app.inject({ method: 'GET', url: '/blobs/sha256:..%2f..%2fadmin.token' });
    expect(badDigest.statusCode).toBe(400);
    expect(badDigest.json().error.code).toBe('FERRY_E_BAD_DIGEST');
    expect((await f.app.inject({ method: 'GET', url: '/blobs/a/b', headers: bearer(f.admin) })).json().error.code).toBe('FERRY_E_BAD_DIGEST');
    expect((await f.app.inject({ method: 'PUT', url })).statusCode).toBe(405);
    const gone = await f.layer(Buffer.from('removed later'));
    rmSync(f.ctx.data.blobs.path(gone.digest));
    const missing = await f.app.inject({ method: 'GET', url: blobPath(gone.digest), headers: bearer(f.admin) });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('FERRY_E_BLOB_MISSING');
  });

  it('boot: iPXE script per MAC, unknown MACs discovered, bad MACs refused, boot files served', async () => {
    const armed = await f.app.inject({ method: 'GET', url: '/boot/ipxe?mac=52-54-00-AA-00-01' });
    expect(armed.statusCode).toBe(200);
    expect(armed.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(armed.body).toMatch(/^#!ipxe/);
    expect(armed.body).toContain(`ferry.token=${token}`);
    const unknown = await f.app.inject({ method: 'GET', url: '/boot/ipxe?mac=02:00:00:00:00:99' });
    expect(unknown.body).toContain('exit');
    const d = await f.app.inject({ method: 'GET', url: '/api/v1/admin/discovered', headers: bearer(f.admin) });
    expect(d.json().discovered.map((x: any) => x.mac)).toContain('02:00:00:00:00:99');
    const bad = await f.app.inject({ method: 'GET', url: '/boot/ipxe?mac=zz' });
    expect(bad.statusCode).toBe(400);
    expect(paths(bad)).toEqual(['mac']);
    expect((await f.app.inject({ method: 'POST', url: '/boot/ipxe' })).statusCode).toBe(405);
    const k = await f.app.inject({ method: 'GET', url: '/boot/vmlinuz' });
    expect(k.statusCode).toBe(200);
    expect(k.rawPayload.length).toBe(12_345);
    expect((await f.app.inject({ method: 'HEAD', url: '/boot/vmlinuz' })).headers['content-length']).toBe('12345');
    const initrd = await f.app.inject({ method: 'GET', url: '/boot/initrd.img' });
    expect(initrd.statusCode).toBe(404);
    expect(initrd.json().error.code).toBe('FERRY_E_BOOT_FILE_MISSING');
    expect(join(f.ctx.bootDir, 'x')).toContain(f.dir);
  });

  it('anything else is 404 with the ErrorBody; unknown /api URLs still need the admin token', async () => {
    const r = await f.app.inject({ method: 'GET', url: '/nothing/here?x=1' });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ error: { code: 'FERRY_E_NOT_FOUND', message: 'nothing at /nothing/here', hint: expect.any(String), details: { path: '/nothing/here' } } });
    expect((await f.app.inject({ method: 'GET', url: '/api/v1/admin/nope' })).statusCode).toBe(401);
    expect((await f.app.inject({ method: 'GET', url: '/api/v1/admin/nope', headers: bearer(token) })).statusCode).toBe(403);
    expect((await f.app.inject({ method: 'GET', url: '/api/v1/install/nope', headers: bearer(token) })).statusCode).toBe(403);
    expect((await f.app.inject({ method: 'GET', url: '/api/v1/admin/nope', headers: bearer(f.admin) })).statusCode).toBe(404);
    const badUrl = await f.app.inject({ method: 'GET', url: '/api/v1/admin/nodes/%zz', headers: bearer(f.admin) });
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.json().error.code).toMatch(/^FERRY_E_/);
  });
});

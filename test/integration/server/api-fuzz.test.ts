/**
 * Fuzz every route of the real server on loopback (issue 12): the route list is the app's own
 * (server/api/app.ts routesOf, from fastify's onRoute hook), so a new route is fuzzed without
 * touching this file. For each route, with no token, a wrong one, the admin token, a deploy
 * token and a console session: seeded random bytes, truncated JSON, a body over the 1 MiB cap,
 * wrong content types, JSON nested 100,000 deep, huge and odd query strings, odd Range headers,
 * odd path parameters, and bodies sent slowly and never finished. Every answer must be a 4xx
 * with Ferry's error body and a code from docs/errors.md (or the route's own 2xx/3xx), never a
 * 5xx, within a bounded time; the server must answer normal requests afterwards.
 *
 * FERRY_FUZZ_SEED=N replays a run; FERRY_FUZZ_ROUNDS=N (default 1) sends more per route.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedMap } from '../../../common/bounded.js';
import { INSTALL_ROUTES } from '../../../common/protocol.js';
import { armDeployment } from '../../../server/db/deployments.js';
import { addNode } from '../../../server/db/inventory.js';
import { importImage } from '../../../server/store/image-import.js';
import { call, harness, LAYOUT, smallTree, type Harness } from './helpers.js';

const SEED = Number(process.env.FERRY_FUZZ_SEED ?? (Date.now() % 2 ** 31));
const ROUNDS = Math.max(1, Math.min(20, Number(process.env.FERRY_FUZZ_ROUNDS ?? 1)));
/** Each answer must come within this (the server's own request timeout is 120 s). */
const ANSWER_MS = 15_000;
const CAP = 1024 * 1024;
const CODES = new Set([...readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8').matchAll(/^### (FERRY_[EW]_[A-Z0-9_]+)/gm)].map((m) => m[1]));

/** A small seeded generator (mulberry32): the same seed, the same requests. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)],
    bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * One request on a raw socket, written exactly as given (no client normalises the path or refuses
 * odd headers). `slow`: write the body in pieces with pauses and never finish it (FIN after the
 * pieces). Resolves with the answer, or undefined when the server closed without one.
 */
function send(port: number, r: { method: string; path: string; headers?: Record<string, string>; body?: Buffer; contentLength?: number; slow?: { pieces: number; pauseMs: number } }): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let answered = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${ANSWER_MS} ms`));
    }, ANSWER_MS);
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(parse(Buffer.concat(chunks), r.method));
    };
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      answered = true;
      // An event stream never ends: its head is the answer.
      const all = Buffer.concat(chunks).toString('latin1');
      if (/^HTTP\/1\.1 2\d\d[\s\S]*?content-type: text\/event-stream[\s\S]*?\r\n\r\n/i.test(all)) finish();
    });
    sock.on('end', finish);
    sock.on('close', finish);
    // A refused body may reset the connection while it is still being written; what came first counts.
    sock.on('error', () => finish());
    const head = [`${r.method} ${r.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    const len = r.contentLength ?? r.body?.length;
    for (const [k, v] of Object.entries(r.headers ?? {})) head.push(`${k}: ${v}`);
    if (len !== undefined) head.push(`Content-Length: ${len}`);
    sock.write(head.join('\r\n') + '\r\n\r\n');
    const body = r.body ?? Buffer.alloc(0);
    if (r.slow) {
      const step = Math.max(1, Math.ceil(body.length / r.slow.pieces));
      let i = 0;
      const tick = () => {
        if (answered || sock.destroyed) return;
        if (i >= body.length) {
          sock.end();
          return;
        }
        sock.write(body.subarray(i, (i += step)));
        setTimeout(tick, r.slow!.pauseMs);
      };
      tick();
      return;
    }
    // Large bodies in pieces, stopping as soon as the server has answered (413 closes).
    let off = 0;
    const pump = () => {
      while (off < body.length && !answered && !sock.destroyed) {
        const ok = sock.write(body.subarray(off, (off += 64 * 1024)));
        if (!ok) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

function parse(raw: Buffer, method: string): Answer | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0].slice(0, 200))}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (method === 'HEAD') body = Buffer.alloc(0);
  else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const out: Buffer[] = [];
    let p = 0;
    for (;;) {
      const nl = body.indexOf('\r\n', p);
      if (nl < 0) break;
      const n = parseInt(body.subarray(p, nl).toString('latin1'), 16);
      if (!(n > 0)) break;
      out.push(body.subarray(nl + 2, nl + 2 + n));
      p = nl + 2 + n + 2;
    }
    body = Buffer.concat(out);
  } else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  return { status: Number(m[1]), headers, body };
}

/** Values for path parameters: plausible, hostile and odd. */
const PARAMS = [
  'x', 'web01', 'sha256:' + 'ab'.repeat(32), 'sha256:' + 'zz'.repeat(32), '..%2f..%2fetc%2fpasswd', '%2e%2e', '%00', '%ff%fe', '%E2%80%A8',
  'a'.repeat(900), '%25%32%65', '1', '-1', '99999999999999999999', '0x10', 'null', '__proto__', 'constructor', "'%20OR%201=1--", '%0d%0aX-Evil:%201',
];
const QUERIES = [
  '?' + 'a=' + 'x'.repeat(60_000),
  '?' + Array.from({ length: 3000 }, (_, i) => `k=${i}`).join('&'),
  // Under Node's 16 KiB header limit, so they reach the routes.
  '?a=' + 'x'.repeat(12_000),
  '?' + Array.from({ length: 1500 }, (_, i) => `k${i % 7}=${i}`).join('&'),
  '?%zz&&==&a[b][c]=1&__proto__[x]=1&constructor[prototype][x]=1',
  '?layer=sha256:' + 'ab'.repeat(32) + '&info_hash=%00%01&peer_id=&port=99999&left=-1&compact=2',
  '?limit=-1&offset=1e309&since=NaN&node=%0a&status[]=x',
  '?' + '%'.repeat(500),
  '?;;;&#',
  '?q=' + encodeURIComponent('\u202e\u0000\u001b]52;c;'),
];
const RANGES = [
  'bytes=-', 'bytes=99999999999999999999-', 'bytes=5-1', Array.from({ length: 500 }, (_, i) => `${i}-${i}`).join(',').replace(/^/, 'bytes='),
  'items=0-1', 'bytes=-0', 'bytes=0--1', 'bytes= 1 - 2 ', '\u00ff\u00fe', 'bytes=0-' + '9'.repeat(400),
];
const TYPES = ['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/json; charset=' + 'x'.repeat(300), 'application/jsonx', '*/*', ''];
const VALID = JSON.stringify({
  events: [{ phase: 'layers', state: 'info', message: 'm', details: { a: [1, 2, { b: 'c' }] } }],
  status: 'success', name: 'n1', image: 'img', macs: ['02:00:00:00:00:01'], token: 'x', properties: { a: 'b' }, layout: '<config/>',
});

describe('API fuzz: every route, hostile bytes', () => {
  let h: Harness;
  let port: number;
  let admin: string;
  let deploy: string;
  let cookie: string;
  let csrf: string;
  const failures: string[] = [];
  let sent = 0;

  beforeAll(async () => {
    h = await harness();
    port = h.srv.port;
    admin = h.srv.adminToken;
    await importImage(h.data, 'fz', { dir: smallTree(join(h.tmp, 'tree')), actor: 'test' });
    addNode(h.data, 'fz1', { macs: ['02:00:00:00:00:f1'], image: 'fz', layoutXml: LAYOUT }, 'test');
    deploy = armDeployment(h.data, 'fz1', { actor: 'test' }).token;
    const login = await call(h.srv.url, 'POST', '/ui/login', { body: { token: admin } });
    expect(login.status).toBe(200);
    cookie = String(login.headers['set-cookie']).split(';')[0];
    csrf = login.json.csrf;
  });
  afterAll(async () => {
    await h?.close();
  });

  function check(what: string, a: Answer | undefined, allowNone: boolean): void {
    sent++;
    if (!a) {
      if (!allowNone) failures.push(`${what}: the connection closed without an answer`);
      return;
    }
    // The web console's bundle is built by `make build`; without it its files are a coded 503.
    if (a.status === 503 && /FERRY_E_UI_NOT_BUILT/.test(a.body.toString('utf8')) && what.includes('[/ui/app.')) return;
    if (a.status >= 500) {
      failures.push(`${what}: ${a.status} ${a.body.toString('utf8').slice(0, 300)}`);
      return;
    }
    if (a.status >= 300 && a.status < 400) {
      if (!a.headers.location) failures.push(`${what}: ${a.status} without a Location`);
      return;
    }
    if (a.status < 400 || what.startsWith('HEAD')) return;
    let code: unknown;
    try {
      code = JSON.parse(a.body.toString('utf8')).error?.code;
    } catch {
      code = undefined;
    }
    if (typeof code !== 'string' || !CODES.has(code)) failures.push(`${what}: ${a.status} without a catalogued Ferry error code: ${a.body.toString('utf8').slice(0, 200)}`);
  }

  it('answers every route with a 4xx and a catalogued code (or its own 2xx), never a 5xx, in bounded time', async () => {
    const routes = h.srv.routes;
    // Every resource module is in the list (a route added to any of them is fuzzed).
    expect(routes.length).toBeGreaterThan(40);
    if (process.env.FERRY_FUZZ_ROUTES) console.log(routes.map((r) => `${r.method} ${r.url} ${r.auth}`).join('\n'));
    for (const p of ['/api/v1/install/config', '/blobs/', '/ui/login', '/api/v1/admin/deployments']) expect(routes.some((r) => r.url === p || r.url.startsWith(p)), p).toBe(true);
    const rnd = rng(SEED);
    const creds: [string, Record<string, string>][] = [
      ['no token', {}],
      ['a wrong token', { authorization: 'Bearer ferry-deploy-' + randomBytes(8).toString('hex') }],
      ['the admin token', { authorization: `Bearer ${admin}` }],
      ['a deploy token', { authorization: `Bearer ${deploy}` }],
      ['a session', { cookie, 'x-ferry-csrf': csrf }],
      ['odd authorization', { authorization: rnd.pick(['Bearer', 'Basic Zm9vOmJhcg==', 'Bearer ' + 'x'.repeat(8000), 'bearer  ' + admin + ' x']) }],
    ];
    type Case = { what: string; method: string; path: string; headers: Record<string, string>; body?: Buffer; contentLength?: number; slow?: { pieces: number; pauseMs: number }; allowNone?: boolean };
    const cases: Case[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of routes) {
        const fill = () => r.url.replace(/:[A-Za-z0-9_]+|\*/g, () => rnd.pick(PARAMS));
        const hasBody = !['GET', 'HEAD', 'OPTIONS'].includes(r.method);
        for (const [who, auth] of creds) {
          const base = { method: r.method, headers: { ...auth } };
          const tag = (k: string, path: string) => `${r.method} ${path.slice(0, 160)} [${r.url}] with ${who}: ${k}`;
          let path = fill();
          cases.push({ ...base, path, what: tag('random bytes', path), headers: { ...auth, 'content-type': 'application/json' }, body: rnd.bytes(rnd.int(4096)) });
          path = fill();
          cases.push({ ...base, path, what: tag('truncated JSON', path), headers: { ...auth, 'content-type': 'application/json' }, body: Buffer.from(VALID.slice(0, 1 + rnd.int(VALID.length - 1))) });
          path = fill();
          const t = rnd.pick(TYPES);
          cases.push({ ...base, path, what: tag(`content type ${JSON.stringify(t.slice(0, 40))}`, path), headers: t ? { ...auth, 'content-type': t } : { ...auth }, body: Buffer.from(VALID) });
          path = fill();
          const deep = rnd.next() < 0.5 ? '['.repeat(100_000) + ']'.repeat(100_000) : '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000);
          cases.push({ ...base, path, what: tag('nested JSON', path), headers: { ...auth, 'content-type': 'application/json' }, body: Buffer.from(deep) });
          path = fill() + rnd.pick(QUERIES);
          cases.push({ ...base, path, what: tag('odd query', path), headers: { ...auth }, body: hasBody ? Buffer.from('{}') : undefined });
          path = fill();
          const range = rnd.pick(RANGES);
          cases.push({ ...base, path, what: tag(`Range ${range.slice(0, 40)}`, path), headers: { ...auth, range, 'if-range': rnd.pick(['"x"', 'Thu, 01 Jan 1970 00:00:00 GMT', '\u00ff']) } });
        }
        // Once per route: over the cap, a lying Content-Length, and a body never finished.
        const [who, auth] = rnd.pick(creds);
        let path = fill();
        cases.push({ method: r.method, path, what: `${r.method} ${path.slice(0, 160)} [${r.url}] with ${who}: ${CAP + 4096} bytes`, headers: { ...auth, 'content-type': 'application/json' }, body: Buffer.alloc(CAP + 4096, 0x20), allowNone: true });
        path = fill();
        cases.push({ method: r.method, path, what: `${r.method} ${path.slice(0, 160)} [${r.url}] with ${who}: Content-Length 10 GB`, headers: { ...auth, 'content-type': 'application/json' }, contentLength: 10 * 1024 ** 3, body: Buffer.from('{"a":'), slow: { pieces: 1, pauseMs: 0 }, allowNone: true });
        path = fill();
        cases.push({ method: r.method, path, what: `${r.method} ${path.slice(0, 160)} [${r.url}] with ${who}: half-sent slow body`, headers: { ...auth, 'content-type': 'application/json' }, contentLength: VALID.length + 100, body: Buffer.from(VALID), slow: { pieces: 4, pauseMs: 40 }, allowNone: true });
      }
    }
    // At most 8 at once: well under the 64 connections one client address may hold.
    await boundedMap(cases, 8, async (c) => {
      let a: Answer | undefined;
      try {
        a = await send(port, c);
      } catch (e) {
        failures.push(`${c.what}: ${(e as Error).message}`);
        return;
      }
      check(c.what, a, c.allowNone ?? false);
    });
    console.log(`api fuzz: ${routes.length} routes, ${sent} requests, seed ${SEED}`);
    // One line per kind of failure (route pattern and answer), so a run shows every class at once.
    const kinds = new Map<string, number>();
    for (const f of failures) {
      const k = f.replace(/^(\S+) \S+ (\[[^\]]*\]).*?: ([^:]+: )?(.{0,120}).*$/, '$1 $2 $4');
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    for (const [k, n] of kinds) console.log(`${n} x ${k}`);
    expect(failures.slice(0, 40), `seed ${SEED} (FERRY_FUZZ_SEED=${SEED} replays it); ${failures.length} failures`).toEqual([]);
  }, 600_000);

  it('still answers normal requests afterwards', async () => {
    const d = await call(h.srv.url, 'GET', '/api/v1/admin/deployments', { token: admin });
    expect(d.status).toBe(200);
    // A fresh deployment: the fuzz may have ended fz1's (a result or cancel body can be valid).
    addNode(h.data, 'fz2', { macs: ['02:00:00:00:00:f2'], image: 'fz', layoutXml: LAYOUT }, 'test');
    const c = await call(h.srv.url, 'GET', INSTALL_ROUTES.config, { token: armDeployment(h.data, 'fz2', { actor: 'test' }).token });
    expect(c.status).toBe(200);
    expect(c.json.node.name).toBe('fz2');
    // The fuzz may have logged the session out (POST /ui/logout with its CSRF header): log in again.
    const login = await call(h.srv.url, 'POST', '/ui/login', { body: { token: admin } });
    expect(login.status).toBe(200);
    const s = await call(h.srv.url, 'GET', '/ui/session', { headers: { cookie: String(login.headers['set-cookie']).split(';')[0] } });
    expect(s.json.session).toBe(true);
  });
});

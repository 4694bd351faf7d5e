/** The installer's server client: retries with backoff on network errors and 5xx, 4xx final, batched events. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventSender, ServerClient } from '../../installer/client.js';

let srv: http.Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (srv ? (srv.closeAllConnections(), srv.close(() => r())) : r()));
  srv = undefined;
});

async function fake(handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void): Promise<string> {
  srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((r) => srv!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

const FAST = { baseMs: 10, maxMs: 50, giveUpAfterMs: 5000 };

describe('server client', () => {
  it('retries the configuration on 5xx and reset connections, then succeeds', async () => {
    let n = 0;
    const url = await fake((req, _b, res) => {
      n++;
      if (n === 1) return res.writeHead(503).end('busy');
      if (n === 2) return req.socket.destroy();
      expect(req.headers.authorization).toBe('Bearer tok');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node: { name: 'x' } }));
    });
    const c = new ServerClient({ server: url, token: 'tok', backoff: FAST });
    expect(await c.getConfig()).toEqual({ node: { name: 'x' } });
    expect(n).toBe(3);
  });

  it('stops at a 4xx and explains it, without retrying', async () => {
    let n = 0;
    const url = await fake((_r, _b, res) => {
      n++;
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'FERRY_E_UNAUTHORIZED', message: 'token expired' } }));
    });
    const err = await new ServerClient({ server: url, token: 't', backoff: FAST }).getConfig().catch((e) => e);
    expect(err.code).toBe('FERRY_E_TOKEN_REJECTED');
    expect(err.message).toContain('token expired');
    expect(err.hint).toMatch(/arm the node again/);
    expect(n).toBe(1);
  });

  it('gives up on an unreachable server after the retry budget, saying so', async () => {
    const c = new ServerClient({ server: 'http://127.0.0.1:9', token: 't', backoff: { baseMs: 5, maxMs: 20, giveUpAfterMs: 200 } });
    const err = await c.getConfig().catch((e) => e);
    expect(err.code).toBe('FERRY_E_SERVER_UNREACHABLE');
    expect(err.message).toMatch(/gave up/);
  });

  it('sends events in batches, keeps them while the server fails, and delivers them later', async () => {
    const got: unknown[][] = [];
    let fail = 2;
    const url = await fake((_r, body, res) => {
      if (fail-- > 0) return res.writeHead(502).end();
      got.push(JSON.parse(body).events);
      res.writeHead(200).end('{"ok":true}');
    });
    const s = new EventSender(new ServerClient({ server: url, token: 't', backoff: FAST }), { intervalMs: 10, batch: 3, heartbeatMs: 20 });
    s.start();
    for (let i = 0; i < 7; i++) s.push({ phase: 'layers', state: 'progress', bytes: i });
    expect(await s.close(5000)).toBe(true);
    const all = got.flat() as Array<{ bytes?: number; state: string }>;
    expect(all.filter((e) => e.state === 'progress').map((e) => e.bytes)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(got.every((b) => b.length <= 3)).toBe(true);
  });

  it('sends heartbeats with jitter while nothing else happens', async () => {
    const beats: number[] = [];
    const url = await fake((_r, body, res) => {
      for (const e of JSON.parse(body).events) if (e.state === 'heartbeat') beats.push(Date.now());
      res.writeHead(200).end('{"ok":true}');
    });
    const s = new EventSender(new ServerClient({ server: url, token: 't', backoff: FAST }), { intervalMs: 5, heartbeatMs: 40 });
    s.start();
    const { waitFor } = await import('../../common/wait.js');
    await waitFor(() => beats.length >= 3, { what: 'three heartbeats', timeoutMs: 5000 });
    await s.close(1000);
    const gaps = beats.slice(1).map((t, i) => t - beats[i]);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(20);
  });
});

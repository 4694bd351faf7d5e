/**
 * `ferry serve --session-idle / --session-max-age`, through the real command: the session
 * cookie's lifetime, a session ending after its idle time, and limits that contradict refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readServerInfo } from '../../common/cli.js';
import { run, spawnTool } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import { tempDir } from './server/helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', 'bin', 'ferry');

describe('ferry serve session options', () => {
  it('gives the session cookie the lifetime asked for, and ends a session idle longer than asked', async () => {
    const t = tempDir();
    const dataDir = join(t.dir, 'data');
    const s = spawnTool([FERRY, 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--session-idle', '2', '--session-max-age', '1h'], { stdout: 'ignore', timeoutMs: 120_000 });
    s.done.catch(() => {});
    try {
      const info = await waitFor(() => readServerInfo(dataDir), { what: 'the spawned server to start', timeoutMs: 60_000 });
      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const login = await fetch(`${info.url}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
      expect(login.status).toBe(200);
      expect(await login.json()).toMatchObject({ session: true, idleSeconds: 2 });
      const cookie = login.headers.get('set-cookie')!;
      expect(cookie).toMatch(/Max-Age=3600(;|$)/);
      const sid = /ferry_session=([^;]+)/.exec(cookie)![1];
      const session = async () => (await (await fetch(`${info.url}/ui/session`, { headers: { cookie: `ferry_session=${sid}` } })).json()) as { session: boolean; why?: string };
      expect((await session()).session).toBe(true);
      // Left alone past its 2 s idle time, the session is over (and the admin API refuses its cookie).
      await waitFor(async () => ((await session()).why === 'expired' ? true : undefined), { what: 'the idle session to expire', timeoutMs: 15_000, intervalMs: 2_500 });
      expect((await fetch(`${info.url}/api/v1/admin/nodes`, { headers: { cookie: `ferry_session=${sid}` } })).status).toBe(401);
    } finally {
      s.child.kill('SIGTERM');
      await s.done.catch(() => {});
      t.cleanup();
    }
  });

  it('refuses an idle time longer than the lifetime, and what is not a duration', async () => {
    const t = tempDir();
    try {
      const r = await run([FERRY, 'serve', '--listen', '127.0.0.1:0', '--data', join(t.dir, 'a'), '--session-idle', '2h', '--session-max-age', '1h'], { okCodes: [1, 2], timeoutMs: 120_000 });
      expect(r.stderr).toContain('FERRY_E_BAD_VALUE');
      expect(r.stderr).toContain('--session-idle 2h is longer than --session-max-age 1h');
      const bad = await run([FERRY, 'serve', '--listen', '127.0.0.1:0', '--data', join(t.dir, 'b'), '--session-max-age', 'forever'], { okCodes: [1, 2], timeoutMs: 120_000 });
      expect(bad.stderr).toContain('"forever" is not a duration');
    } finally {
      t.cleanup();
    }
  });
});

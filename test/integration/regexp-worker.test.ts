/**
 * A regexp customization item that backtracks catastrophically, in a real install against the
 * real server: the item runs in a worker thread (installer/customize/regexp.ts), so the node's
 * heartbeats keep arriving while it runs, and the install ends at the limit with
 * FERRY_E_CUSTOMIZE_INPUT naming the file and the pattern (before, node:vm ran it on the main
 * thread and no heartbeat was sent for the whole 5 s).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../../common/progress.js';
import { REGEXP_TIME_LIMIT_MS } from '../../installer/customize/regexp.js';
import { runInstall } from '../../installer/install.js';
import { FerryServer } from './helpers/ferry-server.js';

let work: string;
let server: FerryServer;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-rxw-'));
  server = await FerryServer.start();
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('regexp items off the main thread', () => {
  it('keeps sending heartbeats while a catastrophic pattern runs, then fails with the file and pattern', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(src, 'etc/motd'), 'a'.repeat(40) + 'b\n');
    await server.image('rx', src, [
      { kind: 'regexp', path: '/etc/motd', pattern: '^a', replacement: 'a' },
      { kind: 'regexp', path: '/etc/motd', pattern: '(a+)+$', replacement: 'x' },
    ]);
    const armed = server.arm('rx1', 'rx');
    const dst = path.join(work, 'dst');
    fs.mkdirSync(dst);
    const events: ProgressEvent[] = [];
    const outcome = await runInstall({
      server: server.url, token: armed.token, root: dst, yes: true, initramfs: false, console: () => {}, heartbeatMs: 100,
      backoff: { baseMs: 20, maxMs: 200, giveUpAfterMs: 30_000 },
      onEvent: (e) => events.push(e),
    });
    expect(outcome.result.status).toBe('failed');
    const rec = server.deployment(armed.id);
    expect(rec.row.status).toBe('failed');
    const err = rec.events.find((e) => e.state === 'error')!;
    expect(err).toMatchObject({ phase: 'customize' });
    expect(err.code).toBe('FERRY_E_CUSTOMIZE_INPUT');
    expect(err.message).toContain('/etc/motd');
    expect(err.message).toContain('/(a+)+$/');
    // Heartbeats stamped while customize was planning: the main thread was never blocked.
    const start = Date.parse(rec.events.find((e) => e.phase === 'customize' && e.state === 'start')!.ts!);
    const end = Date.parse(err.ts!);
    expect(end - start).toBeGreaterThanOrEqual(REGEXP_TIME_LIMIT_MS - 200);
    const beats = rec.events.filter((e) => e.state === 'heartbeat' && Date.parse(e.ts!) > start && Date.parse(e.ts!) < end);
    // One every 100 ms (with jitter) over 5 s; a blocked main thread would send none.
    expect(beats.length).toBeGreaterThanOrEqual(10);
    // Nothing of the failed plan was applied.
    expect(fs.readFileSync(path.join(dst, 'etc/motd'), 'utf8')).toBe('a'.repeat(40) + 'b\n');
  }, 60_000);
});

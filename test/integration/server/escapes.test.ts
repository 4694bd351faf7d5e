/**
 * Terminal escapes from a deploy token (anyone on the boot network can read one) never reach the
 * operator's terminal: hostile event and result text through a real server, read back with the
 * real CLI (`history`, `history --record --all`, `monitor --once`, `node list`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, spawnTool, type Spawned } from '../../../common/run.js';
import { waitFor } from '../../../common/wait.js';
import { INSTALL_ROUTES } from '../../../common/protocol.js';
import { call, LAYOUT, smallTree, tempDir } from './helpers.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
// Screen clear, window title, OSC 52 clipboard write, a CSI in its 8-bit form, BEL, a bidi override.
const HOSTILE = ['\x1b[2J\x1b[H', '\x1b]0;owned\x07', '\x1b]52;c;cm0gLXJmIH4K\x07', '\u009b2J', '\x07', '\u202e', '\r\nfake line'];
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

describe('stored text printed by the CLI', () => {
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let server: Spawned | undefined;
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args, '--data', data], { okCodes, timeoutMs: 60_000 });

  beforeAll(() => {
    t = tempDir('ferry-escapes-');
    data = join(t.dir, 'data');
    smallTree(join(t.dir, 'tree'));
    writeFileSync(join(t.dir, 'layout.xml'), LAYOUT);
  });
  afterAll(async () => {
    if (server) {
      server.child.kill('SIGTERM');
      await server.done.catch(() => {});
    }
    t?.cleanup();
  });

  it('escapes control characters from events and results in history and monitor', async () => {
    await ferry(['image', 'import', 'base', '--dir', join(t.dir, 'tree')]);
    await ferry(['node', 'add', 'n1', '--mac', '52:54:00:00:10:01', '--image', 'base', '--layout', join(t.dir, 'layout.xml')]);
    server = spawnTool([FERRY, 'serve', '--data', data, '--listen', '127.0.0.1:0'], { timeoutMs: 600_000 });
    server.child.stdin!.end();
    let out = '';
    server.child.stdout!.on('data', (b) => (out += b));
    const url = await waitFor(() => /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], { what: 'ferry serve to print its URL', timeoutMs: 30_000 });
    const armed = JSON.parse((await ferry(['deploy', 'n1', '--json'])).stdout).deployments[0];
    const ts = Date.now();
    const ev = await call(url, 'POST', INSTALL_ROUTES.events, {
      token: armed.token,
      body: {
        events: HOSTILE.map((h, i) => ({ phase: 'layers', state: i % 2 ? 'progress' : 'start', object: `obj${h}`, message: `msg${h}`, bytes: i, total: 100, ts: new Date(ts + i).toISOString() })),
      },
    });
    // Either refused at the API or stored: what matters is what reaches the terminal.
    expect([200, 202, 204, 400]).toContain(ev.status);
    const mon = (await ferry(['monitor', '--once'])).stdout;
    expect(mon).toMatch(/n1/);
    expect(mon).not.toMatch(CONTROL);
    await call(url, 'POST', INSTALL_ROUTES.result, { token: armed.token, body: { status: 'failure', error: { code: `FERRY_E_X${HOSTILE[0]}`, message: HOSTILE.join(' ') } } });
    for (const args of [['history'], ['history', 'n1'], ['history', '--record', String(armed.id)], ['history', '--record', String(armed.id), '--all'], ['node', 'ls'], ['monitor', '--once']]) {
      const r = await ferry(args);
      expect(r.stdout, args.join(' ')).not.toMatch(CONTROL);
    }
    const rec = (await ferry(['history', '--record', String(armed.id), '--all'])).stdout;
    // Nothing is hidden: the escapes are shown as text.
    if (ev.status !== 400) expect(rec).toContain('\\x1b]52;c;cm0gLXJmIH4K\\x07');
  }, 120_000);
});

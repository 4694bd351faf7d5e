/**
 * The CLI behaving like a daemon's tools (issue 17), run as an operator runs it (bin/ferry):
 * a closed pipe ends quietly; read-only commands do not make a missing data directory;
 * `layout capture` of a disk without a partition table is a coded error; `ferry serve` logs a
 * JSON line per request (--log-format json), refuses a public URL that is not a URL and an
 * unknown log format; `pxe dnsmasq-config` warns of a loopback server URL.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run, spawnTool } from '../../common/run.js';
import { waitFor } from '../../common/wait.js';
import { DataDir } from '../../server/context.js';
import { ROOT, Scratch } from './layout-helpers.js';
import { tempDir } from './server/helpers.js';

const FERRY = join(ROOT, 'bin', 'ferry');
const ferry = (args: string[], okCodes = [0, 1, 2]) => run([FERRY, ...args], { okCodes, timeoutMs: 120_000, env: { FERRY_LOG_LEVEL: 'warn' } });

describe('ferry CLI as a daemon tool', () => {
  const t = tempDir('ferry-daemon-cli-');
  const data = join(t.dir, 'data');
  beforeAll(() => {
    // Enough audit rows that `ferry audit` writes far more than a pipe holds.
    const d = new DataDir(data);
    d.write(() => {
      for (let i = 0; i < 3000; i++) d.audit('test', 'test.row', `object-${i}`, { i, filler: 'x'.repeat(60) });
    });
    d.close();
  });
  afterAll(() => t.cleanup());

  it('ends quietly when the reader closes the pipe (ferry audit | head -1)', async () => {
    const r = await run(['bash', '-c', `"${FERRY}" audit --limit 3000 --data "${data}" | head -1; echo "status=\${PIPESTATUS[0]}" >&2`], { timeoutMs: 120_000 });
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/status=(0|141)\n/);
    expect(r.stderr).not.toMatch(/EPIPE|Error:|at .*\.m?js/);
  });

  it('read-only commands say a missing data directory is missing and do not make it', async () => {
    const missing = join(t.dir, 'no-such-dir');
    for (const args of [['history'], ['audit'], ['node', 'ls'], ['node', 'show', 'x'], ['image', 'ls'], ['group', 'ls'], ['monitor', '--once']]) {
      const r = await ferry([...args, '--data', missing]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toContain(`FERRY_E_DATA_DIR_MISSING: the data directory ${missing} does not exist`);
      expect(existsSync(missing), args.join(' ')).toBe(false);
    }
    // A command that writes still makes it.
    const w = await ferry(['node', 'add', 'n1', '--mac', '52:54:00:00:17:01', '--data', missing], [0]);
    expect(w.code).toBe(0);
    expect(existsSync(missing)).toBe(true);
  });

  it('ferry serve: a JSON log line per request on stderr, with no token in it', async () => {
    const srvData = join(t.dir, 'srv');
    const s = spawnTool([FERRY, 'serve', '--data', srvData, '--listen', '127.0.0.1:0', '--log-format', 'json'], { timeoutMs: 120_000, okCodes: [0] });
    s.child.stdin!.end();
    let out = '';
    let err = '';
    s.child.stdout!.on('data', (b) => (out += b));
    s.child.stderr!.on('data', (b) => (err += b));
    try {
      const url = await waitFor(() => /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], { what: 'ferry serve to print its URL', timeoutMs: 60_000 });
      const r = await fetch(`${url}/api/v1/admin/nodes`, { headers: { authorization: 'Bearer ferry-admin-NOTTHETOKEN0123456789' } });
      expect(r.status).toBe(401);
      const line = await waitFor(() => err.split('\n').find((l) => l.includes('"msg":"request"')), { what: 'the request line', timeoutMs: 10_000 });
      expect(JSON.parse(line)).toMatchObject({ level: 30, msg: 'request', method: 'GET', url: '/api/v1/admin/nodes', status: 401 });
      expect(err).not.toContain('NOTTHETOKEN');
    } finally {
      s.child.kill('SIGTERM');
      await s.done.catch(() => undefined);
    }
  });

  it('ferry serve refuses a public URL that is not a URL, and an unknown log format', async () => {
    const bad = await ferry(['serve', '--data', join(t.dir, 'srv2'), '--listen', '127.0.0.1:0', '--public-url', '192.0.2.1:8080']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('FERRY_E_BAD_PUBLIC_URL: --public-url "192.0.2.1:8080" is not an http(s) URL');
    const fmt = await ferry(['serve', '--data', join(t.dir, 'srv2'), '--listen', '127.0.0.1:0', '--log-format', 'xml']);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toContain('--log-format "xml" is not one of text, json');
  });

  it('pxe dnsmasq-config warns of a loopback server URL for a real interface, not for lo', async () => {
    const common = ['pxe', 'dnsmasq-config', '--server', 'http://127.0.0.1:8080', '--subnet', '192.0.2.0/24', '--tftp-server', '192.0.2.1', '--data', data];
    const real = await ferry([...common, '--interface', 'ferrytest0'], [0]);
    expect(real.stderr).toMatch(/FERRY_W_PUBLIC_URL_LOOPBACK: the server URL http:\/\/127\.0\.0\.1:8080 is a loopback address, which machines on ferrytest0 cannot reach/);
    expect(real.stdout).toContain('interface=ferrytest0');
    const lo = await ferry([...common, '--interface', 'lo'], [0]);
    expect(lo.stderr).not.toContain('FERRY_W_PUBLIC_URL_LOOPBACK');
    const fine = await ferry(['pxe', 'dnsmasq-config', '--server', 'http://192.0.2.1:8080', '--subnet', '192.0.2.0/24', '--tftp-server', '192.0.2.1', '--interface', 'ferrytest0', '--data', data], [0]);
    expect(fine.stderr).not.toContain('FERRY_W_PUBLIC_URL_LOOPBACK');
  });
});

describe('ferry layout capture', () => {
  let s: Scratch;
  afterEach(async () => {
    await s?.cleanup();
  });

  it('refuses a disk without a partition table (empty, or a file system on the whole disk) with a coded error', async () => {
    s = new Scratch();
    const empty = await s.loop(64 * 1024 * 1024);
    const whole = await s.loop(64 * 1024 * 1024);
    await run(['mkfs.ext4', '-q', '-F', whole.dev]);
    for (const dev of [empty.dev, whole.dev]) {
      const r = await ferry(['layout', 'capture', '--disk', dev]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^FERRY_E_CAPTURE_NO_TABLE: no GPT or msdos partition table on ${dev} \\(parted reads "[a-z]+"\\)`));
      expect(r.stderr).not.toMatch(/at .*\.m?js/);
      expect(r.stdout).toBe('');
    }
  });
});

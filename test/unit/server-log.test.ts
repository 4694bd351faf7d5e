/**
 * Pure parts of issue 17's daemon items: the server log's URL redaction, text lines and
 * redacted fields (server/log.ts); the next boot of a node in each deployment state
 * (server/boot/decide.ts nextBootOf, what `node ls` shows and the boot answers); the public
 * URL checks (server/public-url.ts); `--tftp`'s default address (cli/serve.ts).
 */
import { describe, expect, it } from 'vitest';
import { checkLogOptions, createServerLogger, deploymentChangeLogger, loggableUrl, textLine } from '../../server/log.js';
import { nextBootOf } from '../../server/boot/decide.js';
import { checkPublicUrl, isLoopbackHost, loopbackUrlWarning } from '../../server/public-url.js';
import { tftpDefaultListen } from '../../cli/serve.js';

function collector() {
  const lines: string[] = [];
  return { lines, destination: { write: (l: string) => void lines.push(l) } };
}

describe('server log', () => {
  it('replaces secret query values and Ferry tokens in logged URLs, and bounds them', () => {
    expect(loggableUrl('/boot/ipxe?mac=aa:bb')).toBe('/boot/ipxe?mac=aa:bb');
    expect(loggableUrl('/x?token=abc&mac=1&Password=p&access_token=z')).toBe('/x?token=[redacted]&mac=1&Password=[redacted]&access_token=[redacted]');
    expect(loggableUrl('/x/ferry-deploy-AbC_12-x/y')).toBe('/x/ferry-deploy-[redacted]/y');
    expect(loggableUrl('/x?q=ferry-admin-Zz9')).toBe('/x?q=ferry-admin-[redacted]');
    expect(loggableUrl('/' + 'a'.repeat(2000)).length).toBeLessThanOrEqual(513);
  });

  it('redacts token, password, cookie and authorization fields at any of two levels', () => {
    const c = collector();
    const l = createServerLogger({ format: 'json', destination: c.destination });
    l.info({ token: 'T1', nested: { password: 'P1', authorization: 'Bearer A1' }, cookie: 'C1', ok: 'visible' }, 'hello');
    const r = JSON.parse(c.lines[0]);
    expect(r).toMatchObject({ msg: 'hello', level: 30, token: '[redacted]', cookie: '[redacted]', ok: 'visible', nested: { password: '[redacted]', authorization: '[redacted]' } });
    expect(c.lines.join('')).not.toMatch(/T1|P1|A1|C1/);
  });

  it('writes text lines: time, level, message, key=value (quoted when needed)', () => {
    const c = collector();
    createServerLogger({ format: 'text', destination: c.destination }).info({ mac: 'aa:bb', reason: 'deployment 3 armed', n: 2 }, 'boot decision');
    expect(c.lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info  boot decision mac=aa:bb reason="deployment 3 armed" n=2\n$/);
    expect(textLine('not json')).toBe('not json');
  });

  it('is at info by default, and refuses an unknown format or level', () => {
    const c = collector();
    const l = createServerLogger({ destination: c.destination });
    l.debug('hidden');
    l.info('shown');
    expect(c.lines.join('')).toContain('shown');
    expect(c.lines.join('')).not.toContain('hidden');
    expect(checkLogOptions(undefined, undefined)).toEqual({ format: 'text', level: 'info' });
    expect(() => checkLogOptions('xml', undefined)).toThrow(/--log-format "xml"/);
    expect(() => checkLogOptions('json', 'loud')).toThrow(/--log-level "loud"/);
  });

  it('logs a deployment state change once per change', () => {
    const got: unknown[] = [];
    const tap = deploymentChangeLogger({ info: (o) => void got.push(o) });
    tap('deployment', { id: 1, node: 'n1', status: 'running' });
    tap('deployment', { id: 1, node: 'n1', status: 'running' });
    tap('progress', { deployment: 1 });
    tap('deployment', { id: 1, node: 'n1', status: 'failed', error: { code: 'FERRY_E_X' } });
    expect(got).toEqual([
      expect.objectContaining({ deployment: 1, status: 'running', from: undefined }),
      expect.objectContaining({ deployment: 1, status: 'failed', from: 'running', error: 'FERRY_E_X' }),
    ]);
  });
});

describe('the next boot of a node (node ls and the boot answers)', () => {
  const cases: [string, { id: number; status: string } | undefined, 'install' | 'local', string][] = [
    ['install', { id: 4, status: 'armed' }, 'install', 'deployment 4 armed'],
    ['install', { id: 4, status: 'running' }, 'install', 'deployment 4 running'],
    ['install', { id: 4, status: 'lost' }, 'install', 'deployment 4 lost'],
    ['install', { id: 4, status: 'expired' }, 'local', 'deployment 4 expired'],
    ['install', { id: 4, status: 'cancelled' }, 'local', 'deployment 4 cancelled'],
    ['install', { id: 4, status: 'success' }, 'local', 'deployment 4 success'],
    ['install', { id: 4, status: 'failed' }, 'local', 'deployment 4 failed'],
    ['install', { id: 4, status: 'aborted' }, 'local', 'deployment 4 aborted'],
    ['install', { id: 4, status: 'superseded' }, 'local', 'deployment 4 superseded'],
    ['install', undefined, 'local', 'no deployment armed'],
    ['local', { id: 4, status: 'success' }, 'local', 'installed by deployment 4'],
    ['local', { id: 4, status: 'cancelled' }, 'local', 'deployment 4 cancelled'],
    ['local', undefined, 'local', 'boot action local'],
  ];
  for (const [action, latest, want, reason] of cases) {
    it(`boot action ${action}, newest deployment ${latest?.status ?? 'none'}: ${want}`, () => {
      const n = nextBootOf(action, latest);
      expect(n).toEqual({ action: want, reason, ...(want === 'install' ? { deployment: 4 } : {}) });
    });
  }
});

describe('public URL and addresses', () => {
  it('refuses a public URL that is not an http(s) URL', () => {
    expect(checkPublicUrl('http://192.0.2.1:8080/')).toBe('http://192.0.2.1:8080');
    for (const bad of ['192.0.2.1:8080', 'ftp://x', 'http://', 'http://u:p@x', 'http://x/?a=1', 'not a url']) {
      expect(() => checkPublicUrl(bad), bad).toThrow(expect.objectContaining({ code: 'FERRY_E_BAD_PUBLIC_URL' }));
    }
  });

  it('warns of a loopback server URL in a boot configuration for a real interface', () => {
    for (const h of ['127.0.0.1', 'localhost', '[::1]', '127.1.2.3']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['192.0.2.1', 'ferry.example', '[2001:db8::1]', '10.127.0.1']) expect(isLoopbackHost(h), h).toBe(false);
    expect(loopbackUrlWarning('http://127.0.0.1:8080', { name: 'eth0', internal: false })).toMatch(/^FERRY_W_PUBLIC_URL_LOOPBACK: .*eth0/);
    expect(loopbackUrlWarning('http://127.0.0.1:8080', { name: 'lo', internal: true })).toBeUndefined();
    expect(loopbackUrlWarning('http://192.0.2.1:8080', { name: 'eth0', internal: false })).toBeUndefined();
  });

  it('--tftp without an address listens on the --listen host, port 69', () => {
    expect(tftpDefaultListen('192.0.2.5:8080')).toBe('192.0.2.5:69');
    expect(tftpDefaultListen('0.0.0.0:8080')).toBe('0.0.0.0:69');
    expect(tftpDefaultListen('[::1]:8080')).toBe('[::1]:69');
    expect(tftpDefaultListen('8080')).toBe('127.0.0.1:69');
  });
});

describe('ferry monitor table', async () => {
  const { renderTable, reconnectDelay } = await import('../../cli/monitor.js');
  const { MonitorState } = await import('../../server/monitor.js');
  const now = Date.parse('2026-12-04T12:00:00Z');
  const ago = (s: number) => new Date(now - s * 1000).toISOString();
  const state = () => {
    const m = new MonitorState();
    m.apply('snapshot', {
      deployments: [
        { info: { id: 1, node: 'a1', image: 'i@1', status: 'superseded' }, events: [] },
        { info: { id: 2, node: 'a1', image: 'i@1', status: 'running' }, events: [{ phase: 'layers', state: 'heartbeat', ts: ago(99), receivedAt: ago(7) }] },
        { info: { id: 3, node: 'b1', image: 'i@1', status: 'lost' }, events: [{ phase: 'disks', state: 'start', ts: ago(400), receivedAt: ago(400) }] },
        { info: { id: 4, node: 'c1', image: 'i@1', status: 'failed', error: { code: 'FERRY_E_DISK_MISSING', message: 'no disk /dev/sdb' } }, events: [] },
      ],
    });
    return m;
  };

  it('shows the deployment id, the age of the last word, lost and the error of a failure, and hides superseded records', () => {
    const m = state();
    const text = renderTable(m.rows(), now);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +NODE +VIA +STAGE +PERCENT +MB\/S +ETA +SEEN +STATE +ERROR$/);
    expect(lines).toHaveLength(4);
    // A heartbeat changes no stage; its arrival (the server's clock, not the installer's) is SEEN.
    expect(lines[1]).toMatch(/^2 +a1 +http +- +7s +running$/);
    expect(lines[2]).toMatch(/^3 +b1 +http +disks +6m40s +lost$/);
    expect(lines[3]).toMatch(/^4 +c1 +http +- +failed +FERRY_E_DISK_MISSING: no disk \/dev\/sdb$/);
    expect(text).not.toMatch(/^1 /m);
  });

  it('fits the terminal: rows limited to its height with a "+N more" line, lines cut to its width', () => {
    const m = new MonitorState();
    m.apply('snapshot', { deployments: Array.from({ length: 50 }, (_, i) => ({ info: { id: i + 1, node: `n${String(i).padStart(2, '0')}`, image: 'i@1', status: i < 10 ? 'running' : 'success' }, events: [] })) });
    const text = renderTable(m.rows(), now, { rows: 12, columns: 40 });
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(11); // header, 9 rows, +N more, and the cursor's line: 12
    expect(lines.at(-1)).toBe('+41 more (1 running, 40 success)');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(40);
    expect(renderTable(m.rows(), now).trimEnd().split('\n')).toHaveLength(51);
  });

  it('waits 1, 2, 4, then 5 s between reconnection attempts', () => {
    expect([0, 1, 2, 3, 10].map(reconnectDelay)).toEqual([1000, 2000, 4000, 5000, 5000]);
  });
});

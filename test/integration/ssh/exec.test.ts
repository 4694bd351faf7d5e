/**
 * `ferry exec` against 8 real OpenSSH servers (Debian's sshd), each in its own network namespace
 * with its own host key, reached from the test process (the harness's `server: 'host'`). Outputs
 * and exit codes differ on some nodes; one node sleeps past --timeout; a node whose recorded host
 * key is wrong, one with no listener, one without an address and one with no key recorded yet
 * form their own groups. Checks the collated text, --json, the exit code, and that
 * --accept-new-host-key records the key while a wrong recorded key stays refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { createNetwork, type Network } from '../../harness/netns.js';
import { startSshdAll, type Sshd } from '../../harness/sshd.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');
const COMMAND = 'echo role=$ROLE; sleep ${SLEEP:-0}; exit ${CODE:-0}';

describe('ferry exec on 8 namespace nodes running sshd', () => {
  let net: Network;
  let data: string;
  let sshd: Sshd[] = [];
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args], { okCodes, timeoutMs: 90_000, quiet: true, env: { FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data } });

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'ferry-exec-'));
    net = await createNetwork({ nodes: 8, rate: '1gbit', server: 'host' });
    const pub = (await ferry(['ssh-key'])).stdout;
    const env = (i: number): Record<string, string> =>
      i < 5 ? { ROLE: 'web' } : i === 5 ? { ROLE: 'web', CODE: '3' } : i === 6 ? { ROLE: 'db' } : { ROLE: 'db', SLEEP: '30' };
    sshd = await startSshdAll(net.nodes, { authorizedKeys: pub, env });
    const names = ['web01', 'web02', 'web03', 'web04', 'web05', 'web06', 'db01', 'db02'];
    for (const [i, n] of net.nodes.entries()) {
      const mac = `02:aa:00:00:00:${String(10 + i)}`;
      // db01 gets no recorded host key: first contact must be refused.
      const keys = names[i] === 'db01' ? [] : ['--host-key', sshd[i].fingerprint];
      await ferry(['node', 'add', names[i], '--mac', mac, '--address', n.ip, '--group', 'rack', ...keys]);
    }
    // web07: n0's address with a key that is not n0's (as if the machine were replaced).
    await ferry(['node', 'add', 'web07', '--mac', '02:aa:00:00:01:07', '--address', net.nodes[0].ip, '--host-key', sshd[1].fingerprint, '--group', 'rack']);
    // web08: nothing listens on that port. web09: no address at all.
    await ferry(['node', 'add', 'web08', '--mac', '02:aa:00:00:01:08', '--address', `${net.nodes[1].ip}:2299`, '--host-key', sshd[1].fingerprint, '--group', 'rack']);
    await ferry(['node', 'add', 'web09', '--mac', '02:aa:00:00:01:09', '--group', 'rack']);
  }, 120_000);

  afterAll(async () => {
    await net?.teardown();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  it('collates identical results under node sets, largest first, with their own groups for failures', async () => {
    const t0 = Date.now();
    const r = await ferry(['exec', '@rack', '--fanout', '4', '--timeout', '4', '--', COMMAND], [255]);
    const ms = Date.now() - t0;
    const out = r.stdout;
    const blocks = out.split(/^-+\n/m).filter(Boolean);
    // Headers alternate with bodies: [head, body, head, body…]
    const heads = blocks.filter((_, i) => i % 2 === 0).map((h) => h.trim());
    expect(heads[0]).toBe('web[01-05] (5)');
    expect(new Set(heads.slice(1))).toEqual(new Set(['db01 (1)', 'db02 (1)', 'web06 (1)', 'web07 (1)', 'web08 (1)', 'web09 (1)']));
    const body = (head: string) => blocks[blocks.findIndex((b) => b.trim() === head) + 1];
    expect(body('web[01-05] (5)')).toBe('role=web\n');
    expect(body('web06 (1)')).toBe('[exit code 3]\nrole=web\n');
    expect(body('db02 (1)')).toBe('[timed out after 4 s]\n');
    expect(body('db01 (1)')).toMatch(/^\[FERRY_E_SSH_HOST_KEY_UNKNOWN: .*presented SHA256:/);
    expect(body('db01 (1)')).toContain(sshd[6].fingerprint);
    expect(body('web07 (1)')).toMatch(/^\[FERRY_E_SSH_HOST_KEY_MISMATCH: /);
    expect(body('web08 (1)')).toMatch(/^\[FERRY_E_SSH_UNREACHABLE: .*ECONNREFUSED/);
    expect(body('web09 (1)')).toMatch(/^\[FERRY_E_SSH_NO_ADDRESS: /);
    // Bounded: the sleeping node is cut at 4 s, not 30.
    expect(ms).toBeLessThan(25_000);
    // The refused key of web07 was not recorded; the wrong record is still the only one.
    const web07 = JSON.parse((await ferry(['node', 'show', 'web07', '--json'])).stdout);
    expect(web07.hostKeys.map((k: { fingerprint: string }) => k.fingerprint)).toEqual([sshd[1].fingerprint]);
  }, 60_000);

  it('--json gives per-node output, exit code and duration', async () => {
    const r = await ferry(['exec', 'web01', 'web06', 'db01', '--json', '--', COMMAND], [255]);
    const j = JSON.parse(r.stdout) as { node: string; outcome: string; code: number | string; stdout: string; durationMs: number }[];
    const by = Object.fromEntries(j.map((x) => [x.node, x]));
    expect(by.web01).toMatchObject({ outcome: 'exit', code: 0, stdout: 'role=web\n' });
    expect(by.web06).toMatchObject({ outcome: 'exit', code: 3 });
    expect(by.db01).toMatchObject({ outcome: 'error', code: 'FERRY_E_SSH_HOST_KEY_UNKNOWN' });
    for (const x of j) expect(x.durationMs).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('--accept-new-host-key records the key of a node that has none; the next run needs no flag', async () => {
    const first = await ferry(['exec', 'db01', '--accept-new-host-key', '--', 'echo', 'hello'], [0]);
    expect(first.stdout).toContain('db01 (1)');
    expect(first.stdout).toContain('hello');
    const shown = JSON.parse((await ferry(['node', 'show', 'db01', '--json'])).stdout);
    expect(shown.hostKeys).toEqual([{ fingerprint: sshd[6].fingerprint, source: 'accept-new' }]);
    const again = await ferry(['exec', 'db01', '--', 'echo', 'hello']);
    expect(again.stdout).toContain('hello');
    // accept-new never overrides a recorded key that differs.
    const wrong = await ferry(['exec', 'web07', '--accept-new-host-key', '--', 'true'], [255]);
    expect(wrong.stdout).toContain('FERRY_E_SSH_HOST_KEY_MISMATCH');
  }, 60_000);
});

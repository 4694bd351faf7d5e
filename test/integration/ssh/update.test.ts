/**
 * `ferry update --dry-run` against a real sshd in a network namespace (set up as in exec.test.ts):
 * the local rsync talks to the node's rsync through `ferry ssh-pipe` (Ferry's verified
 * connection). The namespaces share the host's file system, so the node's tree is a directory
 * given with --root: the listing names the changed, new and extra files, leaves out the default
 * excludes (the node's hostname, logs), and the tree is unchanged afterwards. A node whose
 * recorded host key is wrong gets its own group, and rsync never runs there.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { createNetwork, type Network } from '../../harness/netns.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

function tree(dir: string, files: Record<string, string>): void {
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
}

describe('ferry update --dry-run over SSH', () => {
  let net: Network;
  let data: string;
  let work: string;
  let sshd: Sshd[] = [];
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args], { okCodes, timeoutMs: 120_000, quiet: true, env: { FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data } });

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'ferry-update-'));
    work = mkdtempSync(join(tmpdir(), 'ferry-update-work-'));
    net = await createNetwork({ nodes: 1, rate: '1gbit', server: 'host' });
    const pub = (await ferry(['ssh-key'])).stdout;
    sshd = await Promise.all(net.nodes.map((n) => startSshd(n, { authorizedKeys: pub })));
    await ferry(['node', 'add', 'web01', '--mac', '02:ac:00:00:00:01', '--address', net.nodes[0].ip, '--host-key', sshd[0].fingerprint]);
    // bad01: the same machine under a key that is not its own.
    const other = (await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'other')], { quiet: true }), (await run(['ssh-keygen', '-lf', join(work, 'other.pub')], { quiet: true })).stdout.split(' ')[1]);
    await ferry(['node', 'add', 'bad01', '--mac', '02:ac:00:00:00:02', '--address', net.nodes[0].ip, '--host-key', other]);
    const img = join(work, 'img');
    tree(img, { 'etc/app.conf': 'version=2\n', 'etc/hostname': 'master\n', 'usr/bin/tool': 'new tool\n', 'usr/share/doc/same': 'same\n' });
    await ferry(['image', 'import', 'app', '--dir', img]);
  }, 120_000);

  afterAll(async () => {
    await net?.teardown();
    for (const d of [data, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('lists what would change, skips the default excludes, changes nothing', async () => {
    const node = join(work, 'node-root');
    tree(node, { 'etc/app.conf': 'version=1-old\n', 'etc/hostname': 'web01\n', 'usr/share/doc/same': 'same\n', 'usr/bin/stale': 'old\n', 'var/log/syslog': 'log\n' });
    const before = readFileSync(join(node, 'etc/app.conf'), 'utf8');
    const r = await ferry(['update', 'web01', '--image', 'app', '--dry-run', '--root', node]);
    expect(r.stdout).toMatch(/^web01 \(1\)$/m);
    const lines = r.stdout.split('\n');
    expect(lines.some((l) => /^<f.s.* etc\/app\.conf$/.test(l))).toBe(true);
    expect(lines.some((l) => /^<f\+\+\+.* usr\/bin\/tool$/.test(l))).toBe(true);
    expect(lines).toContain('*deleting   usr/bin/stale');
    expect(r.stdout).not.toContain('hostname');
    expect(r.stdout).not.toContain('var/log');
    // A dry run: the node's tree is as it was.
    expect(readFileSync(join(node, 'etc/app.conf'), 'utf8')).toBe(before);
    expect(readdirSync(join(node, 'usr/bin'))).toEqual(['stale']);
  }, 120_000);

  it('a wrong host key is its own group and exit 255; --json lists changes', async () => {
    const node = join(work, 'node-root2');
    tree(node, { 'etc/app.conf': 'version=2\n', 'etc/hostname': 'x\n', 'usr/bin/tool': 'new tool\n', 'usr/share/doc/same': 'same\n' });
    const r = await ferry(['update', 'web01', 'bad01', '--image', 'app', '--dry-run', '--root', node, '--json'], [255]);
    const j = JSON.parse(r.stdout) as { node: string; outcome: string; code: string | number; changes?: string[] }[];
    const by = Object.fromEntries(j.map((x) => [x.node, x]));
    expect(by.bad01).toMatchObject({ outcome: 'error', code: 'FERRY_E_SSH_HOST_KEY_MISMATCH' });
    expect(by.web01).toMatchObject({ outcome: 'exit', code: 0 });
    // Same names and sizes (mtimes differ between the trees: those files would be sent again).
    expect((by.web01.changes ?? []).filter((l) => /^(\*deleting|<f\+|<f.s)/.test(l))).toEqual([]);
  }, 120_000);
});

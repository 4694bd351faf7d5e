/**
 * A real `ferry update` against Debian's sshd in a network namespace (as update.test.ts): the
 * node's tree is a directory given with --root (the namespaces share the host's file system).
 * Changed, added and deleted files are applied; /home, logs and the node's customized files are
 * kept or rendered again for the node; the update is a deployment record of kind update with its
 * events, and `node show` names the version the node runs. A failed update is a failed record
 * and leaves that version as it was. The exported tree is made once per image version and reused.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync, statSync, chmodSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { createNetwork, type Network } from '../../harness/netns.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

/**
 * Files with the given contents. `mtime` dates them: rsync's quick check skips a file of the same
 * size and the same mtime second, so the node's copies are dated before the image's (as a
 * running node's files are); written in the same second as the image's, `version=1` and
 * `version=2` would look unchanged (a flake seen when import and commit took under a second).
 */
function tree(dir: string, files: Record<string, string>, mtime?: Date): void {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
    if (mtime) utimesSync(join(dir, p), mtime, mtime);
  }
}

interface Rec { id: number; kind?: string; node: string; image: string; status: string; error?: { code: string; message: string } }

describe('ferry update over SSH (real)', () => {
  let net: Network;
  let data: string;
  let work: string;
  let sshd: Sshd[] = [];
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args], { okCodes, timeoutMs: 180_000, quiet: true, env: { FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data } });
  const history = async () => JSON.parse((await ferry(['history', 'web01', '--json'])).stdout) as Rec[];

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'ferry-upd-'));
    work = mkdtempSync(join(tmpdir(), 'ferry-upd-work-'));
    net = await createNetwork({ nodes: 1, rate: '1gbit', server: 'host' });
    const pub = (await ferry(['ssh-key'])).stdout;
    sshd = await Promise.all(net.nodes.map((n) => startSshd(n, { authorizedKeys: pub })));
    await ferry(['node', 'add', 'web01', '--mac', '02:ad:00:00:00:01', '--address', net.nodes[0].ip, '--host-key', sshd[0].fingerprint, '--set', 'role=frontend']);
    const other = (await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'other')], { quiet: true }), (await run(['ssh-keygen', '-lf', join(work, 'other.pub')], { quiet: true })).stdout.split(' ')[1]);
    await ferry(['node', 'add', 'bad01', '--mac', '02:ad:00:00:00:02', '--address', net.nodes[0].ip, '--host-key', other, '--set', 'role=x']);
    const items = join(work, 'items.json');
    writeFileSync(items, JSON.stringify([
      { kind: 'template', path: '/etc/motd', template: 'welcome to {{node.name}} ({{role}}, {{site}})\n' },
      { kind: 'file', path: '/etc/ferry-role', content: 'web\n', mode: 0o640 },
      { kind: 'ssh-authorize-ferry' },
    ]));
    const passwd = 'root:x:0:0:root:/root:/bin/sh\n';
    tree(join(work, 'v1'), { 'etc/passwd': passwd, 'etc/app.conf': 'version=1\n', 'usr/bin/tool': 'tool v1\n', 'usr/bin/old': 'old\n', 'etc/motd': 'image motd v1\n' });
    tree(join(work, 'v2'), { 'etc/passwd': passwd, 'etc/app.conf': 'version=2\n', 'usr/bin/tool': 'tool v2, longer\n', 'usr/bin/new': 'new\n', 'etc/motd': 'image motd v2\n', 'etc/hostname': 'master\n', 'etc/ferry-role': 'image role\n' });
    await ferry(['image', 'import', 'app', '--dir', join(work, 'v1'), '--customizations', items, '--set', 'site=lab']);
    // Version 2: the changed tree committed as a new layer (customizations and inputs carried over).
    await ferry(['image', 'commit', 'app', join(work, 'v2')]);
  }, 180_000);

  afterAll(async () => {
    await net?.teardown();
    for (const d of [data, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  const node = () => join(work, 'node-root');

  it('applies changed, added and deleted files; keeps /home, logs and root\'s keys; renders the customized files for the node', async () => {
    tree(node(), {
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n', 'etc/app.conf': 'version=1\n', 'usr/bin/tool': 'tool v1\n', 'usr/bin/old': 'old\n', 'etc/motd': 'welcome to web01 (frontend, lab)\n',
      'etc/hostname': 'web01\n', 'home/alice/notes': 'mine\n', 'var/log/syslog': 'log\n', 'root/.ssh/authorized_keys': 'ssh-ed25519 AAAAkeep operator\n',
    }, new Date('2026-01-01T00:00:00Z'));
    const r = await ferry(['update', 'web01', '--image', 'app@2', '--root', node()]);
    expect(r.stdout).toMatch(/^web01 \(1\)$/m);
    expect(r.stdout).toMatch(/updated to app@2: \d+ files sent, 1 deleted, \d+ customized files put in place/);
    const read = (p: string) => readFileSync(join(node(), p), 'utf8');
    expect(read('etc/app.conf')).toBe('version=2\n');
    expect(read('usr/bin/tool')).toBe('tool v2, longer\n');
    expect(read('usr/bin/new')).toBe('new\n');
    expect(existsSync(join(node(), 'usr/bin/old'))).toBe(false);
    expect(read('home/alice/notes')).toBe('mine\n');
    expect(read('var/log/syslog')).toBe('log\n');
    expect(read('root/.ssh/authorized_keys')).toBe('ssh-ed25519 AAAAkeep operator\n');
    // Rendered again for this node, not the image's copies.
    expect(read('etc/motd')).toBe('welcome to web01 (frontend, lab)\n');
    expect(read('etc/ferry-role')).toBe('web\n');
    expect(statSync(join(node(), 'etc/ferry-role')).mode & 0o7777).toBe(0o640);
    expect(read('etc/hostname')).toBe('web01\n');
    expect(read('etc/hosts')).toMatch(/^127\.0\.1\.1\tweb01$/m);
    // The tree's root keeps a system root's mode (not the export's private 0700).
    expect(statSync(node()).mode & 0o777).toBe(0o755);

    const recs = await history();
    expect(recs[0]).toMatchObject({ kind: 'update', node: 'web01', image: 'app@2', status: 'success' });
    const one = JSON.parse((await ferry(['history', '--record', String(recs[0].id), '--json'])).stdout) as { events: { phase: string; state: string; object?: string; details?: any }[] };
    expect(one.events.map((e) => `${e.state}:${e.object}`)).toEqual(['start:web01', 'info:rsync', 'info:customize', 'end:web01']);
    expect(one.events[1].details.stats.deleted).toBe(1);
    expect(one.events[2].details.files.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(['/etc/motd', '/etc/ferry-role', '/etc/hostname', '/etc/hosts']));
    expect(JSON.stringify(one.events[2].details.skipped)).toContain('/root/');
    const text = (await ferry(['history', '--record', String(recs[0].id)])).stdout;
    expect(text).toMatch(/^kind: update over SSH/m);
    expect(text).toMatch(/^transport: ssh\b/m);
    expect((await ferry(['history', 'web01'])).stdout).toMatch(new RegExp(`^${recs[0].id}\\s+web01\\s+app@2\\s+update \\(ssh\\)\\s+success`, 'm'));
    expect((await ferry(['node', 'show', 'web01'])).stdout).toMatch(/^runs: app@2 .*update record/m);
    const shown = JSON.parse((await ferry(['node', 'show', 'web01', '--json'])).stdout) as { running?: { image: string; kind: string } };
    expect(shown.running).toMatchObject({ image: 'app@2', kind: 'update' });
  }, 180_000);

  it('reuses the exported tree of a version across runs; a second update finds nothing to send', async () => {
    const trees = join(data, 'cache', 'trees');
    const before = readdirSync(trees).filter((n) => !n.startsWith('.'));
    expect(before).toHaveLength(1);
    const ino = statSync(join(trees, before[0], 'tree')).ino;
    const r = await ferry(['update', 'web01', '--image', 'app@2', '--root', node(), '--json']);
    const j = JSON.parse(r.stdout) as { stats: { transferred: number; deleted: number } }[];
    expect(j[0].stats).toMatchObject({ transferred: 0, deleted: 0 });
    expect(readdirSync(trees).filter((n) => !n.startsWith('.'))).toEqual(before);
    expect(statSync(join(trees, before[0], 'tree')).ino).toBe(ino);
  }, 180_000);

  it('a failed update is a failed record with the error; the version the node runs stays', async () => {
    // rsync cannot make its destination under a regular file.
    const r = await ferry(['update', 'web01', '--image', 'app@1', '--root', join(node(), 'etc/app.conf/sub')], [1, 255]);
    expect(r.stdout).toMatch(/FERRY_E_/);
    const recs = await history();
    expect(recs[0]).toMatchObject({ kind: 'update', image: 'app@1', status: 'failed' });
    expect(recs[0].error?.code).toMatch(/^FERRY_E_/);
    expect((await ferry(['node', 'show', 'web01'])).stdout).toMatch(/^runs: app@2 /m);
    expect(readFileSync(join(node(), 'etc/app.conf'), 'utf8')).toBe('version=2\n');
    // A wrong host key: refused before rsync, recorded as failed with the mismatch.
    const b = await ferry(['update', 'bad01', '--image', 'app@1', '--root', node(), '--json'], [1, 255]);
    expect(JSON.parse(b.stdout)[0]).toMatchObject({ outcome: 'error', code: 'FERRY_E_SSH_HOST_KEY_MISMATCH' });
    const bad = JSON.parse((await ferry(['history', 'bad01', '--json'])).stdout) as Rec[];
    expect(bad[0]).toMatchObject({ kind: 'update', status: 'failed', error: { code: 'FERRY_E_SSH_HOST_KEY_MISMATCH' } });
    expect(readFileSync(join(node(), 'etc/app.conf'), 'utf8')).toBe('version=2\n');
  }, 180_000);

  it('image gc removes the exported trees of removed versions', async () => {
    const trees = join(data, 'cache', 'trees');
    expect(readdirSync(trees).filter((n) => !n.startsWith('.'))).toHaveLength(2);
    await ferry(['image', 'rm', 'app@1']);
    const gc = JSON.parse((await ferry(['image', 'gc', '--json'])).stdout) as { trees: string[] };
    expect(gc.trees).toHaveLength(1);
    expect(readdirSync(trees).filter((n) => !n.startsWith('.'))).toHaveLength(1);
  }, 180_000);
});

/**
 * `ferry push` against real OpenSSH servers (Debian's sshd, internal-sftp) in network namespaces,
 * set up as in exec.test.ts (test/harness/sshd.ts). The namespaces share the host's
 * file system, so each node gets its own destination directory and the test reads the result
 * directly: content, mode, owner, no temporary file left; a wrong host key is refused and that
 * node's file untouched; a missing directory fails with FERRY_E_PUSH_FAILED.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { createNetwork, type Network } from '../../harness/netns.js';
import { startSshd, type Sshd } from '../../harness/sshd.js';

const FERRY = join(import.meta.dirname, '..', '..', '..', 'bin', 'ferry');

describe('ferry push to namespace nodes running sshd', () => {
  let net: Network;
  let data: string;
  let work: string;
  let sshd: Sshd[] = [];
  const names = ['web01', 'web02', 'web03'];
  const ferry = (args: string[], okCodes = [0]) => run([FERRY, ...args], { okCodes, timeoutMs: 90_000, quiet: true, env: { FERRY_LOG_LEVEL: 'warn', FERRY_DATA: data } });

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'ferry-push-'));
    work = mkdtempSync(join(tmpdir(), 'ferry-push-work-'));
    net = await createNetwork({ nodes: 3, rate: '1gbit', server: 'host' });
    const pub = (await ferry(['ssh-key'])).stdout;
    sshd = await Promise.all(net.nodes.map((n) => startSshd(n, { authorizedKeys: pub })));
    for (const [i, n] of net.nodes.entries()) {
      await ferry(['node', 'add', names[i], '--mac', `02:ab:00:00:00:${10 + i}`, '--address', n.ip, '--host-key', sshd[i].fingerprint, '--group', 'rack']);
    }
    // bad01: web01's address with web02's key (a replaced machine): refused before anything is sent.
    await ferry(['node', 'add', 'bad01', '--mac', '02:ab:00:00:01:01', '--address', net.nodes[0].ip, '--host-key', sshd[1].fingerprint]);
  }, 120_000);

  afterAll(async () => {
    await net?.teardown();
    for (const d of [data, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('copies the file to every node with mode and numeric owner, replacing the old one, no temporary left', async () => {
    const src = join(work, 'motd');
    const body = Buffer.concat([Buffer.from('hello from ferry\n'), Buffer.alloc(300_000, 7)]);
    writeFileSync(src, body, { mode: 0o600 });
    // The nodes share the host's file system: all three rename their own temporary file over
    // the same DEST, so the directory must end with exactly one file, whole.
    const dir = join(work, 'dest');
    mkdirSync(dir);
    writeFileSync(join(dir, 'motd'), 'old\n');
    const r = await ferry(['push', '@rack', src, dir + '/', '--mode', '0640', '--owner', '1234:5678', '--fanout', '2']);
    const heads = r.stdout.split(/^-+\n/m).filter(Boolean).filter((_, i) => i % 2 === 0).map((h) => h.trim());
    expect(heads).toEqual(['web[01-03] (3)']);
    expect(r.stdout).toContain(`${dir}/motd: ${body.length} bytes, mode 0640, owner 1234:5678`);
    const st = statSync(join(dir, 'motd'));
    expect(readFileSync(join(dir, 'motd')).equals(body)).toBe(true);
    expect(st.mode & 0o7777).toBe(0o640);
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
    expect(readdirSync(dir)).toEqual(['motd']);
  }, 90_000);

  it('defaults the mode to the source file\'s, takes owner names, and a DEST file path', async () => {
    const src = join(work, 'script.sh');
    writeFileSync(src, '#!/bin/sh\necho hi\n', { mode: 0o755 });
    const dir = join(work, 'named');
    mkdirSync(dir);
    const r = await ferry(['push', 'web02', src, join(dir, 'run.sh'), '--owner', 'nobody:nogroup', '--json']);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject([{ node: 'web02', outcome: 'exit', code: 0, dest: join(dir, 'run.sh'), bytes: 18 }]);
    const st = statSync(join(dir, 'run.sh'));
    expect(st.mode & 0o7777).toBe(0o755);
    const nobody = Number((await run(['id', '-u', 'nobody'], { quiet: true })).stdout.trim());
    expect(st.uid).toBe(nobody);
  }, 60_000);

  it('refuses a wrong host key and a missing directory, each its own group, exit 255', async () => {
    const src = join(work, 'x.conf');
    writeFileSync(src, 'x=1\n');
    const dir = join(work, 'refused');
    mkdirSync(dir);
    const r = await ferry(['push', 'bad01', 'web01', src, dir + '/'], [255]);
    expect(r.stdout).toMatch(/^bad01 \(1\)\n-+\n\[FERRY_E_SSH_HOST_KEY_MISMATCH: /m);
    expect(r.stdout).toMatch(/^web01 \(1\)\n/m);
    // web01 wrote it; bad01 (same machine, wrong key) sent nothing: one file, no temporary.
    expect(readdirSync(dir)).toEqual(['x.conf']);
    const missing = await ferry(['push', 'web03', src, join(work, 'no', 'such', 'dir', 'x.conf')], [255]);
    expect(missing.stdout).toContain('[FERRY_E_PUSH_FAILED: ');
    expect(existsSync(join(work, 'no'))).toBe(false);
  }, 60_000);

  it('refuses bad arguments before connecting', async () => {
    const src = join(work, 'x.conf');
    const bad = await ferry(['push', 'web01', src, 'relative/path'], [1]);
    expect(bad.stderr).toContain('FERRY_E_PUSH_BAD_ARGUMENT');
    const mode = await ferry(['push', 'web01', src, '/tmp/x', '--mode', '999'], [1]);
    expect(mode.stderr).toContain('FERRY_E_PUSH_BAD_ARGUMENT');
    const nosrc = await ferry(['push', 'web01', join(work, 'absent'), '/tmp/x'], [1]);
    expect(nosrc.stderr).toContain('FERRY_E_PUSH_SOURCE');
  }, 60_000);
});

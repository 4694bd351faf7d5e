/**
 * Trust at install time: a real install from the real server into --root, of a small image with
 * an SSH server (busybox image plus /usr/sbin/sshd) and the ssh-authorize-ferry item. The host
 * keys in the installed tree are checked with OpenSSH's own ssh-keygen (the private keys load and
 * give the public halves; their fingerprints are exactly the server's record for the node), the
 * master's keys are gone, root's authorized_keys holds Ferry's key, and the node's address is
 * set (from the static network input, or the installer's own address) unless it had one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../../common/run.js';
import { runInstall } from '../../../installer/install.js';
import { ferryKey } from '../../../server/ssh/keys.js';
import { armDeployment } from '../../../server/db/deployments.js';
import { FerryServer } from '../helpers/ferry-server.js';
import { busyboxImage } from '../helpers/images.js';

let work: string;
let server: FerryServer;
beforeEach(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-trust-'));
  server = await FerryServer.start();
});
afterEach(async () => {
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function sshImage(dir: string): void {
  busyboxImage(dir);
  fs.mkdirSync(path.join(dir, 'usr/sbin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'usr/sbin/sshd'), '#!/bin/sh\n', { mode: 0o755 });
}

const recorded = (node: string) =>
  (server.data.db.prepare('SELECT k.fingerprint, k.source, k.public_key FROM ssh_host_keys k JOIN nodes n ON n.id = k.node_id WHERE n.name = ? ORDER BY k.fingerprint').all(node) as { fingerprint: string; source: string; public_key: string }[]);
const addressOf = (node: string) => (server.data.db.prepare('SELECT address FROM nodes WHERE name = ?').get(node) as { address: string | null }).address;

let macs = 0;
async function install(node: string, inputs: Record<string, string>, before?: () => void): Promise<string> {
  const armed = server.arm(node, 'sshimg', { inputs, macs: [`52:54:00:12:34:${(0x70 + macs++).toString(16)}`] });
  before?.();
  const dst = path.join(work, `dst-${node}`);
  fs.mkdirSync(dst);
  const outcome = await runInstall({ server: server.url, token: armed.token, root: dst, yes: true, console: () => {} });
  expect(outcome.result).toEqual({ status: 'success' });
  return dst;
}

describe('SSH trust made at install time', () => {
  it('writes fresh host keys the server records, authorizes Ferry for root, sets the address', async () => {
    const src = path.join(work, 'src');
    sshImage(src);
    await server.image('sshimg', src, [{ kind: 'ssh-authorize-ferry' }]);
    const dst = await install('web01', { 'network.mode': 'static', 'network.address': '192.0.2.10/24', 'network.gateway': '192.0.2.1', 'network.interface': 'ens3' });

    const keys = fs.readdirSync(path.join(dst, 'etc/ssh')).filter((f) => f.startsWith('ssh_host_')).sort();
    expect(keys).toEqual(['ssh_host_ecdsa_key', 'ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key', 'ssh_host_rsa_key.pub']);
    const fps: string[] = [];
    for (const t of ['ed25519', 'ecdsa', 'rsa']) {
      const priv = path.join(dst, `etc/ssh/ssh_host_${t}_key`);
      const st = fs.statSync(priv);
      expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o600, 0, 0]);
      const pub = fs.readFileSync(`${priv}.pub`, 'utf8');
      expect(pub).not.toContain('master');
      // OpenSSH reads the private key and derives exactly the public line written beside it.
      const derived = (await run(['ssh-keygen', '-y', '-f', priv], { quiet: true })).stdout.trim();
      expect(derived.split(' ').slice(0, 2)).toEqual(pub.trim().split(' ').slice(0, 2));
      fps.push((await run(['ssh-keygen', '-lf', `${priv}.pub`], { quiet: true })).stdout.split(' ')[1]);
    }
    const rec = recorded('web01');
    expect(rec.map((r) => r.fingerprint)).toEqual([...fps].sort());
    expect(new Set(rec.map((r) => r.source))).toEqual(new Set(['installer']));
    expect(addressOf('web01')).toBe('192.0.2.10');

    const auth = fs.readFileSync(path.join(dst, 'root/.ssh/authorized_keys'), 'utf8');
    expect(auth.split('\n')).toContain(ferryKey(server.data.dir).publicKey.trim());
    const st = fs.statSync(path.join(dst, 'root/.ssh/authorized_keys'));
    expect([st.mode & 0o777, st.uid]).toEqual([0o600, 0]);
  }, 120_000);

  it('a reinstall replaces the recorded keys; an address already set stays; none given: the installer\'s', async () => {
    const src = path.join(work, 'src');
    sshImage(src);
    await server.image('sshimg', src, []);
    await install('db01', {}, () => server.data.db.prepare("UPDATE nodes SET address = '10.9.9.9:2222' WHERE name = 'db01'").run());
    const first = recorded('db01').map((r) => r.fingerprint);
    expect(first).toHaveLength(3);
    expect(addressOf('db01')).toBe('10.9.9.9:2222');
    // No ssh-authorize-ferry item: root gets no authorized_keys.
    expect(fs.existsSync(path.join(work, 'dst-db01/root/.ssh/authorized_keys'))).toBe(false);

    await install('db02', {});
    expect(addressOf('db02')).toMatch(/^(127\.0\.0\.1|\[::1\])$/);

    // A second install of db01: fresh keys, and the former ones are no longer trusted.
    const again = armDeployment(server.data, 'db01', { actor: 'test' });
    const dst2 = path.join(work, 'dst-db01-again');
    fs.mkdirSync(dst2);
    expect((await runInstall({ server: server.url, token: again.token, root: dst2, yes: true, console: () => {} })).result).toEqual({ status: 'success' });
    const second = recorded('db01').map((r) => r.fingerprint);
    expect(second).toHaveLength(3);
    for (const fp of first) expect(second).not.toContain(fp);
  }, 120_000);
});

/**
 * Debian's OpenSSH server on a namespace node of the many-node harness (test/harness/netns.ts):
 * its own host key (ssh-keygen), a config of its own in the node's directory, `sshd -D -e -f
 * CONFIG` listening on the node's address, root allowed by key only. The real sshd, no double.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../common/run.js';
import type { Endpoint, NsProcess } from './netns.js';

export interface Sshd {
  proc: NsProcess;
  /** The host key's fingerprint as ssh-keygen -lf prints it. */
  fingerprint: string;
  hostKeyFile: string;
}

export async function startSshd(ep: Endpoint, o: { authorizedKeys: string; env?: Record<string, string>; port?: number }): Promise<Sshd> {
  const dir = join(ep.dir, 'sshd');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // sshd's privilege separation directory (the package makes it at boot through tmpfiles).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKeyFile = join(dir, 'ssh_host_ed25519_key');
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `test-${ep.name}`, '-f', hostKeyFile], { quiet: true });
  const fp = (await run(['ssh-keygen', '-lf', `${hostKeyFile}.pub`], { quiet: true })).stdout.split(' ')[1];
  const auth = join(dir, 'authorized_keys');
  writeFileSync(auth, o.authorizedKeys.trim() + '\n', { mode: 0o600 });
  const config = join(dir, 'sshd_config');
  const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`);
  writeFileSync(
    config,
    [
      `ListenAddress ${ep.ip}:${o.port ?? 22}`,
      `HostKey ${hostKeyFile}`,
      `AuthorizedKeysFile ${auth}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The node directory lives under the harness's run directory, not a home directory.
      'StrictModes no',
      'PidFile none',
      'LogLevel INFO',
      'MaxStartups 100',
      // ferry push (SFTP); in-process, so no sftp-server binary path to depend on.
      'Subsystem sftp internal-sftp',
      ...(env.length ? [`SetEnv ${env.join(' ')}`] : []),
      '',
    ].join('\n'),
  );
  chmodSync(config, 0o600);
  const proc = ep.spawn(['/usr/sbin/sshd', '-D', '-e', '-f', config], { label: 'sshd' });
  await proc.waitForOutput(/Server listening on/, 15_000);
  return { proc, fingerprint: fp, hostKeyFile };
}

/** Debian's sshd on every node of a network at once (each its own host key). */
export function startSshdAll(nodes: readonly Endpoint[], o: { authorizedKeys: string; env?: (i: number) => Record<string, string> | undefined }): Promise<Sshd[]> {
  return Promise.all(nodes.map((n, i) => startSshd(n, { authorizedKeys: o.authorizedKeys, env: o.env?.(i) })));
}

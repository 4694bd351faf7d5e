/**
 * `ferry update --dry-run`: what rsync would change to bring a running node's files to an image
 * version. The image is exported to a temporary directory on the server; the local rsync
 * (`-aHAX --numeric-ids --delete --itemize-changes --dry-run`) talks to the node's rsync over
 * Ferry's own verified SSH connection: its remote shell (`-e`) is `ferry ssh-pipe`, which opens
 * the connection with server/ssh/connect.ts (host keys checked as for exec) and pipes rsync's
 * protocol through the channel. Nothing is written on the node.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { boundedMap } from '../../common/bounded.js';
import { FerryError, toFerryError } from '../../common/errors.js';
import { run } from '../../common/run.js';
import type { DataDir } from '../context.js';
import { exportImage } from '../store/image-export.js';
import type { NodeResult } from './collate.js';
import { nodeTarget } from './exec.js';

/**
 * SystemImager's updateclient.local.exclude, plus what Ferry's install makes per node (host keys,
 * machine-id, hostname, fstab, network configuration): never overwritten or deleted.
 */
export const DEFAULT_UPDATE_EXCLUDES = [
  '/proc/', '/sys/', '/dev/', '/run/', '/tmp/', '/var/tmp/', '/home/', '/root/', '/mnt/', '/media/', '/lost+found/',
  '/var/log/', '/var/cache/', '/var/spool/', '/var/mail/', '/var/lib/dhcp/', '/var/lib/systemd/', '/var/lib/dbus/', '/var/lib/ferry/',
  '/boot/', '/etc/fstab', '/etc/mdadm/mdadm.conf', '/etc/machine-id', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf',
  '/etc/ssh/ssh_host_*', '/etc/network/interfaces', '/etc/systemd/network/', '/etc/netplan/', '/etc/NetworkManager/system-connections/',
];

/** Pure: the local rsync's argv. `rsh` is the remote shell command; the node is rsync's "host". */
export function rsyncArgv(o: { src: string; node: string; root: string; rsh: string; excludes: string[]; dryRun: boolean }): string[] {
  if (!o.root.startsWith('/') || o.root.split('/').includes('..')) {
    throw new FerryError('FERRY_E_UPDATE_BAD_ROOT', `--root "${o.root}" is not an absolute path without ..`, { details: { root: o.root }, hint: 'give the tree on the node as an absolute path, such as / or /srv/chroot' });
  }
  const root = posix.normalize(o.root + '/');
  return [
    'rsync', '-aHAX', '--numeric-ids', '--delete', '--itemize-changes', '--out-format=%i %n%L',
    ...(o.dryRun ? ['--dry-run'] : []),
    // Excludes are anchored at the transfer's root; with --delete they also protect the node's copies.
    ...o.excludes.map((e) => `--exclude=${e}`),
    '-e', o.rsh,
    o.src.replace(/\/*$/, '/'),
    `${o.node}:${root}`,
  ];
}

/** The remote shell rsync runs: this very ferry, its ssh-pipe command, the same data directory. */
export function selfRsh(d: DataDir, user: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [process.execPath, process.argv[1], 'ssh-pipe', '--data', d.dir, '--user', user].map(q).join(' ');
}

export async function updateDryRun(d: DataDir, nodes: string[], o: { image: string; root?: string; excludes?: string[]; fanout?: number; timeoutS?: number; user?: string }): Promise<NodeResult[]> {
  const work = mkdtempSync(join(tmpdir(), 'ferry-update-'));
  try {
    const src = join(work, 'tree');
    await exportImage(d, o.image, src, { devices: false });
    const excludes = [...DEFAULT_UPDATE_EXCLUDES, ...(o.excludes ?? [])];
    const rsh = selfRsh(d, o.user ?? 'root');
    return await boundedMap(nodes, o.fanout ?? 16, async (node): Promise<NodeResult> => {
      const started = Date.now();
      try {
        nodeTarget(d, node); // refuses a node without an address before rsync starts
        const argv = rsyncArgv({ src, node, root: o.root ?? '/', rsh, excludes, dryRun: true });
        const r = await run(argv, { timeoutMs: (o.timeoutS ?? 600) * 1000, quiet: true, maxBuffer: 4 << 20 });
        const changes = r.stdout.split('\n').filter((l) => l && !l.startsWith('.d..t') && l !== 'sending incremental file list').join('\n');
        return { node, outcome: { kind: 'exit', code: 0 }, stdout: changes ? changes + '\n' : '(no changes)\n', stderr: '', durationMs: Date.now() - started };
      } catch (e) {
        const fe = toFerryError(e);
        // ssh-pipe prints the connection's FerryError code on stderr: keep the first line as the group.
        const tailLine = String((fe.details as { stderrTail?: string }).stderrTail ?? '').split('\n').find((l) => /^FERRY_E_/.test(l));
        const m = tailLine ? /^(FERRY_E_[A-Z0-9_]+): (.*)$/.exec(tailLine) : null;
        return { node, outcome: { kind: 'error', code: m ? m[1] : fe.code, message: m ? m[2] : fe.message }, stdout: '', stderr: '', durationMs: Date.now() - started };
      }
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

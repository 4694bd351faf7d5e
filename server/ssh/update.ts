/**
 * `ferry update`: bring running nodes' files to an image version with rsync over Ferry's own
 * verified SSH connection. The local rsync talks to the node's rsync; its remote shell (`-e`) is
 * `ferry ssh-pipe`, which opens the connection with server/ssh/connect.ts (host keys checked as
 * for exec) and pipes rsync's protocol through the channel.
 *
 * Per node: the image's exported tree (one per version, server/store/tree-cache.ts) is synced
 * with `-aHAX --numeric-ids --delete` within the tree, skipping the default excludes and every
 * file Ferry's customization writes for that node. Those files are rendered again for the node
 * by the installer's own customization planner (injected by the CLI: the server does not import
 * the installer) and put in place by a second rsync after the first, so the image's copy never
 * overwrites them and --delete never removes them. Each real update is a deployment record of
 * kind `update` (server/db/updates.ts) with its events; `--dry-run` lists what would change and
 * records nothing.
 */
import { chmodSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { boundedMap } from '../../common/bounded.js';
import { FerryError, toFerryError } from '../../common/errors.js';
import type { CustomizationItem } from '../../common/schema/api.js';
import { run } from '../../common/run.js';
import type { DataDir } from '../context.js';
import { getNode } from '../db/inventory.js';
import { j } from '../db/index.js';
import { endUpdateRecord, startUpdateRecord, updateEvent } from '../db/updates.js';
import { getImage, manifestOf } from '../store/images.js';
import { cachedTree } from '../store/tree-cache.js';
import { withFerryKey } from './authorize.js';
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

/**
 * The node's identity, made once at install and never rendered again by an update: its
 * machine-id, SSH host keys (and the first-boot unit that makes them), fstab and mdadm.conf.
 */
const IDENTITY = [/^\/etc\/machine-id$/, /^\/etc\/ssh\/ssh_host_/, /^\/etc\/systemd\/system\/(multi-user\.target\.wants\/)?ferry-ssh-hostkeys\.service$/, /^\/etc\/fstab$/, /^\/etc\/mdadm\/mdadm\.conf$/];
/** User data: a file the customization wrote there (authorized_keys) may have been edited on the node since; the node's copy stays. */
const NODE_OWNED = ['/home/', '/root/'];

/** A customization operation as the installer's planner returns it (installer/customize/plan.ts Op). */
export type CustomizeOp =
  | { op: 'write'; path: string; content: string; encoding?: 'utf8' | 'base64'; mode?: number; uid?: number; gid?: number; why: string }
  | { op: 'mkdir'; path: string; mode: number; uid: number; gid: number; why: string }
  | { op: 'remove'; path: string; why: string }
  | { op: 'symlink'; path: string; target: string; why: string }
  | { op: 'chroot'; argv: string[]; why: string }
  | { op: 'warn'; path: string; code: string; message: string; why: string };

/** The installer's planner, bound to a tree on this host (the CLI wires installer/customize). */
export type CustomizeRenderer = (items: CustomizationItem[], c: { node: { name: string; macs: string[]; properties: Record<string, string> }; inputs: Record<string, string> }, tree: string) => Promise<CustomizeOp[]>;

export interface CustomizedFile {
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  content?: Buffer;
  target?: string;
  mode: number;
  uid: number;
  gid: number;
  why: string;
}

/**
 * Pure: the files an update puts in place after the rsync (the last write of a path wins, as
 * when the installer applies them in order), and what it leaves alone with the reason.
 */
export function customizedFiles(ops: CustomizeOp[]): { files: CustomizedFile[]; skipped: { what: string; why: string }[] } {
  const byPath = new Map<string, CustomizedFile>();
  const skipped: { what: string; why: string }[] = [];
  for (const op of ops) {
    if (op.op === 'chroot') {
      skipped.push({ what: op.argv.join(' '), why: `${op.why}: commands are not run on a running node` });
      continue;
    }
    if (op.op === 'warn') {
      skipped.push({ what: op.path, why: `${op.code}: ${op.message}` });
      continue;
    }
    const p = posix.normalize(op.path);
    if (op.op === 'remove') continue; // what the install removed from the image stays removed or excluded
    if (IDENTITY.some((re) => re.test(p))) continue;
    if (NODE_OWNED.some((d) => p.startsWith(d))) {
      skipped.push({ what: p, why: `${op.why}: under ${NODE_OWNED.find((d) => p.startsWith(d))}, the node's copy is kept` });
      continue;
    }
    byPath.delete(p);
    if (op.op === 'write') byPath.set(p, { path: p, kind: 'file', content: op.encoding === 'base64' ? Buffer.from(op.content, 'base64') : Buffer.from(op.content, 'utf8'), mode: op.mode ?? 0o644, uid: op.uid ?? 0, gid: op.gid ?? 0, why: op.why });
    else if (op.op === 'mkdir') byPath.set(p, { path: p, kind: 'dir', mode: op.mode, uid: op.uid, gid: op.gid, why: op.why });
    else byPath.set(p, { path: p, kind: 'symlink', target: op.target, mode: 0o777, uid: 0, gid: 0, why: op.why });
  }
  return { files: [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1)), skipped };
}

/** Pure: an rsync exclude pattern that matches exactly this path (anchored at the transfer's root). */
export function literalPattern(p: string): string {
  return p.replace(/[*?[\\]/g, (c) => '\\' + c);
}

/** Pure: the local rsync's argv. `rsh` is the remote shell command; the node is rsync's "host". */
export function rsyncArgv(o: { src: string; node: string; root: string; rsh: string; excludes: string[]; dryRun: boolean; filesFrom?: string; stats?: boolean; chownRoot?: boolean }): string[] {
  if (!o.root.startsWith('/') || o.root.split('/').includes('..')) {
    throw new FerryError('FERRY_E_UPDATE_BAD_ROOT', `--root "${o.root}" is not an absolute path without ..`, { details: { root: o.root }, hint: 'give the tree on the node as an absolute path, such as / or /srv/chroot' });
  }
  const root = posix.normalize(o.root + '/');
  return [
    'rsync', '-aHAX', '--numeric-ids',
    // The customized files: exactly the listed paths, their parent directories on the node left as they are.
    ...(o.filesFrom ? [`--files-from=${o.filesFrom}`, '--no-implied-dirs'] : ['--delete']),
    '--itemize-changes', '--out-format=%i %n%L',
    ...(o.stats ? ['--stats'] : []),
    ...(o.dryRun ? ['--dry-run'] : []),
    // Not root here: the files are ours, the node's copies belong to root.
    ...(o.chownRoot ? ['--chown=0:0'] : []),
    // Excludes are anchored at the transfer's root; with --delete they also protect the node's copies.
    ...o.excludes.map((e) => `--exclude=${e}`),
    '-e', o.rsh,
    o.src.replace(/\/*$/, '/'),
    `${o.node}:${root}`,
  ];
}

export interface RsyncStats {
  files?: number;
  created?: number;
  deleted?: number;
  transferred?: number;
  transferredBytes?: number;
  sentBytes?: number;
}

/** Pure: the numbers of rsync's --stats (rsync 3.x wording). */
export function parseRsyncStats(out: string): RsyncStats {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1].replace(/,/g, '')) : undefined;
  };
  const s: RsyncStats = {
    files: num(/^Number of files: ([0-9,]+)/m),
    created: num(/^Number of created files: ([0-9,]+)/m),
    deleted: num(/^Number of deleted files: ([0-9,]+)/m),
    transferred: num(/^Number of regular files transferred: ([0-9,]+)/m),
    transferredBytes: num(/^Total transferred file size: ([0-9,]+)/m),
    sentBytes: num(/^Total bytes sent: ([0-9,]+)/m),
  };
  for (const k of Object.keys(s) as (keyof RsyncStats)[]) if (s[k] === undefined) delete s[k];
  return s;
}

/** Pure: rsync's itemized lines (the --out-format ones), without the directories whose times alone differ. */
export function changeLines(out: string): string[] {
  return out.split('\n').filter((l) => /^([<>ch.*][fdLDS]|\*deleting)/.test(l) && !/^\.d\.\.t/.test(l));
}

/** The remote shell rsync runs: this very ferry, its ssh-pipe command, the same data directory. */
export function selfRsh(d: DataDir, user: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [process.execPath, process.argv[1], 'ssh-pipe', '--data', d.dir, '--user', user].map(q).join(' ');
}

/** Write the customized files into a directory of their own (owners need root here; else rsync gives them to root). */
function writeOverlay(dir: string, files: CustomizedFile[]): string {
  const asRoot = process.getuid?.() === 0;
  const list: string[] = [];
  for (const f of files) {
    const p = join(dir, f.path);
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    if (f.kind === 'dir') {
      mkdirSync(p, { recursive: true });
      chmodSync(p, f.mode);
    } else if (f.kind === 'symlink') symlinkSync(f.target!, p);
    else {
      writeFileSync(p, f.content!, { mode: 0o600 });
      chmodSync(p, f.mode);
    }
    if (asRoot) lchownSync(p, f.uid, f.gid);
    list.push(f.path.slice(1));
  }
  const listFile = join(dir, '..', 'files-from');
  writeFileSync(listFile, list.join('\n') + (list.length ? '\n' : ''));
  return listFile;
}

/** The error ssh-pipe printed (its first FERRY_E_ line on stderr), else the runner's. */
function updateError(e: unknown): FerryError {
  const fe = toFerryError(e);
  const tailLine = String((fe.details as { stderrTail?: string }).stderrTail ?? '').split('\n').find((l) => /^FERRY_E_/.test(l));
  const m = tailLine ? /^(FERRY_E_[A-Z0-9_]+): (.*)$/.exec(tailLine) : null;
  return m ? new FerryError(m[1], m[2], { details: { node: (fe.details as Record<string, unknown>).node } }) : fe;
}

export interface UpdateOptions {
  image: string;
  root?: string;
  excludes?: string[];
  fanout?: number;
  timeoutS?: number;
  user?: string;
  dryRun: boolean;
  actor: string;
  render: CustomizeRenderer;
}

export interface UpdateResult extends NodeResult {
  /** The update record (a real update that got as far as starting). */
  deployment?: number;
  changes: string[];
  customized: string[];
  stats?: RsyncStats;
}

export async function updateNodes(d: DataDir, nodes: string[], o: UpdateOptions): Promise<UpdateResult[]> {
  const row = getImage(d, o.image);
  const manifest = withFerryKey(d, manifestOf(row));
  const ref = `${row.name}@${row.version}`;
  const root = o.root ?? '/';
  const user = o.user ?? 'root';
  const { tree, release } = await cachedTree(d, row);
  const rsh = selfRsh(d, user);
  const batch = 'u-' + Date.now().toString(36);
  const work = mkdtempSync(join(tmpdir(), 'ferry-update-'));
  try {
    return await boundedMap(nodes.map((name, i) => ({ name, i })), o.fanout ?? 16, async ({ name, i }): Promise<UpdateResult> => {
      const started = Date.now();
      const base = { node: name, stderr: '', changes: [] as string[], customized: [] as string[] };
      let rec: ReturnType<typeof startUpdateRecord> | undefined;
      try {
        nodeTarget(d, name, user); // refuses a node without an address before anything starts
        // The root is checked before a record is opened.
        rsyncArgv({ src: tree, node: name, root, rsh, excludes: [], dryRun: true });
        const info = getNode(d, name);
        const lastInstall = d.db.prepare("SELECT inputs FROM deployments WHERE node_name = ? AND kind = 'install' ORDER BY id DESC LIMIT 1").get(name) as { inputs: string } | undefined;
        // As arming merges them (image, then node), over what the node's last install had (its --set inputs).
        const inputs = { ...j<Record<string, string>>(lastInstall?.inputs ?? '{}', {}), ...j<Record<string, string>>(row.inputs, {}), ...info.inputs };
        if (!o.dryRun) {
          rec = startUpdateRecord(d, name, manifest, { actor: o.actor, root, batch });
          updateEvent(d, rec, { state: 'start', object: name, message: `update to ${ref} over SSH (root ${root})`, details: { image: ref, digest: row.digest, root } });
        }
        const ops = await o.render(manifest.customizations ?? [], { node: { name, macs: info.macs, properties: info.properties }, inputs }, tree);
        const { files, skipped } = customizedFiles(ops);
        const excludes = [...DEFAULT_UPDATE_EXCLUDES, ...(o.excludes ?? []), ...files.map((f) => literalPattern(f.path))];
        const timeoutMs = (o.timeoutS ?? 600) * 1000;
        const r1 = await run(rsyncArgv({ src: tree, node: name, root, rsh, excludes, dryRun: o.dryRun, stats: !o.dryRun }), { timeoutMs, quiet: true, maxBuffer: 16 << 20 });
        const changes = changeLines(r1.stdout);
        const stats = o.dryRun ? undefined : parseRsyncStats(r1.stdout);
        if (o.dryRun) {
          return { ...base, outcome: { kind: 'exit', code: 0 }, stdout: changes.length ? changes.join('\n') + '\n' : '(no changes)\n', durationMs: Date.now() - started, changes, customized: files.map((f) => f.path) };
        }
        updateEvent(d, rec!, { state: 'info', object: 'rsync', bytes: stats?.transferredBytes, message: `${stats?.transferred ?? '?'} files sent, ${stats?.deleted ?? '?'} deleted, ${changes.length} changes`, details: { stats, changes: changes.slice(0, 1000), more: Math.max(0, changes.length - 1000) } });
        const dir = join(work, String(i), 'files');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const listFile = writeOverlay(dir, files);
        if (files.length) {
          await run(rsyncArgv({ src: dir, node: name, root, rsh, excludes: [], dryRun: false, filesFrom: listFile, chownRoot: process.getuid?.() !== 0 }), { timeoutMs, quiet: true, maxBuffer: 4 << 20 });
        }
        updateEvent(d, rec!, { state: 'info', object: 'customize', message: `${files.length} customized files rendered again and put in place${skipped.length ? `; ${skipped.length} left as the node has them` : ''}`, details: { files: files.map((f) => ({ path: f.path, why: f.why })), skipped } });
        endUpdateRecord(d, rec!, { ok: true });
        updateEvent(d, rec!, { state: 'end', object: name, message: `${name} runs ${ref}` });
        return {
          ...base, deployment: rec!.id, outcome: { kind: 'exit', code: 0 }, durationMs: Date.now() - started, changes, stats, customized: files.map((f) => f.path),
          stdout: `updated to ${ref}: ${stats?.transferred ?? 0} files sent, ${stats?.deleted ?? 0} deleted, ${files.length} customized files put in place\n`,
        };
      } catch (e) {
        const fe = updateError(e);
        if (rec) {
          const error = { code: fe.code, message: fe.message, details: fe.details as Record<string, unknown>, phase: 'update' };
          updateEvent(d, rec, { state: 'error', object: name, code: fe.code, message: fe.message });
          endUpdateRecord(d, rec, { ok: false, error });
        }
        return { ...base, deployment: rec?.id, outcome: { kind: 'error', code: fe.code, message: fe.message }, stdout: '', durationMs: Date.now() - started };
      }
    });
  } finally {
    release();
    rmSync(work, { recursive: true, force: true });
  }
}

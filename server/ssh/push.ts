/**
 * `ferry push`: one local file copied to many nodes over SFTP (ssh2's client, through the one
 * connection opener server/ssh/connect.ts, so host keys are verified as for `ferry exec`), with
 * the same bounded fan-out and per-node deadline (server/ssh/exec.ts onNodes). On each node the
 * file is written under a temporary name in DEST's directory, given its mode (and owner), then
 * renamed over DEST (OpenSSH's posix-rename): a reader sees the old file or the whole new one,
 * never half of it; a failed or cut transfer removes the temporary file.
 */
import { createReadStream, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, posix } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { FerryError } from '../../common/errors.js';
import type { DataDir } from '../context.js';
import { execCollect, type SshConnection } from './connect.js';
import { onNodes, type ExecOptions } from './exec.js';
import { formatHostPort, shellQuote } from './target.js';
import type { NodeResult } from './collate.js';

export interface PushPlan {
  src: string;
  /** Absolute path on the node. */
  dest: string;
  /** Permission bits given to the file (--mode, else the source's). */
  mode: number;
  /** --owner U:G: numeric ids go through SFTP, names through the node's chown. */
  owner?: { user: string; group?: string; uid?: number; gid?: number };
  size: number;
}

const NAME = /^(?:[0-9]+|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/;

function bad(what: string, value: string, rule: string, hint: string): FerryError {
  return new FerryError('FERRY_E_PUSH_BAD_ARGUMENT', `ferry push: ${what} "${value}" ${rule}`, { details: { what, value }, hint });
}

/** Pure: --mode as octal permission bits. */
export function parseMode(s: string): number {
  if (!/^[0-7]{3,4}$/.test(s)) throw bad('--mode', s, 'is not an octal mode of 3 or 4 digits', 'give it as chmod does, such as 0644 or 0755');
  return parseInt(s, 8);
}

/** Pure: --owner USER[:GROUP], names or numeric ids. */
export function parseOwner(s: string): NonNullable<PushPlan['owner']> {
  const [user, group, ...rest] = s.split(':');
  if (rest.length || !user || !NAME.test(user) || (group !== undefined && !NAME.test(group))) {
    throw bad('--owner', s, 'is not USER[:GROUP] (names or numeric ids)', 'give it as chown does, such as root:root or 1000:1000');
  }
  const num = (x?: string) => (x !== undefined && /^[0-9]+$/.test(x) ? Number(x) : undefined);
  return { user, group, uid: num(user), gid: num(group) };
}

/** Pure: DEST is absolute and clean; a DEST ending in / is a directory that gets SRC's base name. */
export function resolveDest(src: string, dest: string): string {
  if (!dest.startsWith('/') || dest.includes('\0') || dest.split('/').some((p) => p === '..' || p === '.')) {
    throw bad('DEST', dest, 'is not an absolute path without . or .. parts', 'give the full path on the node, such as /etc/motd or /etc/');
  }
  const full = dest.endsWith('/') ? dest + basename(src) : dest;
  const norm = posix.normalize(full);
  if (norm === '/' || norm.endsWith('/')) throw bad('DEST', dest, 'names no file', 'give the full path of the file on the node');
  return norm;
}

/** The temporary name beside DEST (same directory, so the rename stays on one file system). */
export function tempName(dest: string, nonce = randomBytes(6).toString('hex')): string {
  return posix.join(posix.dirname(dest), `.${posix.basename(dest)}.ferry-push-${nonce}`);
}

export function planPush(src: string, dest: string, o: { mode?: string; owner?: string }): PushPlan {
  let st;
  try {
    st = statSync(src);
  } catch (e) {
    throw new FerryError('FERRY_E_PUSH_SOURCE', `ferry push: cannot read the source file ${src}: ${(e as Error).message}`, { details: { src }, hint: 'give a regular file that exists and is readable' });
  }
  if (!st.isFile()) throw new FerryError('FERRY_E_PUSH_SOURCE', `ferry push: the source ${src} is not a regular file`, { details: { src }, hint: 'push one regular file at a time' });
  return {
    src,
    dest: resolveDest(src, dest),
    mode: o.mode !== undefined ? parseMode(o.mode) : st.mode & 0o7777,
    owner: o.owner !== undefined ? parseOwner(o.owner) : undefined,
    size: st.size,
  };
}

function sftpOf(c: SshConnection): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => c.client.sftp((err, s) => (err ? reject(pushError(c, 'open an SFTP session', err)) : resolve(s))));
}

function pushError(c: SshConnection, step: string, err: Error): FerryError {
  const where = formatHostPort(c.target);
  return new FerryError('FERRY_E_PUSH_FAILED', `${where}: could not ${step}: ${err.message}`, {
    details: { where, step, reason: err.message },
    hint: "check that DEST's directory exists on the node and is writable by the SSH user, and that sshd offers the sftp subsystem",
  });
}

const call = (c: SshConnection, step: string, f: (cb: (err?: Error | null) => void) => void) =>
  new Promise<void>((resolve, reject) => f((err) => (err ? reject(pushError(c, step, err)) : resolve())));

/** One node: write the temporary file, set mode and owner, rename it over DEST. */
export async function pushOne(c: SshConnection, p: PushPlan, signal: AbortSignal): Promise<void> {
  const sftp = await sftpOf(c);
  const tmp = tempName(p.dest);
  let written = false;
  // Cut by the deadline (--timeout): stop writing; the temporary file is removed below, while
  // onNodes keeps the connection open for a moment (CLEANUP_GRACE_MS).
  let cut: (() => void) | undefined;
  const onAbort = () => cut?.();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal.aborted) throw pushError(c, `write ${tmp}`, new Error('cut by --timeout'));
    await new Promise<void>((resolve, reject) => {
      // 'wx': never follow or reuse a name someone else put there.
      const out = sftp.createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
      const inp = createReadStream(p.src);
      let done = false;
      const fail = (e: Error) => {
        if (done) return;
        done = true;
        inp.destroy();
        out.destroy();
        reject(pushError(c, `write ${tmp}`, e));
      };
      cut = () => fail(new Error('cut by --timeout'));
      inp.on('error', fail);
      out.on('error', fail);
      out.on('open', () => (written = true));
      out.on('close', () => {
        if (done) return;
        done = true;
        resolve();
      });
      inp.pipe(out);
    });
    written = true;
    if (signal.aborted) throw pushError(c, `write ${tmp}`, new Error('cut by --timeout'));
    if (p.owner) {
      const { uid, gid, user, group } = p.owner;
      if (uid !== undefined && gid !== undefined) await call(c, `chown ${tmp}`, (cb) => sftp.chown(tmp, uid, gid, cb));
      // Names (and a user without group) need the node's own chown: SFTP carries numeric ids only.
      else await remoteChown(c, group !== undefined ? `${user}:${group}` : user, tmp);
    }
    // After chown, which clears set-id bits.
    await call(c, `chmod ${tmp}`, (cb) => sftp.chmod(tmp, p.mode, cb));
    await call(c, `rename ${tmp} to ${p.dest}`, (cb) => sftp.ext_openssh_rename(tmp, p.dest, cb));
    written = false;
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Also when the open's answer had not come yet: unlinking a name never made fails harmlessly.
    if (written || signal.aborted) await new Promise<void>((r) => sftp.unlink(tmp, () => r()));
    sftp.end();
  }
}

async function remoteChown(c: SshConnection, spec: string, path: string): Promise<void> {
  const r = await execCollect(c, `chown -h -- ${shellQuote(spec)} ${shellQuote(path)}`, { maxBytes: 4096 });
  if (r.code !== 0) throw pushError(c, `chown ${spec} ${path}`, new Error(r.stderr.toString('utf8').trim() || `chown exited with ${r.code}`));
}

/** `ferry push`: every node's result, collated like `ferry exec`'s. */
export function pushToNodes(d: DataDir, nodes: string[], p: PushPlan, o: ExecOptions): Promise<NodeResult[]> {
  return onNodes(
    d,
    nodes,
    o,
    (c, signal) => pushOne(c, p, signal),
    (node, _r, ms) => ({ node, outcome: { kind: 'exit', code: 0 }, stdout: `${p.dest}: ${p.size} bytes, mode ${p.mode.toString(8).padStart(4, '0')}${p.owner ? `, owner ${p.owner.user}${p.owner.group !== undefined ? ':' + p.owner.group : ''}` : ''}\n`, stderr: '', durationMs: ms }),
  );
}

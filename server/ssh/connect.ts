/**
 * Ferry's SSH connections (npm ssh2): one place that opens them, verifies the host key against
 * the record before authenticating (ssh2's hostVerifier: the key is refused during the key
 * exchange, so no password, key or command reaches a machine that is not the recorded one), and
 * turns every failure into a FerryError with a stable code. Every connection has a deadline.
 */
import ssh2 from 'ssh2';
import type { Client, ClientChannel } from 'ssh2';
import { FerryError } from '../../common/errors.js';
import type { DataDir } from '../context.js';
import { fingerprint, publicLine } from './keys.js';
import { decideHostKey, recordHostKey, recordedFingerprints, type KeyOwner } from './trust.js';
import { formatHostPort, type SshTarget } from './target.js';

export interface ConnectOptions {
  /** Private key text (Ferry's own, or --identity). */
  privateKey: string;
  owner: KeyOwner;
  /** --host-key fingerprints. */
  hostKeys?: string[];
  acceptNew?: boolean;
  /** Handshake and authentication deadline (default 15 s, as ClusterShell's connect timeout). */
  connectTimeoutMs?: number;
}

export interface SshConnection {
  client: Client;
  target: SshTarget;
  /** The host key's fingerprint (verified). */
  hostKey: string;
  close(): void;
}

/** Open a verified, authenticated connection. The caller closes it. */
export async function connect(d: DataDir, target: SshTarget, o: ConnectOptions): Promise<SshConnection> {
  const where = 'node' in o.owner && o.owner.node ? `node ${o.owner.node} (${formatHostPort(target)})` : formatHostPort(target);
  const policy = { recorded: recordedFingerprints(d, o.owner), given: o.hostKeys ?? [], acceptNew: o.acceptNew ?? false };
  const timeoutMs = o.connectTimeoutMs ?? 15_000;
  const client = new ssh2.Client();
  let refused: FerryError | undefined;
  let presented: { fp: string; line: string; record: boolean; source?: string } | undefined;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (e: FerryError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      client.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () =>
        fail(
          new FerryError('FERRY_E_SSH_TIMEOUT', `no SSH session with ${where} within ${timeoutMs / 1000} s`, {
            details: { where, timeoutMs },
            hint: 'check that the machine is up and sshd listens on that address and port (ferry node set NODE --address HOST[:PORT])',
          }),
        ),
      timeoutMs,
    );
    client.on('ready', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve();
    });
    client.on('error', (e: Error & { level?: string; code?: string }) => {
      if (refused) return fail(refused);
      if (e.level === 'client-authentication') {
        return fail(
          new FerryError('FERRY_E_SSH_AUTH', `${where} refused Ferry's key for user ${target.user}`, {
            details: { where, user: target.user },
            hint: "authorize the key: put the output of `ferry ssh-key` into the user's ~/.ssh/authorized_keys on the machine, or give --identity FILE",
          }),
        );
      }
      fail(
        new FerryError('FERRY_E_SSH_UNREACHABLE', `cannot reach ${where} over SSH: ${e.code ?? ''}${e.code ? ' ' : ''}${e.message}`, {
          details: { where, reason: e.message, errno: e.code },
          hint: 'check the address and port, that the machine is up and sshd runs (ferry node show NODE)',
        }),
      );
    });
    client.on('close', () => fail(refused ?? new FerryError('FERRY_E_SSH_UNREACHABLE', `${where} closed the SSH connection during the handshake`, { details: { where }, hint: 'look at the sshd log on the machine' })));
    client.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: o.privateKey,
      readyTimeout: timeoutMs,
      // A peer that vanishes without a FIN (cable, power) is noticed within about 15 s.
      keepaliveInterval: 5000,
      keepaliveCountMax: 3,
      // ssh2 passes the raw key blob when hostHash is not set.
      hostVerifier: (key: Buffer) => {
        const fp = fingerprint(key);
        const dec = decideHostKey(where, fp, policy);
        if (!dec.ok) {
          refused = dec.error;
          return false;
        }
        presented = { fp, line: publicLine(key), record: dec.record, source: dec.source };
        return true;
      },
    });
  });
  // Recorded only once the session is up (authenticated): a failed attempt records nothing.
  if (presented!.record) recordHostKey(d, o.owner, presented!.fp, presented!.line, presented!.source!);
  return { client, target, hostKey: presented!.fp, close: () => client.end() };
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: Buffer;
  stderr: Buffer;
  /** Output beyond the cap was dropped (the tail is lost, the head kept). */
  truncated: boolean;
}

/** Run one command string on the remote shell, collecting its output up to `maxBytes` per stream. */
export function execCollect(c: SshConnection, command: string, o: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<ExecResult> {
  const max = o.maxBytes ?? 1 << 20;
  return new Promise((resolve, reject) => {
    c.client.exec(command, (err, ch: ClientChannel) => {
      if (err) return reject(channelError(c, err));
      const out: Buffer[] = [];
      const errs: Buffer[] = [];
      let outLen = 0;
      let errLen = 0;
      let truncated = false;
      let code: number | null = null;
      let signal: string | undefined;
      ch.on('data', (b: Buffer) => {
        if (outLen < max) out.push(b.subarray(0, max - outLen));
        else truncated = true;
        outLen += b.length;
      });
      ch.stderr.on('data', (b: Buffer) => {
        if (errLen < max) errs.push(b.subarray(0, max - errLen));
        else truncated = true;
        errLen += b.length;
      });
      ch.on('exit', (c2: number | null, sig?: string) => {
        code = c2;
        signal = sig ?? undefined;
      });
      ch.on('close', () => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(errs), truncated: truncated || outLen > max || errLen > max }));
      o.signal?.addEventListener('abort', () => ch.close(), { once: true });
    });
  });
}

export function channelError(c: SshConnection, err: Error): FerryError {
  return new FerryError('FERRY_E_SSH_CHANNEL', `${formatHostPort(c.target)} refused a command channel: ${err.message}`, {
    details: { where: formatHostPort(c.target), reason: err.message },
    hint: "check the machine's sshd configuration (MaxSessions, ForceCommand) and its log",
  });
}

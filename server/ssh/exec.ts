/**
 * `ferry exec`: one command on many nodes over SSH, with bounded fan-out (at most `fanout`
 * connections open at once, default 64 as ClusterShell's), a deadline per node covering connect
 * and command, and one result per node (server/ssh/collate.ts gathers them).
 */
import { boundedMap } from '../../common/bounded.js';
import { FerryError, toFerryError } from '../../common/errors.js';
import type { DataDir } from '../context.js';
import { getNodeRow } from '../db/inventory.js';
import { connect, execCollect, type SshConnection } from './connect.js';
import { ferryKey } from './keys.js';
import { parseTarget, type SshTarget } from './target.js';
import { ownerOf } from './trust.js';
import type { NodeResult } from './collate.js';

export interface ExecOptions {
  fanout?: number;
  /** Per node, connect plus command, in seconds (default 60). */
  timeoutS?: number;
  user?: string;
  acceptNew?: boolean;
  /** Per node and stream (default 1 MiB). */
  maxOutputBytes?: number;
}

/** Where and as whom a node is reached; refuses a node without an address. */
export function nodeTarget(d: DataDir, name: string, user = 'root'): { target: SshTarget; id: number } {
  const row = getNodeRow(d, name);
  if (!row.address) {
    throw new FerryError('FERRY_E_SSH_NO_ADDRESS', `node ${name} has no SSH address`, {
      details: { node: name },
      hint: `set it: ferry node set ${name} --address HOST[:PORT]`,
    });
  }
  const t = parseTarget(row.address, 'address', { allowUser: false });
  return { target: { ...t, user }, id: row.id };
}


/** How long a session cut by its deadline may take to tidy up before its connection closes. */
export const CLEANUP_GRACE_MS = 5000;

/** Run a session function on every node, each under its own deadline. */
export async function onNodes<R>(
  d: DataDir,
  nodes: string[],
  o: ExecOptions,
  session: (c: SshConnection, signal: AbortSignal) => Promise<R>,
  toResult: (node: string, r: R, ms: number) => NodeResult,
): Promise<NodeResult[]> {
  const fanout = o.fanout ?? 64;
  const timeoutS = o.timeoutS ?? 60;
  const key = ferryKey(d.dir).privateKey;
  return boundedMap(nodes, fanout, async (node) => {
    const started = Date.now();
    const ms = () => Date.now() - started;
    const ac = new AbortController();
    let conn: SshConnection | undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve('timeout');
      }, timeoutS * 1000);
    });
    const work = (async () => {
      const { target, id } = nodeTarget(d, node, o.user);
      conn = await connect(d, target, { privateKey: key, owner: ownerOf(target, { id, name: node }), acceptNew: o.acceptNew, connectTimeoutMs: Math.min(15_000, timeoutS * 1000) });
      if (ac.signal.aborted) return 'timeout' as const;
      return { r: await session(conn, ac.signal) };
    })();
    try {
      const v = await Promise.race([work, deadline]);
      if (v === 'timeout') {
        work.catch(() => {});
        // The session saw the abort: it gets a moment, with the connection still open, to tidy
        // up on the node (push removes its temporary file) before the connection closes.
        await Promise.race([work.catch(() => {}), new Promise((r) => setTimeout(r, CLEANUP_GRACE_MS).unref())]);
        return { node, outcome: { kind: 'timeout', seconds: timeoutS }, stdout: '', stderr: '', durationMs: ms() };
      }
      return toResult(node, v.r, ms());
    } catch (e) {
      const fe = toFerryError(e);
      return { node, outcome: { kind: 'error', code: fe.code, message: fe.message }, stdout: '', stderr: '', durationMs: ms() };
    } finally {
      clearTimeout(timer);
      conn?.close();
      // A connection still opening when the deadline passed closes when it comes up.
      work.then(() => conn?.close(), () => {});
    }
  });
}

/** `ferry exec`: the command words are joined with spaces for the remote shell, as ssh does. */
export function execOnNodes(d: DataDir, nodes: string[], command: string[], o: ExecOptions): Promise<NodeResult[]> {
  const text = command.join(' ');
  return onNodes(
    d,
    nodes,
    o,
    (c, signal) => execCollect(c, text, { maxBytes: o.maxOutputBytes, signal }),
    (node, r, ms) => ({ node, outcome: { kind: 'exit', code: r.code, signal: r.signal }, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), durationMs: ms, truncated: r.truncated }),
  );
}

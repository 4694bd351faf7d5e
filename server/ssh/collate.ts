/**
 * Collated output of commands run on many nodes, as ClusterShell's `clubak -b` prints it: nodes
 * whose output and outcome are identical share one block headed by their node set in range
 * notation (common/nodeset.ts), the largest group first. Nodes that could not be reached, timed
 * out or failed otherwise form groups of their own, by error code. Pure.
 */
import { foldNodeSet } from '../../common/nodeset.js';

export type NodeOutcome =
  | { kind: 'exit'; code: number | null; signal?: string }
  | { kind: 'timeout'; seconds: number }
  | { kind: 'error'; code: string; message: string };

export interface NodeResult {
  node: string;
  outcome: NodeOutcome;
  stdout: string;
  stderr: string;
  durationMs: number;
  truncated?: boolean;
}

export interface ResultGroup {
  nodes: string[];
  nodeset: string;
  outcome: NodeOutcome;
  stdout: string;
  stderr: string;
}

function outcomeKey(o: NodeOutcome): string {
  // Errors group by code: their messages name each node's own address.
  if (o.kind === 'error') return `error:${o.code}`;
  if (o.kind === 'timeout') return `timeout:${o.seconds}`;
  return `exit:${o.code}:${o.signal ?? ''}`;
}

export function collate(results: NodeResult[]): ResultGroup[] {
  const groups = new Map<string, ResultGroup>();
  for (const r of results) {
    const key = JSON.stringify([outcomeKey(r.outcome), r.stdout, r.stderr]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { nodes: [], nodeset: '', outcome: r.outcome, stdout: r.stdout, stderr: r.stderr }));
    g.nodes.push(r.node);
  }
  const out = [...groups.values()];
  for (const g of out) {
    g.nodes.sort();
    g.nodeset = foldNodeSet(g.nodes);
  }
  // Largest first; ties by node set so the order does not depend on which node answered first.
  return out.sort((a, b) => b.nodes.length - a.nodes.length || (a.nodeset < b.nodeset ? -1 : a.nodeset > b.nodeset ? 1 : 0));
}

export function describeOutcome(o: NodeOutcome): string {
  if (o.kind === 'timeout') return `timed out after ${o.seconds} s`;
  if (o.kind === 'error') return `${o.code}: ${o.message}`;
  if (o.signal) return `killed by signal ${o.signal}`;
  return o.code === null ? 'no exit status' : `exit code ${o.code}`;
}

/** The text of the collated groups (clubak's layout, with the outcome under each header). */
export function formatGroups(groups: ResultGroup[]): string {
  const lines: string[] = [];
  for (const g of groups) {
    const head = `${g.nodeset} (${g.nodes.length})`;
    const rule = '-'.repeat(Math.min(Math.max(head.length, 15), 79));
    lines.push(rule, head, rule);
    // One error message for the group: the first node's (they share the code).
    if (!(g.outcome.kind === 'exit' && g.outcome.code === 0 && !g.outcome.signal)) lines.push(`[${describeOutcome(g.outcome)}]`);
    if (g.stdout) lines.push(...g.stdout.replace(/\n$/, '').split('\n'));
    if (g.stderr) lines.push(...g.stderr.replace(/\n$/, '').split('\n').map((l) => `stderr: ${l}`));
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** clush -S: the largest exit code of all nodes; 255 for a node that was not run on (ssh's own). */
export function overallExit(results: NodeResult[]): number {
  let worst = 0;
  for (const r of results) {
    const c = r.outcome.kind === 'exit' ? (r.outcome.signal ? 255 : (r.outcome.code ?? 255)) : 255;
    worst = Math.max(worst, c);
  }
  return worst;
}

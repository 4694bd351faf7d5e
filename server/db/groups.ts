/**
 * Groups (nesting, members, a group's default transport), the transport a node deploys with by
 * default, and selections (`ferry deploy web hw.memory>=64GiB`): moved out of inventory.ts, which
 * keeps nodes, layouts and discovered MACs. Every change writes an audit row in the same
 * transaction.
 */
import { FerryError } from '../../common/errors.js';
import { TRANSPORTS, type TransportKind } from '../../common/protocol.js';
import { parseBytes } from '../../common/units.js';
import { now, type DataDir } from '../context.js';
import { assertName } from '../store/images.js';
import { checkChoice, ensureGroup, getNodeRow, listNodes, type NodeRow } from './inventory.js';

// ---------------------------------------------------------------- groups

export interface GroupInfo {
  name: string;
  description?: string;
  /** Default transport of the group's nodes (a node's own default wins). */
  transport?: TransportKind;
  nodes: string[];
  includes: string[];
  /** Every node of the group and of the groups it includes, recursively. */
  allNodes: string[];
}


function getGroupRow(d: DataDir, name: string): { id: number; name: string; description: string | null; transport: string | null } {
  const g = d.db.prepare('SELECT id, name, description, transport FROM groups WHERE name = ?').get(name) as { id: number; name: string; description: string | null; transport: string | null } | undefined;
  if (!g) throw new FerryError('FERRY_E_GROUP_NOT_FOUND', `no group "${name}"`, { details: { group: name }, hint: 'list the groups with `ferry group ls`' });
  return g;
}

/** The nodes of a group and every group nested in it (cycles are refused on insert). */
export function groupMembers(d: DataDir, name: string): string[] {
  const seen = new Set<number>();
  const nodes = new Set<string>();
  const walk = (id: number) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const n of d.db.prepare('SELECT n.name FROM nodes n JOIN group_nodes gn ON gn.node_id = n.id WHERE gn.group_id = ?').all(id) as { name: string }[]) nodes.add(n.name);
    for (const c of d.db.prepare('SELECT child_id FROM group_groups WHERE parent_id = ?').all(id) as { child_id: number }[]) walk(c.child_id);
  };
  walk(getGroupRow(d, name).id);
  return [...nodes].sort();
}

export function groupInfo(d: DataDir, name: string): GroupInfo {
  const g = getGroupRow(d, name);
  return {
    name: g.name,
    description: g.description ?? undefined,
    transport: (g.transport as TransportKind | null) ?? undefined,
    nodes: (d.db.prepare('SELECT n.name FROM nodes n JOIN group_nodes gn ON gn.node_id = n.id WHERE gn.group_id = ? ORDER BY n.name').all(g.id) as { name: string }[]).map((r) => r.name),
    includes: (d.db.prepare('SELECT c.name FROM groups c JOIN group_groups gg ON gg.child_id = c.id WHERE gg.parent_id = ? ORDER BY c.name').all(g.id) as { name: string }[]).map((r) => r.name),
    allNodes: groupMembers(d, name),
  };
}

export function listGroups(d: DataDir): GroupInfo[] {
  return (d.db.prepare('SELECT name FROM groups ORDER BY name').all() as { name: string }[]).map((g) => groupInfo(d, g.name));
}

/** Create a group or add to it: nodes and included (nested) groups. */
export function addToGroup(d: DataDir, name: string, o: { nodes?: string[]; includes?: string[]; description?: string; transport?: string | null }, actor: string): GroupInfo {
  checkChoice(o.transport ?? undefined, [...TRANSPORTS], 'transport');
  d.write(() => {
    const id = ensureGroup(d, name);
    if (o.description !== undefined) d.db.prepare('UPDATE groups SET description = ? WHERE id = ?').run(o.description, id);
    if (o.transport !== undefined) d.db.prepare('UPDATE groups SET transport = ? WHERE id = ?').run(o.transport, id);
    for (const n of o.nodes ?? []) d.db.prepare('INSERT OR IGNORE INTO group_nodes (group_id, node_id) VALUES (?, ?)').run(id, getNodeRow(d, n).id);
    for (const c of o.includes ?? []) {
      const child = getGroupRow(d, c);
      if (child.id === id || includesGroup(d, child.id, id)) {
        throw new FerryError('FERRY_E_GROUP_CYCLE', `including group ${c} in ${name} would make a cycle`, { details: { group: name, include: c }, hint: 'groups nest as a tree or DAG; remove the reverse inclusion first' });
      }
      d.db.prepare('INSERT OR IGNORE INTO group_groups (parent_id, child_id) VALUES (?, ?)').run(id, child.id);
    }
    d.audit(actor, 'group.add', name, o);
  });
  return groupInfo(d, name);
}

function includesGroup(d: DataDir, from: number, target: number): boolean {
  const seen = new Set<number>();
  const stack = [from];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === target) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const c of d.db.prepare('SELECT child_id FROM group_groups WHERE parent_id = ?').all(id) as { child_id: number }[]) stack.push(c.child_id);
  }
  return false;
}

/** Remove members from a group, or the whole group when no member is named. */
export function removeFromGroup(d: DataDir, name: string, o: { nodes?: string[]; includes?: string[] }, actor: string): void {
  d.write(() => {
    const g = getGroupRow(d, name);
    if (!o.nodes?.length && !o.includes?.length) {
      d.db.prepare('DELETE FROM groups WHERE id = ?').run(g.id);
    } else {
      for (const n of o.nodes ?? []) d.db.prepare('DELETE FROM group_nodes WHERE group_id = ? AND node_id = ?').run(g.id, getNodeRow(d, n).id);
      for (const c of o.includes ?? []) d.db.prepare('DELETE FROM group_groups WHERE parent_id = ? AND child_id = ?').run(g.id, getGroupRow(d, c).id);
    }
    d.audit(actor, 'group.rm', name, o);
  });
}

/**
 * A node's default transport: its own, else the one its groups agree on (groups that include
 * its groups count too), else http. Groups that disagree are an error naming them, so the
 * choice never depends on the order of rows.
 */
export function defaultTransport(d: DataDir, node: NodeRow): { kind: TransportKind; from: string } {
  if (node.transport) return { kind: node.transport as TransportKind, from: `node ${node.name}` };
  const direct = (d.db.prepare('SELECT group_id FROM group_nodes WHERE node_id = ?').all(node.id) as { group_id: number }[]).map((r) => r.group_id);
  const seen = new Set<number>();
  const stack = [...direct];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const p of d.db.prepare('SELECT parent_id FROM group_groups WHERE child_id = ?').all(id) as { parent_id: number }[]) stack.push(p.parent_id);
  }
  const set = new Map<string, string[]>();
  for (const id of [...seen].sort((a, b) => a - b)) {
    const g = d.db.prepare('SELECT name, transport FROM groups WHERE id = ?').get(id) as { name: string; transport: string | null };
    if (g.transport) set.set(g.transport, [...(set.get(g.transport) ?? []), g.name]);
  }
  if (set.size > 1) {
    const which = [...set].map(([k, gs]) => `${k} (${gs.join(', ')})`).join(' and ');
    throw new FerryError('FERRY_E_TRANSPORT_CONFLICT', `node ${node.name}'s groups set different default transports: ${which}`, {
      details: { node: node.name, groups: Object.fromEntries(set) },
      hint: `give --transport on ferry deploy, or set the node's own: ferry node set ${node.name} --transport KIND`,
    });
  }
  const [only] = [...set];
  return only ? { kind: only[0] as TransportKind, from: `group ${only[1].join(', ')}` } : { kind: 'http', from: 'default' };
}

const COMPARE_RE = /^([A-Za-z0-9_][A-Za-z0-9_.-]*)(>=|<=)(.+)$/;

/**
 * Node selections as the CLI writes them: `NAME`, `@GROUP` (nested groups included),
 * `KEY=VALUE` (nodes whose property KEY is VALUE), `KEY>=SIZE` and `KEY<=SIZE` (numeric
 * properties such as hw.memory against a number or a size with a unit). The union, sorted, each once.
 */
export function selectNodes(d: DataDir, selectors: string[]): string[] {
  const out = new Set<string>();
  for (const s of selectors) {
    if (s.startsWith('@')) {
      for (const n of groupMembers(d, s.slice(1))) out.add(n);
    } else if (COMPARE_RE.test(s)) {
      // hw.memory>=64GiB, hw.cpu.threads<=8: numeric properties (sizes with units) against a bound.
      const [, k, op, v] = COMPARE_RE.exec(s)!;
      const bound = parseBytes(v);
      const hits = listNodes(d).filter((n) => {
        const x = n.properties[k];
        if (x === undefined || !/^\d+$/.test(x)) return false;
        return op === '>=' ? BigInt(x) >= bound : BigInt(x) <= bound;
      });
      if (!hits.length) throw new FerryError('FERRY_E_NODE_NOT_FOUND', `no node has a numeric property ${k} ${op} ${v}`, { details: { selector: s }, hint: 'list properties with `ferry node show NODE` (hw.* come from the installer\'s inventory)' });
      for (const n of hits) out.add(n.name);
    } else if (s.includes('=')) {
      const [k, ...rest] = s.split('=');
      const v = rest.join('=');
      const hits = listNodes(d).filter((n) => n.properties[k] === v);
      if (!hits.length) throw new FerryError('FERRY_E_NODE_NOT_FOUND', `no node has property ${k}=${v}`, { details: { selector: s }, hint: 'list properties with `ferry node ls --json`' });
      for (const n of hits) out.add(n.name);
    } else {
      out.add(getNodeRow(d, s).name);
    }
  }
  return [...out].sort();
}


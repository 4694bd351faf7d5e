/**
 * Nodes, layouts and discovered MACs (groups, default transports and selections are in
 * groups.ts). Every change writes an audit row in the same transaction.
 */
import { createHash } from 'node:crypto';
import { FerryError, ValidationError, type Problem } from '../../common/errors.js';
import { TRANSPORTS, type BootAction, type FinishAction, type TransportKind } from '../../common/protocol.js';
import { normalizeMac } from '../../common/mac.js';
import { now, type DataDir } from '../context.js';
import { parseLayout } from '../../layout/parse.js';
import { assertName, findImage, parseRef } from '../store/images.js';
import { j } from './index.js';
import { parseHostKey } from '../ssh/keys.js';
import { formatAddress, parseTarget } from '../ssh/target.js';
import { recordHostKey } from '../ssh/trust.js';
import { parseBytes } from '../../common/units.js';
import { summarise, type Inventory, type InventorySummary } from '../../common/inventory.js';
import { runningImage, type RunningImage } from './updates.js';
import { applyPowerChanges, powerInfo, type PowerChanges, type PowerInfo } from './power.js';

export interface NodeRow {
  id: number;
  name: string;
  image: string | null;
  layout_digest: string | null;
  inputs: string;
  properties: string;
  boot_action: BootAction;
  bootloader: string;
  finish: string;
  disk_map: string | null;
  /** Default transport (NULL: the groups' default, else http). */
  transport: string | null;
  /** Where Ferry reaches the node over SSH: HOST[:PORT] (server/ssh/target.ts). */
  address: string | null;
  created_at: string;
  updated_at: string;
}

export interface NodeInfo {
  name: string;
  macs: string[];
  image?: string;
  layout?: { digest: string; source?: string };
  inputs: Record<string, string>;
  properties: Record<string, string>;
  bootAction: BootAction;
  bootloader: 'auto' | 'none' | 'bios' | 'uefi';
  finish: FinishAction;
  diskMap?: Record<string, string>;
  /** The node's own default transport, when set. */
  transport?: TransportKind;
  /** Where Ferry reaches the node over SSH (HOST[:PORT]). */
  address?: string;
  /** The SSH host keys Ferry trusts for it, by fingerprint, with where each came from. */
  hostKeys: { fingerprint: string; source: string }[];
  /** The power driver and address (never the password: only whether one is stored). */
  power?: PowerInfo;
  /** The image version the node runs: its newest successful record, install or update (server/db/updates.ts). */
  running?: RunningImage;
  groups: string[];
  createdAt: string;
  updatedAt: string;
}

/** The one MAC parser (common/mac.ts), under the name server/api uses. */
export { parseMac as normaliseMac } from '../../common/mac.js';

export const KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** KEY=VALUE pairs (customization inputs, properties) into a record, every problem at once. */
export function parsePairs(items: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  const problems: Problem[] = [];
  items.forEach((it, i) => {
    const eq = it.indexOf('=');
    const k = eq < 0 ? it : it.slice(0, eq);
    if (eq < 0) problems.push({ severity: 'error', code: 'FERRY_E_BAD_PAIR', path: `${what}[${i}]`, message: `"${it}" is not KEY=VALUE` });
    else if (!KEY_RE.test(k)) problems.push({ severity: 'error', code: 'FERRY_E_BAD_PAIR', path: `${what}[${i}]`, message: `key "${k}" may hold only letters, digits, "_", "." and "-"` });
    else out[k] = it.slice(eq + 1);
  });
  if (problems.length) throw new ValidationError('FERRY_E_BAD_PAIR', `${what} values are invalid`, problems);
  return out;
}

/**
 * Store a layout by digest after validating it with the layout reader the installer uses,
 * so a broken layout is refused when it is assigned, not on the node during the install.
 */
export function storeLayout(d: DataDir, xml: string, source?: string): string {
  parseLayout(xml, { file: source });
  const digest = 'sha256:' + createHash('sha256').update(xml).digest('hex');
  d.db.prepare('INSERT OR IGNORE INTO layouts (digest, xml, source, created_at) VALUES (?, ?, ?, ?)').run(digest, xml, source ?? null, now());
  return digest;
}

export function getLayout(d: DataDir, digest: string): { digest: string; xml: string; source: string | null } {
  const r = d.db.prepare('SELECT digest, xml, source FROM layouts WHERE digest = ?').get(digest) as { digest: string; xml: string; source: string | null } | undefined;
  if (!r) throw new FerryError('FERRY_E_LAYOUT_NOT_FOUND', `no stored layout ${digest}`, { details: { digest }, hint: 'give the layout file with --layout FILE' });
  return r;
}

function nodeInfo(d: DataDir, r: NodeRow): NodeInfo {
  const macs = (d.db.prepare('SELECT mac FROM node_macs WHERE node_id = ? ORDER BY mac').all(r.id) as { mac: string }[]).map((m) => m.mac);
  const groups = (d.db.prepare('SELECT g.name FROM groups g JOIN group_nodes gn ON gn.group_id = g.id WHERE gn.node_id = ? ORDER BY g.name').all(r.id) as { name: string }[]).map((g) => g.name);
  const layout = r.layout_digest ? (d.db.prepare('SELECT digest, source FROM layouts WHERE digest = ?').get(r.layout_digest) as { digest: string; source: string | null }) : undefined;
  return {
    name: r.name,
    macs,
    image: r.image ?? undefined,
    layout: layout ? { digest: layout.digest, source: layout.source ?? undefined } : undefined,
    inputs: j(r.inputs, {}),
    properties: j(r.properties, {}),
    bootAction: r.boot_action,
    bootloader: r.bootloader as NodeInfo['bootloader'],
    finish: r.finish as FinishAction,
    diskMap: r.disk_map ? j(r.disk_map, {}) : undefined,
    transport: (r.transport as TransportKind | null) ?? undefined,
    address: r.address ?? undefined,
    hostKeys: d.db.prepare('SELECT fingerprint, source FROM ssh_host_keys WHERE node_id = ? ORDER BY id').all(r.id) as { fingerprint: string; source: string }[],
    power: powerInfo(d, r.id),
    running: runningImage(d, r.id),
    groups,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function findNode(d: DataDir, name: string): NodeRow | undefined {
  return d.db.prepare('SELECT * FROM nodes WHERE name = ?').get(name) as NodeRow | undefined;
}

export function getNodeRow(d: DataDir, name: string): NodeRow {
  const r = findNode(d, name);
  if (!r) throw new FerryError('FERRY_E_NODE_NOT_FOUND', `no node "${name}"`, { details: { node: name }, hint: 'list the nodes with `ferry node ls`' });
  return r;
}

export function getNode(d: DataDir, name: string): NodeInfo {
  return nodeInfo(d, getNodeRow(d, name));
}

export function nodeByMac(d: DataDir, mac: string): NodeRow | undefined {
  return d.db.prepare('SELECT n.* FROM nodes n JOIN node_macs m ON m.node_id = n.id WHERE m.mac = ?').get(mac) as NodeRow | undefined;
}

export interface NodeChanges {
  macs?: string[];
  addMacs?: string[];
  removeMacs?: string[];
  image?: string | null;
  layoutXml?: string;
  layoutSource?: string;
  clearLayout?: boolean;
  inputs?: Record<string, string>;
  unsetInputs?: string[];
  properties?: Record<string, string>;
  unsetProperties?: string[];
  groups?: string[];
  removeGroups?: string[];
  bootAction?: BootAction;
  bootloader?: string;
  finish?: string;
  diskMap?: Record<string, string> | null;
  /** A default transport, or null to clear it. */
  transport?: string | null;
  /** SSH address HOST[:PORT], or null to clear it. */
  address?: string | null;
  /** SSH host keys to trust (fingerprints or public key lines), recorded with source `operator`. */
  hostKeys?: string[];
  /** Forget every recorded SSH host key (a reinstalled machine has new ones). */
  clearHostKeys?: boolean;
  /** Power driver settings (server/db/power.ts). */
  power?: PowerChanges;
}

const BOOTLOADERS = ['auto', 'none', 'bios', 'uefi'];
const FINISH = ['reboot', 'poweroff', 'stay'];

export function checkChoice(v: string | undefined, allowed: string[], what: string): void {
  if (v !== undefined && !allowed.includes(v)) {
    throw new FerryError('FERRY_E_BAD_VALUE', `${what} "${v}" is not one of ${allowed.join(', ')}`, { details: { [what]: v, allowed }, hint: `use one of ${allowed.join(', ')}` });
  }
}

function applyNodeChanges(d: DataDir, id: number, name: string, c: NodeChanges): void {
  checkChoice(c.bootAction, ['install', 'local'], 'boot action');
  checkChoice(c.bootloader, BOOTLOADERS, 'bootloader');
  checkChoice(c.finish, FINISH, 'finish');
  checkChoice(c.transport ?? undefined, [...TRANSPORTS], 'transport');
  if (c.image) {
    parseRef(c.image);
    if (!findImage(d, c.image)) throw new FerryError('FERRY_E_IMAGE_NOT_FOUND', `no image "${c.image}" (for node ${name})`, { details: { image: c.image }, hint: 'import it first, or list images with `ferry image ls`' });
  }
  const setMacs = (macs: string[]) => {
    for (const m of macs) {
      const owner = d.db.prepare('SELECT n.name FROM node_macs x JOIN nodes n ON n.id = x.node_id WHERE x.mac = ? AND n.id <> ?').get(m, id) as { name: string } | undefined;
      if (owner) throw new FerryError('FERRY_E_MAC_IN_USE', `MAC ${m} already belongs to node ${owner.name}`, { details: { mac: m, node: owner.name }, hint: `remove it from ${owner.name} first (ferry node set ${owner.name} --remove-mac ${m})` });
      d.db.prepare('INSERT OR IGNORE INTO node_macs (mac, node_id) VALUES (?, ?)').run(m, id);
      d.db.prepare('DELETE FROM discovered WHERE mac = ?').run(m);
    }
  };
  if (c.macs) {
    d.db.prepare('DELETE FROM node_macs WHERE node_id = ?').run(id);
    setMacs(c.macs.map((m) => normalizeMac(m)));
  }
  if (c.addMacs) setMacs(c.addMacs.map((m) => normalizeMac(m)));
  for (const m of c.removeMacs ?? []) d.db.prepare('DELETE FROM node_macs WHERE node_id = ? AND mac = ?').run(id, normalizeMac(m));
  const row = d.db.prepare('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow;
  const inputs = { ...j<Record<string, string>>(row.inputs, {}), ...(c.inputs ?? {}) };
  for (const k of c.unsetInputs ?? []) delete inputs[k];
  const props = { ...j<Record<string, string>>(row.properties, {}), ...(c.properties ?? {}) };
  for (const k of c.unsetProperties ?? []) delete props[k];
  let layout = row.layout_digest;
  if (c.layoutXml !== undefined) layout = storeLayout(d, c.layoutXml, c.layoutSource);
  if (c.clearLayout) layout = null;
  let address = row.address;
  if (c.address !== undefined) address = c.address === null ? null : formatAddress(parseTarget(c.address, 'address', { allowUser: false }));
  if (c.clearHostKeys) d.db.prepare('DELETE FROM ssh_host_keys WHERE node_id = ?').run(id);
  for (const k of c.hostKeys ?? []) recordHostKey(d, { nodeId: id }, parseHostKey(k, '--host-key'), undefined, 'operator');
  d.db
    .prepare('UPDATE nodes SET image = ?, layout_digest = ?, inputs = ?, properties = ?, boot_action = ?, bootloader = ?, finish = ?, disk_map = ?, transport = ?, address = ?, updated_at = ? WHERE id = ?')
    .run(
      c.image === undefined ? row.image : c.image,
      layout,
      JSON.stringify(inputs),
      JSON.stringify(props),
      c.bootAction ?? row.boot_action,
      c.bootloader ?? row.bootloader,
      c.finish ?? row.finish,
      c.diskMap === undefined ? row.disk_map : c.diskMap === null ? null : JSON.stringify(c.diskMap),
      c.transport === undefined ? row.transport : c.transport,
      address,
      now(),
      id,
    );
  if (c.power) applyPowerChanges(d, id, name, c.power);
  for (const g of c.groups ?? []) {
    const gid = ensureGroup(d, g);
    d.db.prepare('INSERT OR IGNORE INTO group_nodes (group_id, node_id) VALUES (?, ?)').run(gid, id);
  }
  for (const g of c.removeGroups ?? []) {
    const gr = d.db.prepare('SELECT id FROM groups WHERE name = ?').get(g) as { id: number } | undefined;
    if (gr) d.db.prepare('DELETE FROM group_nodes WHERE group_id = ? AND node_id = ?').run(gr.id, id);
  }
}

export function addNode(d: DataDir, name: string, c: NodeChanges, actor: string): NodeInfo {
  assertName('node', name);
  if (!c.macs?.length) throw new FerryError('FERRY_E_USAGE', `node ${name} needs at least one --mac`, { hint: 'ferry node add NAME --mac MAC' });
  d.write(() => {
    if (findNode(d, name)) throw new FerryError('FERRY_E_NODE_EXISTS', `a node named "${name}" already exists`, { details: { node: name }, hint: 'change it with `ferry node set`, or choose another name' });
    const r = d.db.prepare('INSERT INTO nodes (name, created_at, updated_at) VALUES (?, ?, ?)').run(name, now(), now());
    applyNodeChanges(d, Number(r.lastInsertRowid), name, c);
    d.audit(actor, 'node.add', name, redact(c));
  });
  return getNode(d, name);
}

export function setNode(d: DataDir, name: string, c: NodeChanges, actor: string): NodeInfo {
  d.write(() => {
    const r = getNodeRow(d, name);
    applyNodeChanges(d, r.id, name, c);
    d.audit(actor, 'node.set', name, redact(c));
  });
  return getNode(d, name);
}

/** The changes as the audit log keeps them: no layout text, and never a power password. */
function redact(c: NodeChanges): unknown {
  const { layoutXml, power, ...rest } = c;
  const out: Record<string, unknown> = layoutXml === undefined ? rest : { ...rest, layoutXml: `(${layoutXml.length} bytes)` };
  if (power) {
    const { password, ...p } = power;
    out.power = password === undefined ? p : { ...p, password: password === null ? '(removed)' : '(set)' };
  }
  return out;
}

export function removeNode(d: DataDir, name: string, actor: string): void {
  d.write(() => {
    const r = getNodeRow(d, name);
    d.db.prepare("UPDATE deployments SET status = 'superseded', ended_at = ? WHERE node_id = ? AND status IN ('armed', 'running', 'lost')").run(now(), r.id);
    d.db.prepare('DELETE FROM nodes WHERE id = ?').run(r.id);
    d.audit(actor, 'node.rm', name);
  });
}

export function listNodes(d: DataDir): NodeInfo[] {
  return (d.db.prepare('SELECT * FROM nodes ORDER BY name').all() as NodeRow[]).map((r) => nodeInfo(d, r));
}

/** A group by name, created when missing (node add/set --group; groups.ts uses it too). */
export function ensureGroup(d: DataDir, name: string): number {
  assertName('group', name);
  const g = d.db.prepare('SELECT id FROM groups WHERE name = ?').get(name) as { id: number } | undefined;
  if (g) return g.id;
  return Number(d.db.prepare('INSERT INTO groups (name, created_at) VALUES (?, ?)').run(name, now()).lastInsertRowid);
}

// ---------------------------------------------------------------- discovered

export interface DiscoveredInfo {
  mac: string;
  firstSeen: string;
  lastSeen: string;
  seen: number;
  address?: string;
  /** What it reported in a discovery boot (`ferry serve --discover`), summarised. */
  inventory?: InventorySummary;
}

export function recordDiscovered(d: DataDir, mac: string, address?: string): void {
  const t = now();
  d.db
    .prepare('INSERT INTO discovered (mac, first_seen, last_seen, seen, address) VALUES (?, ?, ?, 1, ?) ON CONFLICT (mac) DO UPDATE SET last_seen = excluded.last_seen, seen = seen + 1, address = excluded.address')
    .run(mac, t, t, address ?? null);
  // Anyone on the boot network can ask with made-up MACs: keep the table bounded.
  d.db.prepare('DELETE FROM discovered WHERE mac IN (SELECT mac FROM discovered ORDER BY last_seen DESC LIMIT -1 OFFSET ?)').run(MAX_DISCOVERED);
}

export const MAX_DISCOVERED = 10_000;

export function listDiscovered(d: DataDir): DiscoveredInfo[] {
  return (d.db.prepare('SELECT * FROM discovered ORDER BY last_seen DESC').all() as any[]).map((r) => ({
    mac: r.mac,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    seen: r.seen,
    address: r.address ?? undefined,
    ...(r.inventory ? { inventory: summarise(j<Inventory>(r.inventory, {} as Inventory), r.inventory_at ?? r.last_seen) } : {}),
  }));
}

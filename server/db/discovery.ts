/**
 * Discovery and enlistment (issue 18). With `ferry serve --discover` an unknown MAC boots the
 * inventory mode with a discovery token: bound to that MAC, stored as its sha256 only, good for
 * one inventory post and dead after it or after DISCOVERY_TOKEN_TTL_MS. The report is kept with
 * the discovered MAC; `ferry node enlist` promotes discovered machines to nodes with their hw.*
 * properties, one transaction for all of them, and never merges a machine into a node whose
 * serial it shares (a replaced board) on its own: it says how to adopt it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FerryError, ValidationError, type Problem } from '../../common/errors.js';
import { dmiValue, inventoryProperties, type Inventory } from '../../common/inventory.js';
import { now, sameSecret, type DataDir } from '../context.js';
import { NAME_RE } from '../store/images.js';
import { j } from './index.js';
import { addNode, findNode, listNodes, MAX_DISCOVERED, nodeByMac, type NodeChanges, type NodeInfo } from './inventory.js';
import { recordInventory } from './hardware.js';

export const DISCOVERY_TOKEN_PREFIX = 'ferry-discover-';
/** How long a discovery boot may take from its boot script to its inventory post. */
export const DISCOVERY_TOKEN_TTL_MS = 30 * 60_000;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export function isDiscoveryToken(t: string): boolean {
  return t.startsWith(DISCOVERY_TOKEN_PREFIX);
}

/** A fresh token for one discovery boot of `mac`; the MAC's earlier tokens and every expired one die. */
export function mintDiscoveryToken(d: DataDir, mac: string, ttlMs = DISCOVERY_TOKEN_TTL_MS): string {
  const token = DISCOVERY_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const t = Date.now();
  d.write(() => {
    d.db.prepare('DELETE FROM discovery_tokens WHERE mac = ? OR expires_at <= ?').run(mac, new Date(t).toISOString());
    d.db.prepare('INSERT INTO discovery_tokens (token_sha256, mac, created_at, expires_at) VALUES (?, ?, ?, ?)').run(sha(token), mac, new Date(t).toISOString(), new Date(t + ttlMs).toISOString());
    // Anyone on the boot network can ask with made-up MACs: as many live tokens as discovered MACs at most.
    d.db.prepare('DELETE FROM discovery_tokens WHERE token_sha256 IN (SELECT token_sha256 FROM discovery_tokens ORDER BY created_at DESC LIMIT -1 OFFSET ?)').run(MAX_DISCOVERED);
  });
  return token;
}

export type DiscoveryTokenCheck = { ok: true; mac: string } | { ok: false; code: string; message: string; hint: string };

/** The MAC a discovery token is bound to, if it is alive (not used, not expired). */
export function checkDiscoveryToken(d: DataDir, token: string): DiscoveryTokenCheck {
  const h = sha(token);
  const row = d.db.prepare('SELECT * FROM discovery_tokens WHERE token_sha256 = ?').get(h) as { token_sha256: string; mac: string; expires_at: string } | undefined;
  const refused = { ok: false as const, code: 'FERRY_E_TOKEN_INVALID', message: 'this discovery token is not known: it was used already, replaced by a newer boot, or never issued here', hint: 'network-boot the machine again: each discovery boot gets a fresh token' };
  if (!row || !sameSecret(row.token_sha256, h)) return refused;
  if (row.expires_at <= now()) return { ok: false, code: 'FERRY_E_TOKEN_EXPIRED', message: `the discovery token expired at ${row.expires_at}`, hint: 'network-boot the machine again: each discovery boot gets a fresh token' };
  return { ok: true, mac: row.mac };
}

/**
 * Store a discovery report against the token's MAC and end the token, in one transaction (a
 * second post with it is refused). A MAC that became a node in between (enlisted or added while
 * its discovery boot ran) gets the report as that node's hw.* properties instead.
 */
export function recordDiscoveredInventory(d: DataDir, token: string, inv: Inventory): { mac: string; properties: number } {
  return d.write(() => {
    const c = checkDiscoveryToken(d, token);
    if (!c.ok) throw new FerryError(c.code, c.message, { hint: c.hint });
    d.db.prepare('DELETE FROM discovery_tokens WHERE token_sha256 = ?').run(sha(token));
    const node = nodeByMac(d, c.mac);
    if (node) return { mac: c.mac, properties: recordInventory(d, node.id, inv, `discovery:${c.mac}`) };
    const t = now();
    d.db
      .prepare('INSERT INTO discovered (mac, first_seen, last_seen, seen, inventory, inventory_at) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (mac) DO UPDATE SET inventory = excluded.inventory, inventory_at = excluded.inventory_at')
      .run(c.mac, t, t, JSON.stringify(inv), t);
    d.audit(`discovery:${c.mac}`, 'discovered.inventory', c.mac, { vendor: inv.system.vendor, product: inv.system.product, serial: inv.system.serial });
    return { mac: c.mac, properties: Object.keys(inventoryProperties(inv)).length };
  });
}

/** The report stored for a discovered MAC, if it sent one. */
export function discoveredInventory(d: DataDir, mac: string): { inventory: Inventory; at: string } | undefined {
  const r = d.db.prepare('SELECT inventory, inventory_at FROM discovered WHERE mac = ?').get(mac) as { inventory: string | null; inventory_at: string | null } | undefined;
  if (!r?.inventory) return undefined;
  return { inventory: j<Inventory>(r.inventory, undefined as unknown as Inventory), at: r.inventory_at ?? '' };
}

// ---------------------------------------------------------------- enlistment

/** A serial worth matching or naming by: not empty, not a firmware placeholder (common/inventory.ts). */
export const meaningfulSerial = dmiValue;

export interface NameFields {
  serial?: string;
  mac: string;
  /** 1-based position among the MACs enlisted together. */
  n: number;
}

const PLACEHOLDER = /\{([a-z]+)\}/g;

/**
 * Pure: a node name from a pattern. `{serial}` (the DMI serial, characters a name cannot hold
 * replaced by "-"), `{mac}` (12 hex digits), `{n}` (the position, from 1). A plain name is itself.
 * Returns the name or the problem.
 */
export function expandName(pattern: string, f: NameFields): { name: string } | { problem: string } {
  let missing: string | undefined;
  let unknown: string | undefined;
  const name = pattern.replace(PLACEHOLDER, (_, key: string) => {
    if (key === 'mac') return f.mac.replace(/:/g, '').toLowerCase();
    if (key === 'n') return String(f.n);
    if (key === 'serial') {
      const s = meaningfulSerial(f.serial);
      if (!s) missing = 'serial';
      return (s ?? '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-._]+|[-._]+$/g, '');
    }
    unknown = key;
    return '';
  });
  if (unknown) return { problem: `the name pattern "${pattern}" has an unknown placeholder {${unknown}} (use {serial}, {mac} or {n})` };
  if (missing) return { problem: `${f.mac} reported no serial number for {${missing}} in "${pattern}"` };
  if (!NAME_RE.test(name)) return { problem: `"${name}" (from "${pattern}" for ${f.mac}) is not a node name: 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit` };
  return { name };
}

/** Whether a pattern holds a placeholder that differs between machines. */
export function patternVaries(pattern: string): boolean {
  return /\{(serial|mac|n)\}/.test(pattern);
}

/** Pure: the nodes (name, MACs, hw.system.serial) whose serial equals `serial` and that lack `mac`. */
export function serialMatches(serial: string | undefined, mac: string, nodes: { name: string; macs: string[]; properties: Record<string, string> }[]): { node: string; serial: string }[] {
  const s = meaningfulSerial(serial);
  if (!s) return [];
  return nodes.filter((n) => !n.macs.includes(mac) && meaningfulSerial(n.properties['hw.system.serial'])?.toLowerCase() === s.toLowerCase()).map((n) => ({ node: n.name, serial: s }));
}

export interface EnlistRequest {
  macs: string[];
  /** A name, or a pattern with {serial}, {mac}, {n}. */
  name: string;
  image?: string;
  layoutXml?: string;
  layoutSource?: string;
  groups?: string[];
  /** Enlist a machine as a new node even when its serial matches an existing node. */
  asNew?: boolean;
}

/**
 * Promote discovered MACs to nodes with their hw.* properties. Every problem (a MAC that did not
 * report, a bad or clashing name, a serial matching another node) refuses the whole request before
 * anything changes; it all happens in one transaction.
 */
export function enlist(d: DataDir, r: EnlistRequest, actor: string): NodeInfo[] {
  return d.write(() => {
    const problems: Problem[] = [];
    const nodes = listNodes(d);
    const planned: { mac: string; name: string; inv: Inventory }[] = [];
    const names = new Map<string, string>();
    if (r.macs.length > 1 && !patternVaries(r.name)) {
      problems.push({ severity: 'error', code: 'FERRY_E_ENLIST_NAME', path: 'name', message: `${r.macs.length} machines cannot all be named "${r.name}"`, hint: 'give a pattern such as rack1-{serial}, node-{mac} or web{n}' });
    }
    r.macs.forEach((mac, i) => {
      const path = `macs[${i}]`;
      const owner = nodes.find((n) => n.macs.includes(mac));
      if (owner) {
        problems.push({ severity: 'error', code: 'FERRY_E_MAC_IN_USE', path, message: `${mac} already belongs to node ${owner.name}`, hint: `ferry node show ${owner.name}` });
        return;
      }
      const rep = discoveredInventory(d, mac);
      if (!rep) {
        problems.push({ severity: 'error', code: 'FERRY_E_ENLIST_NO_INVENTORY', path, message: `${mac} has reported no inventory`, hint: 'start the server with `ferry serve --discover` and network-boot the machine, then check `ferry node ls --discovered`' });
        return;
      }
      const e = expandName(r.name, { serial: rep.inventory.system.serial, mac, n: i + 1 });
      if ('problem' in e) {
        problems.push({ severity: 'error', code: 'FERRY_E_ENLIST_NAME', path, message: e.problem, hint: 'choose a pattern every machine can fill, e.g. node-{mac}' });
        return;
      }
      if (!r.asNew) {
        for (const m of serialMatches(rep.inventory.system.serial, mac, nodes)) {
          problems.push({ severity: 'error', code: 'FERRY_E_ENLIST_SERIAL_MATCH', path, message: `${mac} matches node ${m.node} (serial ${m.serial}): \`ferry node set ${m.node} --mac ${mac}\` to adopt it`, hint: `a replaced board keeps the machine's serial: adopt it with ferry node set ${m.node} --mac ${mac}, or enlist it as another node with --new` });
        }
      }
      if (findNode(d, e.name)) problems.push({ severity: 'error', code: 'FERRY_E_NODE_EXISTS', path, message: `a node named "${e.name}" already exists (for ${mac})`, hint: 'choose another name or pattern' });
      const clash = names.get(e.name);
      if (clash) problems.push({ severity: 'error', code: 'FERRY_E_ENLIST_NAME', path, message: `${clash} and ${mac} would both be named "${e.name}"`, hint: 'add {mac} or {n} to the pattern' });
      names.set(e.name, mac);
      planned.push({ mac, name: e.name, inv: rep.inventory });
    });
    if (problems.length) throw new ValidationError(problems[0].code, `enlisting ${r.macs.length === 1 ? r.macs[0] : `${r.macs.length} machines`}: nothing was changed`, problems);
    return planned.map((p) => {
      const c: NodeChanges = { macs: [p.mac], properties: inventoryProperties(p.inv), image: r.image, layoutXml: r.layoutXml, layoutSource: r.layoutSource, groups: r.groups };
      const info = addNode(d, p.name, c, actor);
      d.audit(actor, 'node.enlist', p.name, { mac: p.mac, serial: p.inv.system.serial });
      return info;
    });
  });
}

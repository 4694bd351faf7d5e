/**
 * Nodes' power settings (server/power drivers). The secret is read by powerTarget only, for the
 * driver that uses it; everything else sees PowerInfo, which says whether one is stored and
 * nothing more.
 */
import { now, type DataDir } from '../context.js';
import { checkPowerSettings, type PowerDriverKind, type PowerTarget } from '../power/index.js';
import { FerryError } from '../../common/errors.js';

export interface PowerInfo {
  driver: PowerDriverKind;
  address: string;
  user?: string;
  /** Whether a password is stored (never the password). */
  password: boolean;
}

export interface PowerChanges {
  /** Set or change the driver; null removes the node's power settings. */
  driver?: string | null;
  address?: string;
  /** null removes it. */
  user?: string | null;
  /** The password itself (read from --power-password-file by the CLI); null removes it. */
  password?: string | null;
}

interface PowerRow {
  node_id: number;
  driver: string;
  address: string;
  username: string | null;
  secret: string | null;
}

export function powerInfo(d: DataDir, nodeId: number): PowerInfo | undefined {
  const r = d.db.prepare('SELECT driver, address, username, secret IS NOT NULL AS has FROM node_power WHERE node_id = ?').get(nodeId) as { driver: string; address: string; username: string | null; has: number } | undefined;
  if (!r) return undefined;
  return { driver: r.driver as PowerDriverKind, address: r.address, user: r.username ?? undefined, password: !!r.has };
}

/** Inside the caller's transaction (applyNodeChanges). */
export function applyPowerChanges(d: DataDir, nodeId: number, node: string, c: PowerChanges): void {
  if (c.driver === null) {
    d.db.prepare('DELETE FROM node_power WHERE node_id = ?').run(nodeId);
    return;
  }
  const old = d.db.prepare('SELECT * FROM node_power WHERE node_id = ?').get(nodeId) as PowerRow | undefined;
  const driver = c.driver ?? old?.driver;
  if (!driver) {
    throw new FerryError('FERRY_E_POWER_NOT_SET', `node ${node} has no power driver to attach --power-address, --power-user or --power-password-file to`, {
      details: { node },
      hint: `name the driver too: ferry node set ${node} --power ipmi|redfish|qemu|wol|manual --power-address …`,
    });
  }
  const address = c.address ?? old?.address ?? '';
  checkPowerSettings(driver, address);
  const user = c.user === null ? null : (c.user ?? old?.username ?? null);
  const secret = c.password === null ? null : (c.password ?? old?.secret ?? null);
  d.db
    .prepare('INSERT INTO node_power (node_id, driver, address, username, secret, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET driver = excluded.driver, address = excluded.address, username = excluded.username, secret = excluded.secret, updated_at = excluded.updated_at')
    .run(nodeId, driver, address, user, secret, now());
}

/** What a driver needs to act on a node, its secret included. */
export function powerTarget(d: DataDir, node: string): PowerTarget {
  const n = d.db.prepare('SELECT id FROM nodes WHERE name = ?').get(node) as { id: number } | undefined;
  if (!n) throw new FerryError('FERRY_E_NODE_NOT_FOUND', `no node "${node}"`, { details: { node }, hint: 'list the nodes with `ferry node ls`' });
  const r = d.db.prepare('SELECT * FROM node_power WHERE node_id = ?').get(n.id) as PowerRow | undefined;
  if (!r) {
    throw new FerryError('FERRY_E_POWER_NOT_SET', `node ${node} has no power driver`, {
      details: { node },
      hint: `set one: ferry node set ${node} --power ipmi|redfish|qemu|wol|manual --power-address ADDR[:PORT] [--power-user U] [--power-password-file F]`,
    });
  }
  const macs = (d.db.prepare('SELECT mac FROM node_macs WHERE node_id = ? ORDER BY mac').all(n.id) as { mac: string }[]).map((m) => m.mac);
  return { node, driver: r.driver as PowerDriverKind, address: r.address, user: r.username ?? undefined, password: r.secret ?? undefined, macs };
}

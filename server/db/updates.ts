/**
 * `ferry update`'s deployment records (kind `update`, migration 8): one per node and run, made
 * when the node's update starts (status running), with its events (started, rsync stats,
 * customized files, result) and its end (success, or failed with the error). No token a boot
 * could use, no boot action change: the node keeps booting from its disk. The image version a
 * node runs is its newest successful record, install or update, so a failed update leaves it
 * as it was.
 */
import { randomBytes } from 'node:crypto';
import { FerryError } from '../../common/errors.js';
import type { ImageManifest } from '../../common/protocol.js';
import type { ProgressEvent } from '../../common/progress.js';
import { now, type DataDir } from '../context.js';
import { getDeploymentRow, IN_FLIGHT_SQL, newBatch, type DeploymentRow } from './deployments.js';
import { recordEvents } from './deployment-events.js';
import { getNodeRow } from './inventory.js';

/** The version a node runs: its newest successful record (install or update). */
export interface RunningImage {
  image: string;
  digest: string;
  deployment: number;
  kind: 'install' | 'update';
  since: string;
}

export function runningImage(d: DataDir, nodeId: number): RunningImage | undefined {
  const r = d.db
    .prepare("SELECT id, image_name, image_version, image_digest, kind, COALESCE(ended_at, created_at) AS at FROM deployments WHERE node_id = ? AND status = 'success' ORDER BY COALESCE(ended_at, created_at) DESC, id DESC LIMIT 1")
    .get(nodeId) as { id: number; image_name: string; image_version: number; image_digest: string; kind: 'install' | 'update'; at: string } | undefined;
  return r ? { image: `${r.image_name}@${r.image_version}`, digest: r.image_digest, deployment: r.id, kind: r.kind, since: r.at } : undefined;
}

/**
 * Open a node's update record (status running). Refused while an install is in flight for it:
 * the boot script serves the newest in-flight record, and the install would overwrite the
 * update anyway.
 */
export function startUpdateRecord(d: DataDir, nodeName: string, m: ImageManifest, o: { actor: string; root: string; batch?: string }): DeploymentRow {
  const node = getNodeRow(d, nodeName);
  let id = 0;
  d.write(() => {
    const busy = d.db.prepare(`SELECT id, status FROM deployments WHERE node_id = ? AND kind = 'install' AND status IN (${IN_FLIGHT_SQL}) ORDER BY id DESC LIMIT 1`).get(node.id) as { id: number; status: string } | undefined;
    if (busy) {
      throw new FerryError('FERRY_E_UPDATE_NODE_BUSY', `node ${node.name} has install deployment ${busy.id} ${busy.status}: it is not updated over SSH meanwhile`, {
        details: { node: node.name, deployment: busy.id, status: busy.status },
        hint: `wait for the install to end, or cancel it (ferry cancel ${node.name}), then update`,
      });
    }
    // The layout the node was installed with, when Ferry installed it; else the row 'none' (migration 8).
    const layout = (d.db.prepare("SELECT layout_digest FROM deployments WHERE node_id = ? AND kind = 'install' ORDER BY id DESC LIMIT 1").get(node.id) as { layout_digest: string } | undefined)?.layout_digest ?? node.layout_digest ?? 'none';
    const t = now();
    const r = d.db
      .prepare(
        `INSERT INTO deployments (node_id, node_name, image_name, image_version, image_digest, manifest, layout_digest, inputs, transport,
           bootloader, finish, disk_map, token, expires_at, status, created_by, created_at, started_at, batch, kind)
         VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, 'none', 'none', NULL, ?, ?, 'running', ?, ?, ?, ?, 'update')`,
      )
      // The token column is unique and never a deploy token (no ferry-deploy- prefix): nothing can use it.
      .run(node.id, node.name, m.name, m.version, m.digest, JSON.stringify(m), layout, JSON.stringify({ kind: 'ssh', root: o.root }), 'update-record-' + randomBytes(16).toString('hex'), t, o.actor, t, t, o.batch ?? newBatch());
    id = Number(r.lastInsertRowid);
    d.audit(o.actor, 'node.update', node.name, { deployment: id, image: `${m.name}@${m.version}`, digest: m.digest, root: o.root });
  });
  return getDeploymentRow(d, id);
}

export function updateEvent(d: DataDir, row: DeploymentRow, e: Omit<ProgressEvent, 'phase'>): void {
  recordEvents(d, row, [{ phase: 'update', ts: new Date().toISOString(), ...e } as ProgressEvent]);
}

/** Close an update record: success, or failed with the error. A record an install superseded meanwhile stays so. */
export function endUpdateRecord(d: DataDir, row: DeploymentRow, result: { ok: true } | { ok: false; error: { code: string; message: string; details?: Record<string, unknown>; phase?: string } }): void {
  d.write(() => {
    d.db
      .prepare("UPDATE deployments SET status = ?, ended_at = ?, error = ?, stage = 'update' WHERE id = ? AND status IN ('running', 'lost')")
      .run(result.ok ? 'success' : 'failed', now(), result.ok ? null : JSON.stringify(result.error), row.id);
  });
}

/**
 * A deployment's life after arming: the installer's deploy-token check and config fetch (which
 * make it running), its final result, an operator's cancel, and the server's timer that marks
 * silent installers lost. The records are in deployments.ts, the events in deployment-events.ts.
 */
import { FerryError } from '../../common/errors.js';
import type { InstallConfig, InstallResult } from '../../common/protocol.js';
import { now, sameSecret, type DataDir } from '../context.js';
import { deploymentInfo, getDeploymentRow, IN_FLIGHT_SQL, transportOf, type DeploymentInfo, type DeploymentRow } from './deployments.js';
import { getLayout, getNodeRow } from './inventory.js';
import { j } from './index.js';
import { withFerryKey } from '../ssh/authorize.js';

/** A deployment that ended: its token is refused from then on (checkDeployToken). */
export const ENDED_STATUSES = ['success', 'failed', 'aborted', 'cancelled'] as const;

export type TokenCheck =
  | { ok: true; row: DeploymentRow }
  | { ok: false; code: 'FERRY_E_TOKEN_INVALID' | 'FERRY_E_TOKEN_EXPIRED' | 'FERRY_E_TOKEN_REVOKED' | 'FERRY_E_TOKEN_ENDED'; message: string; hint: string };

/**
 * Find the deployment a deploy token belongs to and check it may still be used: from arming
 * until the deployment ends (a result, a cancel, its expiry or a newer arm). Every installer
 * route and every blob download goes through here, so an ended deployment's token reads
 * nothing, not its config and not its layers.
 */
export function checkDeployToken(d: DataDir, token: string): TokenCheck {
  const useOwn = 'use the token from the kernel command line (ferry.token=) or DATA/admin.token';
  if (!token.startsWith('ferry-deploy-')) return { ok: false, code: 'FERRY_E_TOKEN_INVALID', message: 'the token is not a deploy token', hint: useOwn };
  const row = d.db.prepare('SELECT * FROM deployments WHERE token = ?').get(token) as DeploymentRow | undefined;
  // The lookup is by value; compare again in constant time so timing says nothing.
  if (!row || !sameSecret(row.token, token)) return { ok: false, code: 'FERRY_E_TOKEN_INVALID', message: 'no deployment has this token', hint: useOwn };
  if (row.status === 'superseded') {
    return { ok: false, code: 'FERRY_E_TOKEN_REVOKED', message: `deployment ${row.id} was replaced by a newer one for node ${row.node_name}`, hint: `use the newest deployment's token (ferry history ${row.node_name}); reboot the node so it fetches the new boot script` };
  }
  if ((ENDED_STATUSES as readonly string[]).includes(row.status)) {
    return {
      ok: false,
      code: 'FERRY_E_TOKEN_ENDED',
      message: `deployment ${row.id} of node ${row.node_name} ended (${row.status}${row.ended_at ? ` at ${row.ended_at}` : ''}); its token is no longer valid`,
      hint: `arm the node again (ferry deploy ${row.node_name} or ferry redeploy ${row.id}) for a fresh token`,
    };
  }
  if (Date.parse(row.expires_at) < Date.now()) {
    return { ok: false, code: 'FERRY_E_TOKEN_EXPIRED', message: `the deploy token of deployment ${row.id} expired at ${row.expires_at}`, hint: 'arm the node again (ferry deploy NODE) for a fresh token' };
  }
  return { ok: true, row };
}

export function installConfig(d: DataDir, row: DeploymentRow, baseUrl: string, o: { peek?: boolean } = {}): InstallConfig {
  const nodeRow = row.node_id !== null ? (d.db.prepare('SELECT * FROM nodes WHERE id = ?').get(row.node_id) as any) : undefined;
  const macs = nodeRow ? (d.db.prepare('SELECT mac FROM node_macs WHERE node_id = ? ORDER BY mac').all(nodeRow.id) as { mac: string }[]).map((m) => m.mac) : [];
  const layout = getLayout(d, row.layout_digest);
  if (o.peek) {
    /* a dry run reads the configuration and changes nothing */
  } else if (!row.started_at) {
    d.db.prepare("UPDATE deployments SET started_at = ?, status = CASE WHEN status = 'armed' THEN 'running' ELSE status END WHERE id = ?").run(now(), row.id);
  } else if (row.status === 'lost') {
    d.db.prepare("UPDATE deployments SET status = 'running' WHERE id = ? AND status = 'lost'").run(row.id);
  }
  const cfg: InstallConfig = {
    node: { name: row.node_name, macs, properties: nodeRow ? j(nodeRow.properties, {}) : {} },
    deployment: { id: row.id, expiresAt: row.expires_at, ...(row.identity ? { identity: row.identity } : {}) },
    image: withFerryKey(d, JSON.parse(row.manifest)),
    layout: { xml: layout.xml, digest: layout.digest },
    inputs: j(row.inputs, {}),
    transport: { ...transportOf(row), baseUrl },
    bootloader: row.bootloader as InstallConfig['bootloader'],
    finish: row.finish as InstallConfig['finish'],
  };
  if (row.disk_map) cfg.diskMap = j(row.disk_map, {});
  return cfg;
}

/** The final result: success switches the node to local boot. */
export function recordResult(d: DataDir, row: DeploymentRow, result: InstallResult): DeploymentInfo {
  if (row.status !== 'armed' && row.status !== 'running') {
    throw new FerryError('FERRY_E_DEPLOYMENT_ENDED', `deployment ${row.id} already ended with status ${row.status}`, {
      details: { id: row.id, status: row.status },
      hint: 'a result is accepted once; arm a new deployment to install again',
    });
  }
  const t = now();
  d.write(() => {
    d.db.prepare('UPDATE deployments SET status = ?, ended_at = ?, started_at = COALESCE(started_at, ?), error = ? WHERE id = ?').run(result.status, t, t, result.error ? JSON.stringify(result.error) : null, row.id);
    if (result.status === 'success' && row.node_id !== null) d.db.prepare("UPDATE nodes SET boot_action = 'local', updated_at = ? WHERE id = ?").run(t, row.node_id);
    d.audit(`deploy:${row.id}`, 'deploy.result', row.node_name, { deployment: row.id, status: result.status, error: result.error?.code });
  });
  return deploymentInfo(getDeploymentRow(d, row.id));
}

export interface CancelOutcome {
  /** The deployments this call ended. */
  cancelled: DeploymentInfo[];
  /** Selected nodes that had no deployment in flight. */
  idle: string[];
}

/**
 * End the armed, running or lost deployments of these nodes: status `cancelled`, their tokens
 * refused from now on (checkDeployToken), the node boots from its disk again. One transaction,
 * so a selection is cancelled whole or not at all.
 */
export function cancelDeployments(d: DataDir, nodeNames: string[], actor: string): CancelOutcome {
  const out: CancelOutcome = { cancelled: [], idle: [] };
  d.write(() => {
    const t = now();
    for (const name of nodeNames) {
      const node = getNodeRow(d, name);
      const rows = d.db.prepare(`SELECT * FROM deployments WHERE node_id = ? AND status IN (${IN_FLIGHT_SQL}) ORDER BY id`).all(node.id) as DeploymentRow[];
      if (!rows.length) {
        out.idle.push(node.name);
        continue;
      }
      for (const r of rows) {
        d.db.prepare("UPDATE deployments SET status = 'cancelled', ended_at = ? WHERE id = ?").run(t, r.id);
        d.audit(actor, 'deploy.cancel', node.name, { deployment: r.id, was: r.status, stage: r.stage ?? undefined });
        out.cancelled.push(deploymentInfo(getDeploymentRow(d, r.id)));
      }
      d.db.prepare("UPDATE nodes SET boot_action = 'local', updated_at = ? WHERE id = ?").run(t, node.id);
    }
  });
  return out;
}

export const DEFAULT_LOST_AFTER_MS = 5 * 60_000;

/**
 * Mark running deployments `lost` when nothing came from their installer (no event, no
 * heartbeat, no config fetch) for `lostAfterMs`. The server runs this on a timer, so the status
 * is in the database and `ferry history` (another process, which cannot know the server's
 * setting), the API and monitors all read the same thing. Lost is not ended: the token stays
 * valid, and the next call from that installer makes the deployment `running` again.
 */
export function markLost(d: DataDir, lostAfterMs: number, actor = 'server'): DeploymentInfo[] {
  const cutoff = new Date(Date.now() - lostAfterMs).toISOString();
  const lastContact = `COALESCE((SELECT received_at FROM deployment_events e WHERE e.deployment_id = deployments.id ORDER BY e.id DESC LIMIT 1), started_at, created_at)`;
  const out: DeploymentInfo[] = [];
  d.write(() => {
    const rows = d.db.prepare(`SELECT id, node_name, ${lastContact} AS last FROM deployments WHERE status = 'running' AND kind = 'install' AND ${lastContact} < ?`).all(cutoff) as { id: number; node_name: string; last: string }[];
    for (const r of rows) {
      d.db.prepare("UPDATE deployments SET status = 'lost' WHERE id = ? AND status = 'running'").run(r.id);
      d.audit(actor, 'deploy.lost', r.node_name, { deployment: r.id, lastContact: r.last, lostAfterSeconds: lostAfterMs / 1000 });
      out.push(deploymentInfo(getDeploymentRow(d, r.id)));
    }
  });
  return out;
}

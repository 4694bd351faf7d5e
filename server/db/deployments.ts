/**
 * Deployments: one install of one image digest with one layout onto one node. Arming
 * records everything the install will use (a copy of the image manifest, the layout
 * digest, the merged inputs), so the record can be deployed again exactly.
 */
import { randomBytes } from 'node:crypto';
import { FerryError, ValidationError, type Problem } from '../../common/errors.js';
import { TRANSPORTS, type ImageManifest, type InstallConfig, type InstallResult, type MulticastOptions, type TransportKind } from '../../common/protocol.js';
import type { ProgressEvent } from '../../common/progress.js';
import { newDeployToken, now, sameSecret, type DataDir } from '../context.js';
import { armChecks } from '../../layout/preflight.js';
import { getImage, manifestOf } from '../store/images.js';
import { defaultTransport, getLayout, getNodeRow, storeLayout } from './inventory.js';
import { j } from './index.js';
import { withFerryKey } from '../ssh/authorize.js';

export type DeploymentStatus = 'armed' | 'running' | 'success' | 'failed' | 'superseded' | 'cancelled' | 'lost' | 'aborted';

/** Statuses of a deployment still in flight: a newer arm supersedes these, cancel ends them, the boot script serves them. */
export const IN_FLIGHT_STATUSES = ['armed', 'running', 'lost'] as const;
const IN_FLIGHT_SQL = IN_FLIGHT_STATUSES.map((x) => `'${x}'`).join(', ');

export interface DeploymentRow {
  id: number;
  node_id: number | null;
  node_name: string;
  image_name: string;
  image_version: number;
  image_digest: string;
  manifest: string;
  layout_digest: string;
  inputs: string;
  transport: string;
  bootloader: string;
  finish: string;
  disk_map: string | null;
  token: string;
  expires_at: string;
  status: DeploymentStatus;
  stage: string | null;
  redeploy_of: number | null;
  created_by: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  error: string | null;
  /** The deployments one `ferry deploy` armed together share a batch (a multicast session's receivers). */
  batch: string | null;
  /** The identity seed (32 hex digits) the node's UUIDs derive from; a redeploy copies it. */
  identity: string | null;
}

/** The transport a deployment uses, as kept in its record (deployments.transport, JSON). */
export interface TransportSpec {
  kind: TransportKind;
  multicast?: MulticastOptions;
}

export interface DeploymentInfo {
  id: number;
  node: string;
  image: string;
  imageDigest: string;
  layoutDigest: string;
  inputs: Record<string, string>;
  transport: TransportSpec;
  batch?: string;
  status: DeploymentStatus | 'expired';
  stage?: string;
  redeployOf?: number;
  createdBy: string;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  expiresAt: string;
  error?: InstallResult['error'];
}

export const DEFAULT_TTL_MS = 24 * 3600_000;

export function deploymentInfo(r: DeploymentRow): DeploymentInfo {
  const expired = (IN_FLIGHT_STATUSES as readonly string[]).includes(r.status) && Date.parse(r.expires_at) < Date.now();
  return {
    id: r.id,
    node: r.node_name,
    image: `${r.image_name}@${r.image_version}`,
    imageDigest: r.image_digest,
    layoutDigest: r.layout_digest,
    inputs: j(r.inputs, {}),
    transport: transportOf(r),
    batch: r.batch ?? undefined,
    status: expired ? 'expired' : r.status,
    stage: r.stage ?? undefined,
    redeployOf: r.redeploy_of ?? undefined,
    createdBy: r.created_by,
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    endedAt: r.ended_at ?? undefined,
    expiresAt: r.expires_at,
    error: r.error ? j(r.error, undefined) : undefined,
  };
}

export function transportOf(r: Pick<DeploymentRow, 'transport'>): TransportSpec {
  const t = j<Partial<TransportSpec>>(r.transport, {});
  return TRANSPORTS.includes(t.kind as TransportKind) ? (t as TransportSpec) : { kind: 'http' };
}

export const DEFAULT_MAX_WAIT_S = 60;
export const MAX_MAX_WAIT_S = 3600;
/** udp-sender's pace unless --max-bitrate says otherwise: most of a gigabit link. */
export const DEFAULT_MAX_BITRATE = '600m';

/** What `ferry deploy` (or the API) asked for; every field optional, checked by transportRequest. */
export interface TransportRequest {
  kind?: TransportKind;
  minReceivers?: number;
  maxWaitS?: number;
  maxBitrate?: string;
}

/**
 * Check the transport options where they enter (CLI strings or API values), every problem at
 * once: a transport name, --min-receivers 1…10000, --max-wait 1…3600 s, --max-bitrate as
 * udpcast reads it (a number with k, m or g: bits per second).
 */
export function transportRequest(o: { transport?: unknown; minReceivers?: unknown; maxWait?: unknown; maxBitrate?: unknown }): TransportRequest {
  const problems: Problem[] = [];
  const bad = (path: string, message: string) => problems.push({ severity: 'error', code: 'FERRY_E_BAD_VALUE', path, message });
  const out: TransportRequest = {};
  if (o.transport !== undefined) {
    if (typeof o.transport !== 'string' || !TRANSPORTS.includes(o.transport as TransportKind)) bad('transport', `"${String(o.transport).slice(0, 64)}" is not one of ${TRANSPORTS.join(', ')}`);
    else out.kind = o.transport as TransportKind;
  }
  const int = (v: unknown, path: string, min: number, max: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]{1,9}$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      bad(path, `"${String(v).slice(0, 64)}" is not a whole number from ${min} to ${max}`);
      return undefined;
    }
    return n;
  };
  out.minReceivers = int(o.minReceivers, 'min-receivers', 1, 10_000);
  out.maxWaitS = int(typeof o.maxWait === 'string' ? o.maxWait.replace(/s$/, '') : o.maxWait, 'max-wait', 1, MAX_MAX_WAIT_S);
  if (o.maxBitrate !== undefined) {
    if (typeof o.maxBitrate !== 'string' || !/^[1-9][0-9]{0,5}(\.[0-9]{1,3})?[kmg]$/i.test(o.maxBitrate.trim())) bad('max-bitrate', `"${String(o.maxBitrate).slice(0, 64)}" is not a bit rate such as 80m, 500k or 1g`);
    else out.maxBitrate = o.maxBitrate.trim().toLowerCase();
  }
  if (problems.length) throw new ValidationError('FERRY_E_BAD_VALUE', 'the transport options are invalid', problems);
  for (const k of Object.keys(out) as (keyof TransportRequest)[]) if (out[k] === undefined) delete out[k];
  return out;
}

function transportSpec(kind: TransportKind, t: TransportRequest = {}): TransportSpec {
  if (kind !== 'multicast') return { kind };
  const m: MulticastOptions = { maxWaitS: t.maxWaitS ?? DEFAULT_MAX_WAIT_S, maxBitrate: t.maxBitrate ?? DEFAULT_MAX_BITRATE };
  if (t.minReceivers !== undefined) m.minReceivers = t.minReceivers;
  return { kind, multicast: m };
}

/**
 * A fresh identity seed for a deployment record: random, so no two deployments (of one server or
 * of two) give their nodes the same UUIDs; kept in the record so a redeploy reproduces them.
 */
export function newIdentitySeed(): string {
  return randomBytes(16).toString('hex');
}

/** A fresh batch name: the deployments one `ferry deploy` (or one API deploy call) arms. */
export function newBatch(): string {
  return 'b-' + randomBytes(6).toString('hex');
}

export interface ArmOptions {
  image?: string;
  /** Layout XML text, or the digest of a stored layout. */
  layout?: string;
  layoutSource?: string;
  inputs?: Record<string, string>;
  ttlMs?: number;
  actor: string;
  /** Overrides the node's (or its groups') default transport and sets the multicast options. */
  transport?: TransportRequest;
  /** The batch this deployment belongs to (default: a batch of its own). */
  batch?: string;
}

export interface Armed {
  id: number;
  node: string;
  token: string;
  expiresAt: string;
  /** Warnings of the arm-time checks (the layout's, and what could not be checked here). */
  warnings?: Problem[];
}

function checkBlobs(d: DataDir, m: ImageManifest, what: string): void {
  for (const l of m.layers) {
    if (!d.blobs.has(l.digest)) {
      throw new FerryError('FERRY_E_BLOB_MISSING', `layer ${l.digest} of ${what} is missing from the store`, {
        details: { digest: l.digest, image: `${m.name}@${m.version}` },
        hint: 'run `ferry image verify`; re-import the image if its layers were removed',
      });
    }
  }
}

function insertDeployment(
  d: DataDir,
  node: { id: number; name: string },
  m: ImageManifest,
  layoutDigest: string,
  inputs: Record<string, string>,
  extra: { bootloader: string; finish: string; diskMap: string | null; ttlMs: number; actor: string; redeployOf?: number; transport: TransportSpec; batch?: string; identity?: string },
): Armed {
  const token = newDeployToken();
  const created = now();
  const expiresAt = new Date(Date.now() + extra.ttlMs).toISOString();
  let id = 0;
  d.write(() => {
    // A node has at most one deployment in flight: arming again revokes the older token.
    d.db.prepare(`UPDATE deployments SET status = 'superseded', ended_at = ? WHERE node_id = ? AND status IN (${IN_FLIGHT_SQL})`).run(created, node.id);
    const r = d.db
      .prepare(
        `INSERT INTO deployments (node_id, node_name, image_name, image_version, image_digest, manifest, layout_digest, inputs, transport,
           bootloader, finish, disk_map, token, expires_at, status, redeploy_of, created_by, created_at, batch, identity)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'armed', ?, ?, ?, ?, ?)`,
      )
      .run(node.id, node.name, m.name, m.version, m.digest, JSON.stringify(m), layoutDigest, JSON.stringify(inputs), JSON.stringify(extra.transport), extra.bootloader, extra.finish, extra.diskMap, token, expiresAt, extra.redeployOf ?? null, extra.actor, created, extra.batch ?? newBatch(), extra.identity ?? newIdentitySeed());
    id = Number(r.lastInsertRowid);
    d.db.prepare("UPDATE nodes SET boot_action = 'install', updated_at = ? WHERE id = ?").run(created, node.id);
    d.audit(extra.actor, extra.redeployOf ? 'deploy.redeploy' : 'deploy.arm', node.name, { deployment: id, image: `${m.name}@${m.version}`, digest: m.digest, layout: layoutDigest, redeployOf: extra.redeployOf, transport: extra.transport.kind });
  });
  return { id, node: node.name, token, expiresAt };
}

/** What `ferry deploy --check` reports for one node: every problem arming it would meet. */
export interface DeployCheck {
  node: string;
  image?: string;
  layoutDigest?: string;
  problems: Problem[];
}

/**
 * The arm-time checks, with the same pure functions the installer runs (layout/preflight.ts):
 * the layout and its values, a root file system, the disk map. The server knows nothing of a
 * node's disks, so armChecks says so in a warning and the node checks them before writing.
 */
function armTimeProblems(d: DataDir, node: { name: string; disk_map: string | null }, inputs: Record<string, string>, layoutDigest: string, xml?: string): Problem[] {
  const layout = xml ?? getLayout(d, layoutDigest).xml;
  return armChecks({ layoutXml: layout, layoutSource: `layout ${layoutDigest}`, diskMap: node.disk_map ? j<Record<string, string>>(node.disk_map, {}) : undefined, inputs, nodeName: node.name }).problems;
}

/** Everything `armDeployment` would check, without arming or storing anything. */
export function checkDeployment(d: DataDir, nodeName: string, o: Omit<ArmOptions, 'actor' | 'ttlMs' | 'layoutSource'>): DeployCheck {
  const out: DeployCheck = { node: nodeName, problems: [] };
  const fail = (e: unknown) => {
    if (e instanceof ValidationError) out.problems.push(...e.problems);
    else if (e instanceof FerryError) out.problems.push({ severity: 'error', code: e.code, message: e.message, hint: e.hint });
    else throw e;
  };
  try {
    const node = getNodeRow(d, nodeName);
    let imageInputs: Record<string, string> = {};
    try {
      const imageRef = o.image ?? node.image;
      if (!imageRef) throw new FerryError('FERRY_E_NODE_NO_IMAGE', `node ${nodeName} has no image to deploy`, { hint: `give --image IMG, or assign one: ferry node set ${nodeName} --image IMG` });
      const image = getImage(d, imageRef);
      imageInputs = j<Record<string, string>>(image.inputs, {});
      const m = manifestOf(image);
      out.image = `${image.name}@${image.version}`;
      checkBlobs(d, m, `image ${out.image}`);
    } catch (e) {
      fail(e);
    }
    let xml: string | undefined;
    let digest = node.layout_digest ?? undefined;
    if (o.layout !== undefined) {
      if (/^sha256:[0-9a-f]{64}$/.test(o.layout)) digest = o.layout;
      else xml = o.layout;
    }
    if (xml === undefined && !digest) throw new FerryError('FERRY_E_NODE_NO_LAYOUT', `node ${nodeName} has no disk layout`, { hint: `give --layout FILE, or assign one: ferry node set ${nodeName} --layout FILE` });
    out.layoutDigest = digest;
    const inputs = { ...imageInputs, ...j<Record<string, string>>(node.inputs, {}), ...(o.inputs ?? {}) };
    out.problems.push(...armTimeProblems(d, node, inputs, digest ?? 'given', xml));
  } catch (e) {
    fail(e);
  }
  return out;
}

/** Arm one node: a deployment record and a fresh deploy token. */
export function armDeployment(d: DataDir, nodeName: string, o: ArmOptions): Armed {
  const node = getNodeRow(d, nodeName);
  const imageRef = o.image ?? node.image;
  if (!imageRef) {
    throw new FerryError('FERRY_E_NODE_NO_IMAGE', `node ${nodeName} has no image to deploy`, { details: { node: nodeName }, hint: `give --image IMG, or assign one: ferry node set ${nodeName} --image IMG` });
  }
  const image = getImage(d, imageRef);
  const m = manifestOf(image);
  checkBlobs(d, m, `image ${image.name}@${image.version}`);
  let layoutDigest = node.layout_digest;
  if (o.layout !== undefined) layoutDigest = /^sha256:[0-9a-f]{64}$/.test(o.layout) ? getLayout(d, o.layout).digest : storeLayout(d, o.layout, o.layoutSource);
  if (!layoutDigest) {
    throw new FerryError('FERRY_E_NODE_NO_LAYOUT', `node ${nodeName} has no disk layout`, { details: { node: nodeName }, hint: `give --layout FILE, or assign one: ferry node set ${nodeName} --layout FILE` });
  }
  const inputs = { ...j<Record<string, string>>(image.inputs, {}), ...j<Record<string, string>>(node.inputs, {}), ...(o.inputs ?? {}) };
  // Check before anything is armed: every problem at once, none of them found on the node later.
  const problems = armTimeProblems(d, node, inputs, layoutDigest);
  if (problems.some((p) => p.severity === 'error')) throw new ValidationError('FERRY_E_DEPLOY_CHECK', `node ${nodeName} cannot be armed`, problems);
  const kind = o.transport?.kind ?? defaultTransport(d, node).kind;
  const armed = insertDeployment(d, node, m, layoutDigest, inputs, {
    bootloader: node.bootloader,
    finish: node.finish,
    diskMap: node.disk_map,
    ttlMs: o.ttlMs ?? DEFAULT_TTL_MS,
    actor: o.actor,
    transport: transportSpec(kind, o.transport),
    batch: o.batch,
  });
  return problems.length ? { ...armed, warnings: problems } : armed;
}

/** Deploy exactly what a record deployed (image digest, layout, inputs) again. */
export function redeploy(d: DataDir, recordId: number, o: { ttlMs?: number; actor: string }): Armed {
  const r = getDeploymentRow(d, recordId);
  const node = getNodeRow(d, r.node_name);
  const m = JSON.parse(r.manifest) as ImageManifest;
  checkBlobs(d, m, `deployment ${recordId}'s image ${m.name}@${m.version}`);
  getLayout(d, r.layout_digest);
  return insertDeployment(d, node, m, r.layout_digest, j(r.inputs, {}), {
    bootloader: r.bootloader,
    finish: r.finish,
    diskMap: r.disk_map,
    ttlMs: o.ttlMs ?? DEFAULT_TTL_MS,
    actor: o.actor,
    redeployOf: recordId,
    // The same identity: the node gets the UUIDs of the record again (a record from before
    // migration 3 has one too; null only if the column was written by hand).
    identity: r.identity ?? undefined,
    // The same transport and options; a batch of its own (its old session is over).
    transport: transportOf(r),
  });
}

export function getDeploymentRow(d: DataDir, id: number): DeploymentRow {
  const r = d.db.prepare('SELECT * FROM deployments WHERE id = ?').get(id) as DeploymentRow | undefined;
  if (!r) throw new FerryError('FERRY_E_DEPLOYMENT_NOT_FOUND', `no deployment record ${id}`, { details: { id }, hint: 'list the records with `ferry history`' });
  return r;
}

export function listDeployments(d: DataDir, o: { node?: string; active?: boolean; limit?: number } = {}): DeploymentInfo[] {
  const where: string[] = [];
  const args: unknown[] = [];
  if (o.node) {
    where.push('node_name = ?');
    args.push(o.node);
  }
  if (o.active) where.push(`status IN (${IN_FLIGHT_SQL})`);
  const sql = `SELECT * FROM deployments ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
  return (d.db.prepare(sql).all(...args, o.limit ?? 1000) as DeploymentRow[]).map(deploymentInfo);
}

export interface StoredEvent extends ProgressEvent {
  id: number;
  receivedAt: string;
}

export function deploymentEvents(d: DataDir, id: number, afterId = 0): StoredEvent[] {
  return (d.db.prepare('SELECT * FROM deployment_events WHERE deployment_id = ? AND id > ? ORDER BY id').all(id, afterId) as any[]).map((r) => {
    const e: StoredEvent = { id: r.id, receivedAt: r.received_at, ts: r.ts, phase: r.phase, state: r.state };
    if (r.object !== null) e.object = r.object;
    if (r.bytes !== null) e.bytes = r.bytes;
    if (r.total !== null) e.total = r.total;
    if (r.message !== null) e.message = r.message;
    if (r.code !== null) e.code = r.code;
    if (r.details !== null) e.details = JSON.parse(r.details);
    return e;
  });
}

// ---------------------------------------------------------------- installer side

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

export function installConfig(d: DataDir, row: DeploymentRow, baseUrl: string): InstallConfig {
  const nodeRow = row.node_id !== null ? (d.db.prepare('SELECT * FROM nodes WHERE id = ?').get(row.node_id) as any) : undefined;
  const macs = nodeRow ? (d.db.prepare('SELECT mac FROM node_macs WHERE node_id = ? ORDER BY mac').all(nodeRow.id) as { mac: string }[]).map((m) => m.mac) : [];
  const layout = getLayout(d, row.layout_digest);
  if (!row.started_at) {
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

/**
 * What one deployment may store: a deploy token is readable by anyone on the boot network, so
 * its events must not fill the server's disk. A real install sends a few thousand (the installer
 * throttles progress to one a second); past either bound only stage starts, ends and errors are
 * kept (up to MAX_EVENTS_ESSENTIAL more), and one FERRY_W_EVENTS_DROPPED warning says so.
 */
export const EVENT_BUDGET = { events: 20_000, bytes: 16 << 20, essential: 1_000 };
const ESSENTIAL = new Set(['start', 'end', 'error']);

function eventSize(e: ProgressEvent): number {
  return (e.message?.length ?? 0) + (e.object?.length ?? 0) + (e.code?.length ?? 0) + (e.details ? JSON.stringify(e.details).length : 0) + 64;
}

export function recordEvents(d: DataDir, row: DeploymentRow, events: ProgressEvent[], budget = EVENT_BUDGET): StoredEvent[] {
  const received = now();
  const out: StoredEvent[] = [];
  d.write(() => {
    const used = d.db
      .prepare("SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(COALESCE(message, '')) + LENGTH(COALESCE(object, '')) + LENGTH(COALESCE(code, '')) + LENGTH(COALESCE(details, '')) + 64), 0) AS b, COALESCE(SUM(code = 'FERRY_W_EVENTS_DROPPED'), 0) AS marked FROM deployment_events WHERE deployment_id = ?")
      .get(row.id) as { n: number; b: number; marked: number };
    let { n, b } = used;
    let marked = used.marked > 0;
    const ins = d.db.prepare('INSERT INTO deployment_events (deployment_id, ts, received_at, phase, state, object, bytes, total, message, code, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const store = (e: ProgressEvent) => {
      const ts = e.ts ?? received;
      const r = ins.run(row.id, ts, received, e.phase, e.state, e.object ?? null, e.bytes ?? null, e.total ?? null, e.message ?? null, e.code ?? null, e.details ? JSON.stringify(e.details) : null);
      out.push({ ...e, ts, id: Number(r.lastInsertRowid), receivedAt: received });
      n++;
      b += eventSize(e);
    };
    for (const e of events) {
      const size = eventSize(e);
      if (n < budget.events && b + size <= budget.bytes) {
        store(e);
        continue;
      }
      if (!marked) {
        marked = true;
        store({
          phase: e.phase, state: 'warning', code: 'FERRY_W_EVENTS_DROPPED',
          message: `this deployment reached the server's event limit (${budget.events} events or ${budget.bytes >> 20} MiB): further progress events are dropped; stage starts, ends and errors are still kept`,
          details: { events: n, bytes: b },
        });
      }
      if (ESSENTIAL.has(e.state) && n < budget.events + budget.essential && size <= 65_536) store(e);
    }
    const last = events.filter((e) => e.state !== 'heartbeat').pop();
    // Any call from the installer, a heartbeat too, shows it is alive: a lost deployment runs again.
    d.db
      .prepare("UPDATE deployments SET stage = COALESCE(?, stage), status = CASE WHEN status IN ('armed', 'lost') THEN 'running' ELSE status END, started_at = COALESCE(started_at, ?) WHERE id = ?")
      .run(last?.phase ?? null, received, row.id);
  });
  return out;
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
    const rows = d.db.prepare(`SELECT id, node_name, ${lastContact} AS last FROM deployments WHERE status = 'running' AND ${lastContact} < ?`).all(cutoff) as { id: number; node_name: string; last: string }[];
    for (const r of rows) {
      d.db.prepare("UPDATE deployments SET status = 'lost' WHERE id = ? AND status = 'running'").run(r.id);
      d.audit(actor, 'deploy.lost', r.node_name, { deployment: r.id, lastContact: r.last, lostAfterSeconds: lostAfterMs / 1000 });
      out.push(deploymentInfo(getDeploymentRow(d, r.id)));
    }
  });
  return out;
}

/** The deployment a node boots into now, if any. */
export function activeDeploymentForNode(d: DataDir, nodeId: number): DeploymentRow | undefined {
  const r = d.db.prepare(`SELECT * FROM deployments WHERE node_id = ? AND status IN (${IN_FLIGHT_SQL}) ORDER BY id DESC LIMIT 1`).get(nodeId) as DeploymentRow | undefined;
  if (!r || Date.parse(r.expires_at) < Date.now()) return undefined;
  return r;
}

/** Does a deployment's image use this blob? */
export function deploymentUsesBlob(row: DeploymentRow, digest: string): boolean {
  return (JSON.parse(row.manifest) as ImageManifest).layers.some((l) => l.digest === digest);
}

export function parseTtl(s: string): number {
  const m = /^([0-9]+)\s*(s|m|h|d)?$/.exec(s.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new FerryError('FERRY_E_BAD_VALUE', `"${s}" is not a duration`, { details: { ttl: s }, hint: 'write a positive number with s, m, h or d, such as 6h' });
  }
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86400_000 }[(m[2] ?? 's') as 's']!;
  // Beyond a year a token is as good as permanent, and 999999999d overflows a Date (an internal error).
  if (ms > MAX_TTL_MS) {
    throw new FerryError('FERRY_E_BAD_VALUE', `"${s}" is longer than the longest deploy token life, 365 days`, { details: { ttl: s, maxDays: 365 }, hint: 'give at most 365d' });
  }
  return ms;
}

export const MAX_TTL_MS = 365 * 86400_000;


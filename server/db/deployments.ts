/**
 * Deployments: one install of one image digest with one layout onto one node. Arming
 * records everything the install will use (a copy of the image manifest, the layout
 * digest, the merged inputs), so the record can be deployed again exactly.
 *
 * This module holds the records (types, arming, listing); the installer's progress events and
 * their budget are in deployment-events.ts, the lifecycle (token checks, config fetch, result,
 * cancel, the lost-installer timer) in deployment-lifecycle.ts.
 */
import { randomBytes } from 'node:crypto';
import { parseDuration } from '../../common/units.js';
import { FerryError, ValidationError, type Problem } from '../../common/errors.js';
import { TRANSPORTS, type ImageManifest, type InstallResult, type MulticastOptions, type TransportKind } from '../../common/protocol.js';
import { newDeployToken, now, type DataDir } from '../context.js';
import { armChecks, type ArmDiskChoice } from '../../layout/preflight.js';
import { storedDisks } from '../../common/inventory.js';
import { templateValues } from '../../common/template.js';
import { getImage, manifestOf } from '../store/images.js';
import { ensureImageIndex, imageTree } from '../store/layer-index.js';
import { findNode, getLayout, getNodeRow, storeLayout, type NodeRow } from './inventory.js';
import { defaultTransport } from './groups.js';
import { j } from './index.js';
import type { DeploymentInfoBody, DeploymentStatus, TransportSpec } from '../../common/schema/responses.js';

export type { StoredEvent } from './deployment-events.js';

/** The statuses, the record's API shape and its transport are declared as schemas (common/schema/responses.ts). */
export type { DeploymentStatus, TransportSpec } from '../../common/schema/responses.js';
export type DeploymentInfo = DeploymentInfoBody;

/** Statuses of a deployment still in flight: a newer arm supersedes these, cancel ends them, the boot script serves them. */
export const IN_FLIGHT_STATUSES = ['armed', 'running', 'lost'] as const;
/** IN_FLIGHT_STATUSES as an SQL list, for `status IN (...)`. */
export const IN_FLIGHT_SQL = IN_FLIGHT_STATUSES.map((x) => `'${x}'`).join(', ');

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
  /** `install`, or `update`: files brought to an image version over SSH (server/db/updates.ts). */
  kind: 'install' | 'update';
}

export const DEFAULT_TTL_MS = 24 * 3600_000;

export function deploymentInfo(r: DeploymentRow): DeploymentInfo {
  const expired = (IN_FLIGHT_STATUSES as readonly string[]).includes(r.status) && Date.parse(r.expires_at) < Date.now();
  return {
    id: r.id,
    ...(r.kind === 'update' ? { kind: 'update' as const } : {}),
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

/**
 * The deployments of `row`'s batch and image that use transport `kind` and are still armed or
 * running: a multicast session's receivers, a torrent swarm's expected members.
 */
export function batchMembers(d: DataDir, row: Pick<DeploymentRow, 'batch' | 'image_digest'>, kind: TransportKind): number[] {
  if (!row.batch) return [];
  const rows = d.db
    .prepare("SELECT id, transport FROM deployments WHERE batch = ? AND image_digest = ? AND status IN ('armed', 'running')")
    .all(row.batch, row.image_digest) as Pick<DeploymentRow, 'id' | 'transport'>[];
  return rows.filter((r) => transportOf(r).kind === kind).map((r) => r.id);
}

/**
 * The deployments a layer's torrent swarm waits for: the batch's torrent deployments of the image
 * still armed or running, less those that took this layer over HTTP (a fallback event), which
 * will never announce it.
 */
export function swarmMembers(d: DataDir, row: Pick<DeploymentRow, 'batch' | 'image_digest'>, layer: string): number[] {
  const fell = d.db.prepare("SELECT 1 FROM deployment_events WHERE deployment_id = ? AND phase = 'layers' AND state = 'warning' AND object = ? AND json_extract(details, '$.fallback') = 'http' LIMIT 1");
  return batchMembers(d, row, 'torrent').filter((id) => !fell.get(id, layer));
}

export const DEFAULT_MAX_WAIT_S = 60;
export const MAX_MAX_WAIT_S = 3600;
/** The longest `--seed-wait` (the installer's own option has the same bound). */
export const MAX_SEED_WAIT_S = 3600;
/** udp-sender's pace unless --max-bitrate says otherwise: most of a gigabit link. */
export const DEFAULT_MAX_BITRATE = '600m';

/** What `ferry deploy` (or the API) asked for; every field optional, checked by transportRequest. */
export interface TransportRequest {
  kind?: TransportKind;
  minReceivers?: number;
  maxWaitS?: number;
  maxBitrate?: string;
  seedWaitS?: number;
}

/**
 * Check the transport options where they enter (CLI strings or API values), every problem at
 * once: a transport name, --min-receivers 1…10000, --max-wait 1…3600 s, --max-bitrate as
 * udpcast reads it (a number with k, m or g: bits per second), --seed-wait 0…3600 s (torrent).
 */
export function transportRequest(o: { transport?: unknown; minReceivers?: unknown; maxWait?: unknown; maxBitrate?: unknown; seedWait?: unknown }): TransportRequest {
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
  out.seedWaitS = int(typeof o.seedWait === 'string' ? o.seedWait.replace(/s$/, '') : o.seedWait, 'seed-wait', 0, MAX_SEED_WAIT_S);
  if (o.maxBitrate !== undefined) {
    if (typeof o.maxBitrate !== 'string' || !/^[1-9][0-9]{0,5}(\.[0-9]{1,3})?[kmg]$/i.test(o.maxBitrate.trim())) bad('max-bitrate', `"${String(o.maxBitrate).slice(0, 64)}" is not a bit rate such as 80m, 500k or 1g`);
    else out.maxBitrate = o.maxBitrate.trim().toLowerCase();
  }
  if (problems.length) throw new ValidationError('FERRY_E_BAD_VALUE', 'the transport options are invalid', problems);
  for (const k of Object.keys(out) as (keyof TransportRequest)[]) if (out[k] === undefined) delete out[k];
  return out;
}

function transportSpec(kind: TransportKind, t: TransportRequest = {}): TransportSpec {
  if (kind === 'torrent') return t.seedWaitS !== undefined ? { kind, seedWaitS: t.seedWaitS } : { kind };
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
  /** Which of the node's stored disks each layout disk maps to, when its hardware is known. */
  disks?: ArmDiskChoice[];
  problems: Problem[];
}

/**
 * The arm-time checks, with the same pure functions the installer runs (layout/preflight.ts):
 * the layout and its values, a root file system, the disk map, the hostname and network.*
 * inputs; the image's customization items against the node's template values and the image's
 * tree (the layer index: ensureArmIndex first); and, when the node has reported its hardware
 * (hw.* properties), the layout planned onto its disks: sizes, hints, which disk each becomes.
 */
function armTimeProblems(d: DataDir, node: NodeRow, inputs: Record<string, string>, layoutDigest: string, xml?: string, m?: ImageManifest): { problems: Problem[]; disks?: ArmDiskChoice[] } {
  const layout = xml ?? getLayout(d, layoutDigest).xml;
  const properties = j<Record<string, string>>(node.properties, {});
  const macs = (d.db.prepare('SELECT mac FROM node_macs WHERE node_id = ? ORDER BY mac').all(node.id) as { mac: string }[]).map((r) => r.mac);
  const tree = m ? imageTree(d, m) : undefined;
  const r = armChecks({
    layoutXml: layout, layoutSource: `layout ${layoutDigest}`, diskMap: node.disk_map ? j<Record<string, string>>(node.disk_map, {}) : undefined, inputs, nodeName: node.name,
    hardware: storedDisks(properties),
    customizations: m?.customizations, templateValues: templateValues({ name: node.name, macs, properties }, inputs), tree, imageName: m ? `image ${m.name}@${m.version}` : undefined,
  });
  if (m && !tree) {
    r.problems.push({ severity: 'warning', code: 'FERRY_W_ARM_NO_INDEX', message: `the server has no index of image ${m.name}@${m.version}'s layers: the paths its regexp and file items name are checked only on the node`, hint: 'run ferry image verify to find the missing or damaged layer, then import the image again' });
  }
  return r;
}

/**
 * Index the layers of the images these nodes would deploy, before the synchronous arm-time
 * checks read the index (a layer stored before the index existed is read once, here).
 */
export async function ensureArmIndex(d: DataDir, nodes: string[], image?: string): Promise<void> {
  const refs = new Set<string>();
  for (const n of nodes) {
    const ref = image ?? findNode(d, n)?.image;
    if (ref) refs.add(ref);
  }
  for (const ref of refs) {
    let m: ImageManifest;
    try {
      m = manifestOf(getImage(d, ref));
    } catch {
      continue; // the checks report the missing image
    }
    await ensureImageIndex(d, m);
  }
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
    let m: ImageManifest | undefined;
    try {
      const imageRef = o.image ?? node.image;
      if (!imageRef) throw new FerryError('FERRY_E_NODE_NO_IMAGE', `node ${nodeName} has no image to deploy`, { hint: `give --image IMG, or assign one: ferry node set ${nodeName} --image IMG` });
      const image = getImage(d, imageRef);
      imageInputs = j<Record<string, string>>(image.inputs, {});
      m = manifestOf(image);
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
    const r = armTimeProblems(d, node, inputs, digest ?? 'given', xml, m);
    out.problems.push(...r.problems);
    if (r.disks) out.disks = r.disks;
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
  const { problems } = armTimeProblems(d, node, inputs, layoutDigest, undefined, m);
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
  if (r.kind === 'update') {
    throw new FerryError('FERRY_E_REDEPLOY_UPDATE', `record ${recordId} is an update over SSH (ferry update), not an install`, {
      details: { id: recordId },
      hint: `run the update again (ferry update ${r.node_name} --image ${r.image_name}@${r.image_version}), or redeploy an install record (ferry history ${r.node_name})`,
    });
  }
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
  // Beyond a year a token is as good as permanent, and 999999999d overflows a Date (an internal error).
  return parseDuration(s, 'ttl', { ms: MAX_TTL_MS, text: 'the longest deploy token life, 365 days', hint: 'give at most 365d' });
}

export const MAX_TTL_MS = 365 * 86400_000;

/**
 * Restore media on the server: a medium built with `--server URL` carries a token of its own
 * (minted here, stored as its sha256 only), which may post the medium's install records and do
 * nothing else (server/api/auth.ts, kind `medium`). Each record posted at an installed system's
 * first boot becomes a deployment record (transport "medium", created by `medium:LABEL`), with
 * its events, so `ferry history` shows media installs beside network ones. A record is stored
 * once: posting it again (a lost answer, a retried unit) returns the same deployment.
 */
import { createHash, randomBytes } from 'node:crypto';
import { FerryError } from '../../common/errors.js';
import type { InstallRecord } from '../../common/medium.js';
import type { ImageManifest } from '../../common/protocol.js';
import type { ProgressEvent } from '../../common/progress.js';
import { now, sameSecret, type DataDir } from '../context.js';
import { getDeploymentRow, newBatch, type DeploymentRow } from './deployments.js';
import { recordEvents } from './deployment-events.js';
import { storeLayout } from './inventory.js';

export const MEDIUM_TOKEN_PREFIX = 'ferry-medium-';

export interface MediumRow {
  id: number;
  token_sha256: string;
  label: string;
  image_digest: string;
  node_name: string;
  server: string;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
  revoked_by: string | null;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** A fresh token for one medium; only its hash is stored. */
export function mintMediumToken(d: DataDir, m: { label: string; imageDigest: string; node: string; server: string; actor: string }): string {
  return mintMedium(d, m).token;
}

/** mintMediumToken, with the medium's id (`ferry media list`, `ferry media revoke ID`). */
export function mintMedium(d: DataDir, m: { label: string; imageDigest: string; node: string; server: string; actor: string }): { id: number; token: string } {
  const token = MEDIUM_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  let id = 0;
  d.write(() => {
    id = Number(d.db.prepare('INSERT INTO media (token_sha256, label, image_digest, node_name, server, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(sha(token), m.label, m.imageDigest, m.node, m.server, m.actor, now()).lastInsertRowid);
    d.audit(m.actor, 'media.token', m.node, { medium: id, label: m.label, image: m.imageDigest, server: m.server });
  });
  return { id, token };
}

export interface MediumInfo {
  id: number;
  label: string;
  node: string;
  imageDigest: string;
  server: string;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
  records: number;
}

/** Every medium whose token this data directory minted, oldest first. */
export function listMedia(d: DataDir): MediumInfo[] {
  const rows = d.db.prepare('SELECT m.*, (SELECT COUNT(*) FROM media_records r WHERE r.medium_id = m.id) AS records FROM media m ORDER BY m.id').all() as (MediumRow & { records: number })[];
  return rows.map((r) => ({ id: r.id, label: r.label, node: r.node_name, imageDigest: r.image_digest, server: r.server, createdBy: r.created_by, createdAt: r.created_at, revokedAt: r.revoked_at, records: r.records }));
}

/**
 * End a medium's token: its record posts are refused from then on (FERRY_E_MEDIUM_REVOKED); the
 * records it posted stay in the history. Revoking twice is not an error (the first time stays).
 */
export function revokeMedium(d: DataDir, id: number, actor: string): MediumInfo {
  const row = d.db.prepare('SELECT * FROM media WHERE id = ?').get(id) as MediumRow | undefined;
  if (!row) {
    throw new FerryError('FERRY_E_NOT_FOUND', `no medium has id ${id}`, { details: { medium: id }, hint: 'ferry media list shows the media this server minted tokens for, with their ids' });
  }
  if (!row.revoked_at) {
    d.write(() => {
      d.db.prepare('UPDATE media SET revoked_at = ?, revoked_by = ? WHERE id = ?').run(now(), actor, id);
      d.audit(actor, 'media.revoke', row.node_name, { medium: id, label: row.label });
    });
  }
  return listMedia(d).find((m) => m.id === id)!;
}

export function isMediumToken(t: string): boolean {
  return t.startsWith(MEDIUM_TOKEN_PREFIX);
}

export type MediumTokenCheck = { ok: true; medium: MediumRow } | { ok: false; code: string; message: string; hint: string };

export function checkMediumToken(d: DataDir, token: string): MediumTokenCheck {
  const h = sha(token);
  const row = d.db.prepare('SELECT * FROM media WHERE token_sha256 = ?').get(h) as MediumRow | undefined;
  if (!row || !sameSecret(row.token_sha256, h)) {
    return { ok: false, code: 'FERRY_E_TOKEN_INVALID', message: 'no medium has this token', hint: 'the medium was built for another server (ferry media build --server URL on this one)' };
  }
  if (row.revoked_at) {
    return { ok: false, code: 'FERRY_E_MEDIUM_REVOKED', message: `medium ${row.id} (${row.label}, node ${row.node_name}) was revoked at ${row.revoked_at}: its install records are refused`, hint: 'build a new medium (ferry media build --server URL) or customize this one with a fresh token (ferry media customize FILE --server URL)' };
  }
  return { ok: true, medium: row };
}

export interface RecordedInstall {
  deployment: number;
  /** The record was stored before (a repeated post). */
  duplicate: boolean;
}

/** Store a posted install record as a deployment record with its events (once per record id). */
export function recordMediumInstall(d: DataDir, medium: MediumRow, rec: InstallRecord): RecordedInstall {
  const seen = d.db.prepare('SELECT deployment_id FROM media_records WHERE record_id = ?').get(rec.id) as { deployment_id: number } | undefined;
  if (seen) return { deployment: seen.deployment_id, duplicate: true };
  if (rec.image.digest !== medium.image_digest) {
    throw new FerryError('FERRY_E_FORBIDDEN', `the record is of image ${rec.image.name}@${rec.image.version} (${rec.image.digest}); medium ${medium.label}'s token posts records of ${medium.image_digest} only`, {
      details: { medium: medium.label, image: rec.image.digest },
      hint: 'each medium reports with its own token',
    });
  }
  const stored = d.db.prepare('SELECT manifest FROM images WHERE digest = ? ORDER BY id LIMIT 1').get(rec.image.digest) as { manifest: string } | undefined;
  const manifest: ImageManifest = stored ? (JSON.parse(stored.manifest) as ImageManifest) : ({ name: rec.image.name, version: rec.image.version, digest: rec.image.digest, layers: [] } as unknown as ImageManifest);
  const node = d.db.prepare('SELECT id FROM nodes WHERE name = ?').get(rec.node) as { id: number } | undefined;
  const received = now();
  let id = 0;
  d.write(() => {
    // A record kept on the medium leaves the layout's XML out (ferry media records fills it in
    // from the medium's description); a layout this server already has is enough.
    const known = !rec.layout.xml && d.db.prepare('SELECT 1 FROM layouts WHERE digest = ?').get(rec.layout.digest);
    if (!rec.layout.xml && !known) {
      throw new FerryError('FERRY_E_BAD_REQUEST', `the record of ${rec.node} has no layout XML, and this server has no layout ${rec.layout.digest}`, { details: { record: rec.id, layout: rec.layout.digest }, hint: 'import it with ferry media records FILE|DEV from the medium it was kept on (which holds the layout)' });
    }
    const layoutDigest = known ? rec.layout.digest : storeLayout(d, rec.layout.xml, `medium ${medium.label}`);
    const r = d.db
      .prepare(
        `INSERT INTO deployments (node_id, node_name, image_name, image_version, image_digest, manifest, layout_digest, inputs, transport,
           bootloader, finish, disk_map, token, expires_at, status, error, created_by, created_at, started_at, ended_at, batch)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'auto', 'reboot', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      // The token column is unique and never a deploy token (no ferry-deploy- prefix): nothing can use it.
      .run(node?.id ?? null, rec.node, rec.image.name, rec.image.version, rec.image.digest, JSON.stringify(manifest), layoutDigest, JSON.stringify(rec.inputs), JSON.stringify({ kind: 'medium' }), 'medium-record-' + randomBytes(16).toString('hex'), rec.endedAt, rec.status ?? 'success', rec.error ? JSON.stringify(rec.error) : null, `medium:${medium.label}`, received, rec.startedAt, rec.endedAt, newBatch());
    id = Number(r.lastInsertRowid);
    d.db.prepare('INSERT INTO media_records (record_id, medium_id, deployment_id, received_at) VALUES (?, ?, ?, ?)').run(rec.id, medium.id, id, received);
    d.audit(`medium:${medium.label}`, 'media.record', rec.node, { deployment: id, image: `${rec.image.name}@${rec.image.version}`, record: rec.id, status: rec.status, ...(rec.error ? { error: rec.error.code } : {}) });
  });
  const row: DeploymentRow = getDeploymentRow(d, id);
  recordEvents(d, row, rec.events as ProgressEvent[]);
  return { deployment: id, duplicate: false };
}

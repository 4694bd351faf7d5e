/**
 * The SSH host keys Ferry trusts (table ssh_host_keys): per node, or per HOST:PORT for machines
 * that are no node. No trust on first use unless the operator asks for it: a connection to a
 * machine with no recorded key fails with FERRY_E_SSH_HOST_KEY_UNKNOWN and the key's fingerprint,
 * to be checked on the machine and given with --host-key (or accepted with --accept-new-host-key).
 */
import { FerryError } from '../../common/errors.js';
import { now, type DataDir } from '../context.js';
import { formatHostPort, type SshTarget } from './target.js';

/** Whose keys: a node's (by id) or a bare host:port's. */
export type KeyOwner = { nodeId: number; node?: string } | { hostPort: string };

export function ownerOf(target: SshTarget, node?: { id: number; name: string }): KeyOwner {
  return node ? { nodeId: node.id, node: node.name } : { hostPort: formatHostPort(target) };
}

export function recordedFingerprints(d: DataDir, owner: KeyOwner): string[] {
  const rows = ('nodeId' in owner
    ? d.db.prepare('SELECT fingerprint FROM ssh_host_keys WHERE node_id = ? ORDER BY id').all(owner.nodeId)
    : d.db.prepare('SELECT fingerprint FROM ssh_host_keys WHERE node_id IS NULL AND host = ? ORDER BY id').all(owner.hostPort)) as { fingerprint: string }[];
  return rows.map((r) => r.fingerprint);
}

/** Record a trusted key (idempotent). `source`: operator, accept-new, installer. */
export function recordHostKey(d: DataDir, owner: KeyOwner, fingerprint: string, publicKey: string | undefined, source: string): void {
  if ('nodeId' in owner) {
    d.db.prepare('INSERT OR IGNORE INTO ssh_host_keys (node_id, fingerprint, public_key, source, created_at) VALUES (?, ?, ?, ?, ?)').run(owner.nodeId, fingerprint, publicKey ?? null, source, now());
  } else {
    d.db.prepare('INSERT OR IGNORE INTO ssh_host_keys (node_id, host, fingerprint, public_key, source, created_at) VALUES (NULL, ?, ?, ?, ?, ?)').run(owner.hostPort, fingerprint, publicKey ?? null, source, now());
  }
}

export interface TrustPolicy {
  /** Fingerprints recorded for this machine. */
  recorded: string[];
  /** Fingerprints given on the command line (--host-key): trusted, and recorded on success. */
  given: string[];
  /** Record the key of a machine with no recorded key (never replaces a recorded one). */
  acceptNew: boolean;
}

export type TrustDecision = { ok: true; record: boolean; source?: string } | { ok: false; error: FerryError };

/**
 * Decide about the key a machine presented. Pure. A recorded key that differs is refused even
 * with --accept-new-host-key (as OpenSSH's accept-new): the machine was reinstalled, or someone is
 * in the middle; the operator clears the record (`ferry node set N --forget-host-keys`) knowingly.
 */
export function decideHostKey(where: string, fp: string, p: TrustPolicy): TrustDecision {
  if (p.recorded.includes(fp)) return { ok: true, record: false };
  if (p.given.length) {
    if (p.given.includes(fp)) return { ok: true, record: true, source: 'operator' };
    return {
      ok: false,
      error: new FerryError('FERRY_E_SSH_HOST_KEY_MISMATCH', `the SSH host key of ${where} is ${fp}, not the one given with --host-key (${p.given.join(', ')})`, {
        details: { where, presented: fp, expected: p.given },
        hint: 'check the fingerprint on the machine itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); if it differs, do not connect: the address may reach another machine',
      }),
    };
  }
  if (p.recorded.length) {
    return {
      ok: false,
      error: new FerryError('FERRY_E_SSH_HOST_KEY_MISMATCH', `the SSH host key of ${where} is ${fp}, but Ferry recorded ${p.recorded.join(', ')}: refused`, {
        details: { where, presented: fp, expected: p.recorded },
        hint: 'if the machine was reinstalled outside Ferry, check the new fingerprint on it, then `ferry node set NODE --forget-host-keys --host-key SHA256:…`; otherwise someone may be answering in its place',
      }),
    };
  }
  if (p.acceptNew) return { ok: true, record: true, source: 'accept-new' };
  return {
    ok: false,
    error: new FerryError('FERRY_E_SSH_HOST_KEY_UNKNOWN', `Ferry has no SSH host key recorded for ${where}; it presented ${fp}`, {
      details: { where, presented: fp },
      hint: 'check that fingerprint on the machine (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then give it with --host-key SHA256:… (or trust it blindly with --accept-new-host-key)',
    }),
  };
}

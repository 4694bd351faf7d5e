/**
 * Deterministic identifiers: the same seed and key always give the same UUID, so a plan
 * is reproducible and fstab can name file systems before they exist.
 */
import { createHash } from 'node:crypto';

function bytes(seed: string, key: string): Buffer {
  return createHash('sha256').update(`ferry\0${seed}\0${key}`).digest();
}

/** An RFC 4122 version-4-shaped UUID derived from seed and key. */
export function seededUuid(seed: string, key: string): string {
  const b = bytes(seed, key).subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A FAT volume id (8 hex digits) as mkfs.fat -i takes it. */
export function seededVolumeId(seed: string, key: string): string {
  return bytes(seed, key).subarray(0, 4).toString('hex').toUpperCase();
}

/** mdadm's spelling of a UUID: four groups of eight hex digits joined by colons. */
export function mdadmUuid(uuid: string): string {
  const h = uuid.replace(/-/g, '');
  return `${h.slice(0, 8)}:${h.slice(8, 16)}:${h.slice(16, 24)}:${h.slice(24)}`;
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const FAT_UUID_RE = /^[0-9A-F]{4}-[0-9A-F]{4}$/;

/**
 * The seed of one install's identifiers: the deployment record's identity seed (random at arm
 * time, copied by a redeploy) and the layout. Two deployments never share it, so no two nodes
 * get the same file system, RAID or GPT UUIDs; installing the same record again (a redeploy, or
 * a retry of the same deployment) gives the same ones. A server that sends no identity (one
 * from before the identity seed) still separates deployments: its server-wide deployment id
 * and the node's name take its place.
 */
export function deploymentSeed(deployment: { id: number; identity?: string }, node: string, layoutDigest: string): string {
  const who = deployment.identity ? `identity:${deployment.identity}` : `node:${node}\0deployment:${deployment.id}`;
  return `${who}\0layout:${layoutDigest}`;
}

/** A GPT GUID as sfdisk takes it (upper case), derived from seed and key. */
export function seededGuid(seed: string, key: string): string {
  return seededUuid(seed, key).toUpperCase();
}

/** An MBR disk identifier (`0x` and 8 hex digits, never zero) as `sfdisk --disk-id` takes it. */
export function seededMbrId(seed: string, key: string): string {
  const h = bytes(seed, key).subarray(0, 4).toString('hex');
  return `0x${/^0+$/.test(h) ? '00000001' : h}`;
}

const LVM_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * An LVM identifier (a PV UUID as `pvcreate --uuid` takes it): 32 characters of LVM's alphabet
 * (letters and digits here), shown 6-4-4-4-4-4-6 as lvm prints them, derived from seed and key.
 */
export function seededLvmUuid(seed: string, key: string): string {
  const b = Buffer.concat([bytes(seed, key), bytes(seed, `${key}\0more`)]);
  const chars = [...b.subarray(0, 32)].map((x) => LVM_CHARS[x % LVM_CHARS.length]).join('');
  return [6, 4, 4, 4, 4, 4, 6].reduce<{ out: string[]; at: number }>((a, n) => ({ out: [...a.out, chars.slice(a.at, a.at + n)], at: a.at + n }), { out: [], at: 0 }).out.join('-');
}

export const LVM_UUID_RE = /^[0-9A-Za-z]{6}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{6}$/;

/**
 * Ferry's own SSH key pair and SSH host key fingerprints.
 *
 * The key pair lives in the data directory (`DATA/ssh/id_ed25519`, mode 0600, and
 * `id_ed25519.pub`), made at first use by ssh2's key generator (OpenSSH's private key format,
 * so `ssh -i DATA/ssh/id_ed25519` reads it too). `ferry ssh-key` prints the public half for the
 * authorized_keys of machines Ferry did not install.
 *
 * Fingerprints are OpenSSH's: `SHA256:` and the unpadded base64 of the sha256 of the key blob
 * (what `ssh-keygen -lf KEY.pub` prints), so an operator can compare them with the machine's own.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { FerryError } from '../../common/errors.js';

export const KEY_DIR = 'ssh';
export const KEY_FILE = 'id_ed25519';

export interface FerryKey {
  privateKey: string;
  publicKey: string;
  file: string;
}

/** Ferry's key pair of a data directory, made (0600) when it is not there yet. */
export function ferryKey(dataDir: string): FerryKey {
  const dir = join(dataDir, KEY_DIR);
  const file = join(dir, KEY_FILE);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: `ferry@${hostname()}` });
    // Written under a temporary name then renamed: two commands making the key at once never
    // leave a half-written file, and the last rename wins with a complete pair.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, pair.private, { mode: 0o600 });
    writeFileSync(`${tmp}.pub`, pair.public.trimEnd() + '\n', { mode: 0o644 });
    renameSync(`${tmp}.pub`, `${file}.pub`);
    renameSync(tmp, file);
  }
  // Forced at every use, as the data directory's own mode is: the private key is a root login
  // on every node that authorized it.
  chmodSync(file, 0o600);
  const privateKey = readFileSync(file, 'utf8');
  let publicKey: string;
  try {
    publicKey = readFileSync(`${file}.pub`, 'utf8').trim();
  } catch {
    publicKey = publicKeyOf(privateKey, file);
    writeFileSync(`${file}.pub`, publicKey + '\n', { mode: 0o644 });
  }
  return { privateKey, publicKey, file };
}

/** The OpenSSH public key line of a private key (`ssh-ed25519 AAAA… comment`). */
export function publicKeyOf(privateKey: string, file: string): string {
  const k = ssh2.utils.parseKey(privateKey);
  if (k instanceof Error) throw badKey(file, k.message);
  const key = Array.isArray(k) ? k[0] : k;
  return `${key.type} ${key.getPublicSSH().toString('base64')}${key.comment ? ' ' + key.comment : ''}`;
}

function badKey(file: string, why: string): FerryError {
  return new FerryError('FERRY_E_SSH_BAD_IDENTITY', `cannot use the SSH private key ${file}: ${why}`, {
    details: { file },
    hint: 'give an unencrypted OpenSSH or PEM private key with --identity (ssh-keygen -t ed25519 -N "" -f FILE), or leave --identity out to use Ferry\'s own key (ferry ssh-key)',
  });
}

/** A private key file given with --identity, checked before any connection. */
export function readIdentity(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw badKey(file, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  const k = ssh2.utils.parseKey(text);
  if (k instanceof Error) throw badKey(file, /encrypted|passphrase/i.test(k.message) ? 'it is encrypted (Ferry takes no passphrases)' : k.message);
  return text;
}

/** OpenSSH's fingerprint of a public key blob (the wire form, as the server sends it). */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside a key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

/** A host key as an OpenSSH public key line (`TYPE BASE64`), for the record. */
export function publicLine(blob: Buffer): string {
  return `${keyType(blob)} ${blob.toString('base64')}`;
}

export const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** A fingerprint the operator typed (`--host-key`), or a public key line, as a fingerprint. */
export function parseHostKey(text: string, what = '--host-key'): string {
  const t = text.trim();
  if (FINGERPRINT_RE.test(t)) return t;
  const m = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+([A-Za-z0-9+/]+=*)(\s.*)?$/.exec(t);
  if (m) {
    const blob = Buffer.from(m[2], 'base64');
    if (keyType(blob) === m[1]) return fingerprint(blob);
  }
  throw new FerryError('FERRY_E_SSH_BAD_HOST_KEY', `${what} "${t.slice(0, 80)}" is neither an SSH host key fingerprint nor a public key`, {
    details: { what, value: t.slice(0, 200) },
    hint: 'give the fingerprint as OpenSSH prints it (on the machine: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), SHA256: and 43 base64 characters',
  });
}

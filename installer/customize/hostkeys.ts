/**
 * Fresh SSH host keys for an installed machine, made by the installer itself (node:crypto, no
 * ssh-keygen needed in the boot environment or a chroot into the target) in OpenSSH's own
 * formats: the private key as `openssh-key-v1` (what ssh-keygen writes, what sshd reads), the
 * public key as the `TYPE BASE64 COMMENT` line. The planner writes them into the target through
 * TargetRoot; the installer reports the public halves to the server, which records them for the
 * node (no trust on first use for machines Ferry installed).
 */
import { generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';

export interface HostKey {
  /** `ed25519`, `ecdsa`, `rsa`: the file name part (ssh_host_TYPE_key). */
  type: 'ed25519' | 'ecdsa' | 'rsa';
  privateKey: string;
  /** `ssh-ed25519 AAAA… root@NODE` */
  publicLine: string;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (b: Buffer | string) => {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([u32(buf.length), buf]);
};
/** SSH mpint: big-endian, positive, a leading zero when the top bit is set. */
export const mpint = (b: Buffer) => {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v.length && v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return str(v);
};
const b64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');

/** The private key file text from the public blob and the private fields (openssh-key-v1). */
export function opensshPrivateKey(keyType: string, publicBlob: Buffer, privateFields: Buffer, comment: string): string {
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, str(keyType), privateFields, str(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(publicBlob), str(priv)]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function ed25519(comment: string): HostKey {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as JsonWebKey;
  const pub = b64u(jwk.x);
  const seed = b64u(jwk.d);
  const blob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  const fields = Buffer.concat([str(pub), str(Buffer.concat([seed, pub]))]);
  return { type: 'ed25519', privateKey: opensshPrivateKey('ssh-ed25519', blob, fields, comment), publicLine: `ssh-ed25519 ${blob.toString('base64')} ${comment}` };
}

function ecdsa(comment: string): HostKey {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JsonWebKey;
  const q = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
  const t = 'ecdsa-sha2-nistp256';
  const blob = Buffer.concat([str(t), str('nistp256'), str(q)]);
  const fields = Buffer.concat([str('nistp256'), str(q), mpint(b64u(jwk.d))]);
  return { type: 'ecdsa', privateKey: opensshPrivateKey(t, blob, fields, comment), publicLine: `${t} ${blob.toString('base64')} ${comment}` };
}

function rsa(comment: string, bits: number): HostKey {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 0x10001 }).privateKey.export({ format: 'jwk' }) as JsonWebKey;
  const [n, e, d, p, q, qi] = [jwk.n, jwk.e, jwk.d, jwk.p, jwk.q, jwk.qi].map(b64u);
  const blob = Buffer.concat([str('ssh-rsa'), mpint(e), mpint(n)]);
  // OpenSSH's order: n, e, d, iqmp, p, q.
  const fields = Buffer.concat([mpint(n), mpint(e), mpint(d), mpint(qi), mpint(p), mpint(q)]);
  return { type: 'rsa', privateKey: opensshPrivateKey('ssh-rsa', blob, fields, comment), publicLine: `ssh-rsa ${blob.toString('base64')} ${comment}` };
}

/** The three types `ssh-keygen -A` makes (RSA at its 3072 bits). */
export function makeHostKeys(comment: string, o: { rsaBits?: number } = {}): HostKey[] {
  return [ed25519(comment), ecdsa(comment), rsa(comment, o.rsaBits ?? 3072)];
}

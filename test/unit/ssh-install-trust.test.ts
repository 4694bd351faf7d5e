import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { makeHostKeys, mpint } from '../../installer/customize/hostkeys.js';
import { planCustomization, type TargetView } from '../../installer/customize/plan.js';
import { addressOf } from '../../installer/stages/customize.js';
import { expandFerryKeyItems, peerAddress } from '../../server/ssh/authorize.js';
import { fingerprint, parseHostKey } from '../../server/ssh/keys.js';

function view(files: Record<string, string | null>): TargetView {
  return {
    readText: (p) => (typeof files[p] === 'string' ? (files[p] as string) : undefined),
    exists: (p) => p in files || Object.keys(files).some((f) => f.startsWith(p + '/')),
    list: (dir) => Object.keys(files).filter((f) => f.startsWith(dir + '/') && !f.slice(dir.length + 1).includes('/')).map((f) => f.slice(dir.length + 1)).sort(),
  };
}
const BASE = {
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
  '/etc/ssh/ssh_host_ed25519_key': 'PRIVATE',
  '/etc/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAA master',
  '/usr/bin/ssh-keygen': null,
  '/lib/systemd/systemd': null,
};
const inputs = { node: { name: 'web01', macs: ['52:54:00:00:00:01'], properties: {} }, inputs: {}, machineId: '0123456789abcdef0123456789abcdef' };
const KEYS = makeHostKeys('root@web01', { rsaBits: 1024 });

describe('SSH host keys made by the installer', () => {
  it('are OpenSSH keys: the private key parses and gives the public line\'s key', () => {
    expect(KEYS.map((k) => k.type)).toEqual(['ed25519', 'ecdsa', 'rsa']);
    for (const k of KEYS) {
      const priv = ssh2.utils.parseKey(k.privateKey);
      if (priv instanceof Error) throw priv;
      const blob = (Array.isArray(priv) ? priv[0] : priv).getPublicSSH();
      expect(`${k.publicLine.split(' ')[0]} ${blob.toString('base64')}`).toBe(k.publicLine.split(' ').slice(0, 2).join(' '));
      expect(parseHostKey(k.publicLine)).toBe(fingerprint(blob));
      expect(k.publicLine.endsWith(' root@web01')).toBe(true);
    }
    // Fresh each time.
    expect(makeHostKeys('x', { rsaBits: 1024 })[0].publicLine).not.toBe(KEYS[0].publicLine);
  });
  it('mpint adds a zero byte before a set top bit and drops leading zeros', () => {
    expect(mpint(Buffer.from([0x80])).toString('hex')).toBe('000000020080');
    expect(mpint(Buffer.from([0, 0, 0x7f])).toString('hex')).toBe('000000017f');
  });
  it('are written in place of the master\'s when the image has sshd, private 0600, and no first-boot unit', async () => {
    const ops = await planCustomization([], { ...inputs, sshHostKeys: KEYS }, view({ ...BASE, '/usr/sbin/sshd': null }));
    const writes = ops.filter((o) => o.op === 'write' && o.path.startsWith('/etc/ssh/'));
    expect(writes.map((o) => 'path' in o && o.path)).toEqual(KEYS.flatMap((k) => [`/etc/ssh/ssh_host_${k.type}_key`, `/etc/ssh/ssh_host_${k.type}_key.pub`]));
    expect(writes.map((o) => o.op === 'write' && o.mode)).toEqual([0o600, 0o644, 0o600, 0o644, 0o600, 0o644]);
    expect(ops.some((o) => o.op === 'remove' && o.path === '/etc/ssh/ssh_host_ed25519_key')).toBe(true);
    expect(ops.some((o) => 'path' in o && o.path.includes('ferry-ssh-hostkeys'))).toBe(false);
    // The private key never appears in an op's description (the why is logged).
    for (const o of ops) expect(o.why).not.toContain('PRIVATE KEY');
  });
  it('are not written without sshd in the image: the first-boot unit stays', async () => {
    const ops = await planCustomization([], { ...inputs, sshHostKeys: KEYS }, view(BASE));
    expect(ops.some((o) => o.op === 'write' && o.path.startsWith('/etc/ssh/ssh_host_'))).toBe(false);
    expect(ops.some((o) => 'path' in o && o.path === '/etc/systemd/system/ferry-ssh-hostkeys.service')).toBe(true);
  });
  it('an unexpanded ssh-authorize-ferry item is refused by the installer', async () => {
    await expect(planCustomization([{ kind: 'ssh-authorize-ferry' }], inputs, view(BASE))).rejects.toThrow(/unexpanded/);
  });
});

describe('the server\'s half', () => {
  it('expands ssh-authorize-ferry into authorized-keys with Ferry\'s key, for root or the user named', () => {
    const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFerry ferry@server\n';
    expect(expandFerryKeyItems([{ kind: 'hostname' }, { kind: 'ssh-authorize-ferry' }, { kind: 'ssh-authorize-ferry', user: 'admin' }], pub)).toEqual([
      { kind: 'hostname' },
      { kind: 'authorized-keys', user: 'root', keys: [pub.trim()], missingUser: 'warn' },
      { kind: 'authorized-keys', user: 'admin', keys: [pub.trim()], missingUser: 'warn' },
    ]);
  });
  it('takes the address from a static network input, else the peer\'s', () => {
    expect(addressOf({ 'network.address': '192.0.2.10/24' })).toBe('192.0.2.10');
    expect(addressOf({ 'network.address': 'fd00::5/64' })).toBe('[fd00::5]');
    expect(addressOf({})).toBeUndefined();
    expect(peerAddress('::ffff:10.0.0.7')).toBe('10.0.0.7');
    expect(peerAddress('fd00::9')).toBe('[fd00::9]');
    expect(peerAddress(undefined)).toBeUndefined();
  });
});

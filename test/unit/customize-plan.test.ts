import { describe, expect, it } from 'vitest';
import type { CustomizationItem } from '../../common/protocol.js';
import {
  planCustomization, renderHosts, networkSettings, renderIfupdown, renderNetworkd, renderNmConnection, renderNetplan,
  detectNetSystem, renderTemplate, type TargetView, type CustomizeInputs,
} from '../../installer/customize/plan.js';

/** An image as a map of path → content (null: exists, not a readable file). */
function view(files: Record<string, string | null>): TargetView {
  return {
    readText: (p) => (typeof files[p] === 'string' ? (files[p] as string) : undefined),
    exists: (p) => p in files || Object.keys(files).some((f) => f.startsWith(p + '/')),
    list: (d) => [...new Set(Object.keys(files).filter((f) => f.startsWith(d + '/')).map((f) => f.slice(d.length + 1).split('/')[0]))].sort(),
  };
}

const debian: Record<string, string | null> = {
  '/etc/hostname': 'master\n',
  '/etc/hosts': '127.0.0.1\tlocalhost\n127.0.1.1\tmaster\n\n# IPv6\n::1\tlocalhost ip6-localhost ip6-loopback\n',
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin:/home/admin:/bin/bash\n',
  '/etc/ssh/ssh_host_ed25519_key': 'PRIVATE',
  '/etc/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAA host',
  '/etc/ssh/ssh_host_rsa_key': 'PRIVATE',
  '/etc/ssh/sshd_config': 'PermitRootLogin no\n',
  '/etc/motd': 'Welcome to MASTER\nsecond line\n',
  '/var/lib/dbus/machine-id': 'abc\n',
  '/usr/bin/ssh-keygen': null,
  '/lib/systemd/systemd': null,
  '/lib/systemd/systemd-networkd': null,
  '/usr/sbin/update-initramfs': null,
};

const base: CustomizeInputs = {
  node: { name: 'web01', macs: ['52:54:00:12:34:56'], properties: { rack: 'r7' } },
  inputs: { hostname: 'web01.example.org', 'ssh.authorized_keys': 'ssh-ed25519 AAAAC3Nza operator@desk' },
  fstab: 'UUID=1234 / ext4 defaults 0 1\n',
  machineId: '0123456789abcdef0123456789abcdef',
};

const items: CustomizationItem[] = [
  { kind: 'hostname' },
  { kind: 'network' },
  { kind: 'authorized-keys', user: 'admin', keys: ['ssh-rsa AAAAB3Nza image-key'] },
  { kind: 'file', path: '/etc/ferry-role', content: 'web\n', mode: 0o640, uid: 0, gid: 4 },
  { kind: 'file', path: '/opt/blob', content: Buffer.from([0, 1, 2, 255]).toString('base64'), encoding: 'base64' },
  { kind: 'regexp', path: '/etc/motd', pattern: 'MASTER', replacement: '{{ node.name }} in {{ node.rack }}' },
  { kind: 'template', path: '/etc/node.conf', template: 'name={{ node.name }}\nmac={{node.mac}}\nrole={{ role }}\n' },
  { kind: 'script', script: 'echo hello > /root/hello\n' },
];

function render(ops: Awaited<ReturnType<typeof planCustomization>>): string {
  return ops.map((o) => JSON.stringify(o, (k, v) => (k === 'mode' && typeof v === 'number' ? '0' + v.toString(8) : v), 2)).join('\n') + '\n';
}

describe('customization plan (golden)', () => {
  it('plans every action on a Debian-like image with systemd-networkd, DHCP', async () => {
    const ops = await planCustomization(items, { ...base, inputs: { ...base.inputs, role: 'frontend' } }, view(debian));
    await expect(render(ops)).toMatchFileSnapshot('golden/customize-debian-dhcp.txt');
  });

  it('plans static networking for every configuration system', async () => {
    const inputs = { 'network.mode': 'static', 'network.address': '192.0.2.10/24', 'network.gateway': '192.0.2.1', 'network.dns': '192.0.2.53, 2001:db8::53', 'network.interface': 'ens3' };
    const s = networkSettings(inputs, ['52:54:00:12:34:56']);
    const out = ['# ifupdown', renderIfupdown(s), '# networkd', renderNetworkd(s), '# NetworkManager', renderNmConnection(s), '# netplan', renderNetplan(s)].join('\n');
    await expect(out).toMatchFileSnapshot('golden/network-static.txt');
    const d = networkSettings({}, ['52:54:00:12:34:56']);
    const out2 = ['# ifupdown', renderIfupdown(d), '# networkd', renderNetworkd(d), '# NetworkManager', renderNmConnection(d), '# netplan', renderNetplan(d)].join('\n');
    await expect(out2).toMatchFileSnapshot('golden/network-dhcp.txt');
  });

  it('detects the network system an image uses', () => {
    expect(detectNetSystem(view({ '/usr/sbin/netplan': null, '/sbin/ifup': null }))).toBe('netplan');
    expect(detectNetSystem(view({ '/usr/sbin/NetworkManager': null, '/sbin/ifup': null }))).toBe('networkmanager');
    expect(detectNetSystem(view({ '/sbin/ifup': null, '/lib/systemd/systemd-networkd': null }))).toBe('ifupdown');
    expect(detectNetSystem(view({ '/lib/systemd/systemd-networkd': null }))).toBe('networkd');
    expect(detectNetSystem(view({}))).toBeUndefined();
  });

  it('reports every bad network input at once', () => {
    let msg = '';
    try {
      networkSettings({ 'network.mode': 'static', 'network.address': '300.1.1.1', 'network.gateway': 'x', 'network.dns': 'y' }, []);
    } catch (e) {
      msg = (e as Error).message;
    }
    for (const k of ['network.address', 'network.gateway', 'network.dns']) expect(msg).toContain(k);
  });

  it('keeps /etc/hosts lines and sets the 127.0.1.1 line', () => {
    expect(renderHosts('127.0.0.1 localhost\n10.0.0.1 db\n', 'a.b.c')).toBe('127.0.0.1 localhost\n127.0.1.1\ta.b.c a\n10.0.0.1 db\n');
    expect(renderHosts(undefined, 'n1')).toMatch(/^127\.0\.0\.1\tlocalhost\n127\.0\.1\.1\tn1\n::1/);
  });

  it('refuses bad hostnames, unknown users, missing template values and relative paths', async () => {
    await expect(planCustomization([], { ...base, inputs: { hostname: 'bad_name!' } }, view(debian))).rejects.toThrow(/not a valid host name/);
    await expect(planCustomization([{ kind: 'authorized-keys', user: 'nobody' }], base, view(debian))).rejects.toThrow(/user "nobody" does not exist/);
    expect(() => renderTemplate('{{ a }} {{ b }}', { a: '1' }, '/x')).toThrow(/not set: b/);
    await expect(planCustomization([{ kind: 'file', path: 'etc/x', content: '' }], base, view(debian))).rejects.toThrow(/not absolute/);
    await expect(planCustomization([{ kind: 'regexp', path: '/nope', pattern: 'a', replacement: 'b' }], base, view(debian))).rejects.toThrow(/does not exist/);
  });

  it('stops a regexp item that backtracks catastrophically, with its file and pattern, while the main thread keeps running', async () => {
    // (a+)+$ on 40 a's and a b: about 2^40 steps for V8's backtracking engine (hours).
    const hostile = view({ ...debian, '/etc/motd': 'a'.repeat(40) + 'b\n' });
    // A timer on the main thread stands for the installer's heartbeats: with the regexp on the
    // main thread (as before, under node:vm) it could not fire once until the limit passed.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 25);
    let err: unknown;
    try {
      await planCustomization([{ kind: 'regexp', path: '/etc/motd', pattern: '(a+)+$', replacement: 'x' }], { ...base, regexpLimitMs: 1500 }, hostile);
    } catch (e) {
      err = e;
    } finally {
      clearInterval(timer);
    }
    expect(err).toMatchObject({ code: 'FERRY_E_CUSTOMIZE_INPUT', details: { path: '/etc/motd', pattern: '(a+)+$', limitMs: 1500 } });
    expect((err as Error).message).toMatch(/regexp replacement in \/etc\/motd: \/\(a\+\)\+\$\/ ran longer than 1\.5 s/);
    expect(ticks).toBeGreaterThanOrEqual(5);
    // The same limit leaves an ordinary pattern, with its groups and flags, as it was.
    const ops = await planCustomization([{ kind: 'regexp', path: '/etc/motd', pattern: '^(A+)(B)$', flags: 'gim', replacement: '$2$1' }], { ...base, regexpLimitMs: 1500 }, view({ ...debian, '/etc/motd': 'aab\nx\n' }));
    expect(ops.find((o) => o.op === 'write' && o.path === '/etc/motd')).toMatchObject({ content: 'baa\nx\n' });
  });

  it('runs regexp items one after another, each on the text the earlier ones left', async () => {
    const ops = await planCustomization([
      { kind: 'file', path: '/etc/app.conf', content: 'port=1\nhost=a\n' },
      { kind: 'regexp', path: '/etc/app.conf', pattern: '^port=.*$', replacement: 'port=2' },
      { kind: 'regexp', path: '/etc/app.conf', pattern: 'port=2', replacement: 'port=3 # {{ node.name }}' },
    ], base, view(debian));
    expect(ops.filter((o) => o.op === 'write' && o.path === '/etc/app.conf').at(-1)).toMatchObject({ content: 'port=3 # ' + base.node.name + '\nhost=a\n' });
  });

  it('rebuilds the initramfs with dracut when the image has no update-initramfs, and not when told', async () => {
    const ops = await planCustomization([], base, view({ '/usr/bin/dracut': null }));
    expect(ops.at(-1)).toMatchObject({ op: 'chroot', argv: ['/usr/bin/dracut', '--force', '--regenerate-all'] });
    const none = await planCustomization([], { ...base, initramfs: false }, view(debian));
    expect(none.some((o) => o.op === 'chroot')).toBe(false);
  });
});

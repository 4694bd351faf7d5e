/** The pure parts of `ferry update` (server/ssh/update.ts, server/store/tree-cache.ts). */
import { describe, expect, it } from 'vitest';
import { changeLines, customizedFiles, literalPattern, parseRsyncStats, rsyncArgv, type CustomizeOp } from '../../server/ssh/update.js';
import { treeEntryName } from '../../server/store/tree-cache.js';

describe('customizedFiles', () => {
  const ops: CustomizeOp[] = [
    { op: 'write', path: '/etc/fstab', content: 'x', why: 'fstab from the disk layout' },
    { op: 'write', path: '/etc/machine-id', content: '0'.repeat(32) + '\n', mode: 0o444, why: 'fresh machine-id' },
    { op: 'remove', path: '/etc/ssh/ssh_host_rsa_key', why: 'old host key' },
    { op: 'write', path: '/etc/systemd/system/ferry-ssh-hostkeys.service', content: 'u', why: 'make SSH host keys on first boot' },
    { op: 'symlink', path: '/etc/systemd/system/multi-user.target.wants/ferry-ssh-hostkeys.service', target: '/etc/systemd/system/ferry-ssh-hostkeys.service', why: 'enable' },
    { op: 'write', path: '/etc/hostname', content: 'web01\n', mode: 0o644, why: 'hostname' },
    { op: 'write', path: '/etc/motd', content: 'first\n', why: 'file /etc/motd' },
    { op: 'write', path: '/etc/motd', content: 'bWFnaWMK', encoding: 'base64', mode: 0o600, why: 'regexp in /etc/motd' },
    { op: 'mkdir', path: '/root/.ssh', mode: 0o700, uid: 0, gid: 0, why: '~root/.ssh' },
    { op: 'write', path: '/root/.ssh/authorized_keys', content: 'k\n', why: 'authorized keys of root' },
    { op: 'symlink', path: '/etc/systemd/system/multi-user.target.wants/systemd-networkd.service', target: '/lib/systemd/system/systemd-networkd.service', why: 'enable systemd-networkd' },
    { op: 'chroot', argv: ['/bin/sh', '/tmp/ferry-customize-1'], why: 'script 1' },
  ];
  const r = customizedFiles(ops);

  it('keeps the node identity out, the last write of a path wins, in path order', () => {
    expect(r.files.map((f) => [f.path, f.kind])).toEqual([
      ['/etc/hostname', 'file'],
      ['/etc/motd', 'file'],
      ['/etc/systemd/system/multi-user.target.wants/systemd-networkd.service', 'symlink'],
    ]);
    const motd = r.files.find((f) => f.path === '/etc/motd')!;
    expect(motd.content!.toString()).toBe('magic\n');
    expect(motd.mode).toBe(0o600);
    expect(r.files[0]).toMatchObject({ mode: 0o644, uid: 0, gid: 0 });
  });

  it('says what it leaves alone: files under /root and /home, scripts', () => {
    expect(r.skipped.map((s) => s.what)).toEqual(['/root/.ssh', '/root/.ssh/authorized_keys', '/bin/sh /tmp/ferry-customize-1']);
    expect(r.skipped[2].why).toMatch(/not run/);
  });
});

describe('rsync plumbing', () => {
  it('patterns match one path literally', () => {
    expect(literalPattern('/etc/a*b?[c]\\d')).toBe('/etc/a\\*b\\?\\[c]\\\\d');
    expect(literalPattern('/etc/hostname')).toBe('/etc/hostname');
  });

  it('the main sync deletes; the customized files go by list without touching their parent directories', () => {
    const main = rsyncArgv({ src: '/c/tree', node: 'web01', root: '/', rsh: 'R', excludes: ['/home/'], dryRun: false, stats: true });
    expect(main).toEqual(['rsync', '-aHAX', '--numeric-ids', '--delete', '--itemize-changes', '--out-format=%i %n%L', '--stats', '--exclude=/home/', '-e', 'R', '/c/tree/', 'web01:/']);
    const files = rsyncArgv({ src: '/w/files', node: 'web01', root: '/srv/x', rsh: 'R', excludes: [], dryRun: false, filesFrom: '/w/list', chownRoot: true });
    expect(files).toContain('--files-from=/w/list');
    expect(files).toContain('--no-implied-dirs');
    expect(files).toContain('--chown=0:0');
    expect(files).not.toContain('--delete');
    expect(files.at(-1)).toBe('web01:/srv/x/');
  });

  it('reads rsync 3 --stats and the itemized changes', () => {
    const out = [
      '.d..t...... ./', '<f.st...... etc/app.conf', '<f+++++++++ usr/bin/new', '*deleting   usr/bin/old', 'cd+++++++++ opt/', '',
      'Number of files: 1,204 (reg: 1,100, dir: 104)', 'Number of created files: 2', 'Number of deleted files: 1', 'Number of regular files transferred: 2',
      'Total file size: 9,999 bytes', 'Total transferred file size: 1,234 bytes', 'Total bytes sent: 2,345', 'Total bytes received: 99',
    ].join('\n');
    expect(parseRsyncStats(out)).toEqual({ files: 1204, created: 2, deleted: 1, transferred: 2, transferredBytes: 1234, sentBytes: 2345 });
    expect(changeLines(out)).toEqual(['<f.st...... etc/app.conf', '<f+++++++++ usr/bin/new', '*deleting   usr/bin/old', 'cd+++++++++ opt/']);
    expect(parseRsyncStats('nothing')).toEqual({});
  });
});

describe('tree cache names', () => {
  it('only an image digest names an entry', () => {
    expect(treeEntryName('sha256:' + 'a'.repeat(64))).toBe('a'.repeat(64));
    for (const bad of ['sha256:../../etc', 'a'.repeat(64), 'sha256:' + 'A'.repeat(64)]) expect(() => treeEntryName(bad)).toThrow();
  });
});

describe('ssh-authorize-ferry on by default', () => {
  it('new images get the item once, unless --no-authorize-ferry', async () => {
    const { withAuthorizeFerryItem } = await import('../../server/ssh/authorize.js');
    expect(withAuthorizeFerryItem(undefined)).toEqual([{ kind: 'ssh-authorize-ferry' }]);
    expect(withAuthorizeFerryItem([{ kind: 'hostname' }])).toEqual([{ kind: 'hostname' }, { kind: 'ssh-authorize-ferry' }]);
    expect(withAuthorizeFerryItem([{ kind: 'ssh-authorize-ferry', user: 'admin' }])).toEqual([{ kind: 'ssh-authorize-ferry', user: 'admin' }]);
    expect(withAuthorizeFerryItem([{ kind: 'hostname' }], true)).toEqual([{ kind: 'hostname' }]);
  });

  it('an image without the user: a warning op instead of an error; errors stay for items that say so', async () => {
    const { planCustomization } = await import('../../installer/customize/plan.js');
    const { expandFerryKeyItems } = await import('../../server/ssh/authorize.js');
    const noRoot = { readText: (p: string) => (p === '/etc/passwd' ? 'daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n' : undefined), exists: () => false, list: () => [] };
    const c = { node: { name: 'n1', macs: [], properties: {} }, inputs: {}, machineId: '0'.repeat(32), initramfs: false };
    const items = expandFerryKeyItems([{ kind: 'ssh-authorize-ferry' }], 'ssh-ed25519 AAAAC3Nz ferry@server');
    const ops = await planCustomization(items, c, noRoot);
    const warn = ops.find((o) => o.op === 'warn');
    expect(warn).toMatchObject({ op: 'warn', code: 'FERRY_W_AUTHORIZE_NO_USER' });
    expect(ops.some((o) => o.op === 'write' && o.path.includes('authorized_keys'))).toBe(false);
    await expect(planCustomization([{ kind: 'authorized-keys', user: 'root', keys: ['ssh-ed25519 AAAA x'] }], c, noRoot)).rejects.toThrow(/does not exist/);
    // An update does not put it anywhere: it is listed as left alone.
    expect(customizedFiles(ops).skipped.some((s) => s.why.startsWith('FERRY_W_AUTHORIZE_NO_USER'))).toBe(true);
  });
});

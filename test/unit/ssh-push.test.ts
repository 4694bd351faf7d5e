import { describe, expect, it } from 'vitest';
import { parseMode, parseOwner, resolveDest, tempName } from '../../server/ssh/push.js';

describe('ferry push: pure argument checks', () => {
  it('parses octal modes and refuses others', () => {
    expect(parseMode('0644')).toBe(0o644);
    expect(parseMode('4755')).toBe(0o4755);
    expect(parseMode('600')).toBe(0o600);
    for (const m of ['999', '64', '0o644', '07777x', '']) expect(() => parseMode(m)).toThrow(/FERRY_E_PUSH_BAD_ARGUMENT|octal/);
  });
  it('parses owners as names or numeric ids', () => {
    expect(parseOwner('root:root')).toEqual({ user: 'root', group: 'root', uid: undefined, gid: undefined });
    expect(parseOwner('1000:100')).toEqual({ user: '1000', group: '100', uid: 1000, gid: 100 });
    expect(parseOwner('www-data')).toEqual({ user: 'www-data', group: undefined, uid: undefined, gid: undefined });
    for (const o of ['', ':root', 'a:b:c', 'root;rm', 'root:$(x)', '-r']) expect(() => parseOwner(o)).toThrow();
  });
  it('resolves DEST: absolute, no . or .., a trailing / takes the source name', () => {
    expect(resolveDest('/tmp/motd', '/etc/motd')).toBe('/etc/motd');
    expect(resolveDest('./a/motd', '/etc/')).toBe('/etc/motd');
    expect(resolveDest('x', '/etc//x')).toBe('/etc/x');
    for (const d of ['etc/motd', '/etc/../x', '/./x', '/a\0b']) expect(() => resolveDest('x', d)).toThrow();
  });
  it('puts the temporary name in DEST\'s directory, hidden', () => {
    expect(tempName('/etc/motd', 'abc')).toBe('/etc/.motd.ferry-push-abc');
    expect(tempName('/etc/motd')).toMatch(/^\/etc\/\.motd\.ferry-push-[0-9a-f]{12}$/);
  });
});

import { DEFAULT_UPDATE_EXCLUDES, rsyncArgv } from '../../server/ssh/update.js';

describe('ferry update --dry-run: the rsync command', () => {
  it('is rsync -aHAX --numeric-ids --delete with the excludes, the remote shell and the node as host', () => {
    const argv = rsyncArgv({ src: '/tmp/tree', node: 'web01', root: '/srv/x', rsh: "'node' 'ferry.mjs' 'ssh-pipe'", excludes: ['/home/', '/etc/ssh/ssh_host_*'], dryRun: true });
    expect(argv).toEqual(['rsync', '-aHAX', '--numeric-ids', '--delete', '--itemize-changes', '--out-format=%i %n%L', '--dry-run', '--exclude=/home/', '--exclude=/etc/ssh/ssh_host_*', '-e', "'node' 'ferry.mjs' 'ssh-pipe'", '/tmp/tree/', 'web01:/srv/x/']);
    expect(rsyncArgv({ src: '/t/', node: 'n', root: '/', rsh: 'r', excludes: [], dryRun: false }).slice(-2)).toEqual(['/t/', 'n:/']);
  });
  it('refuses a relative --root or one with ..', () => {
    for (const root of ['srv', '/srv/../etc']) expect(() => rsyncArgv({ src: '/t', node: 'n', root, rsh: 'r', excludes: [], dryRun: true })).toThrow(/FERRY_E_UPDATE_BAD_ROOT|absolute/);
  });
  it('the default excludes keep the node\'s own files: host keys, machine-id, logs, homes', () => {
    for (const p of ['/etc/ssh/ssh_host_*', '/etc/machine-id', '/var/log/', '/home/', '/root/', '/etc/fstab', '/proc/']) expect(DEFAULT_UPDATE_EXCLUDES).toContain(p);
  });
});

import { describe, expect, it } from 'vitest';
import { decodeIndex, encodeIndex, ImageTree, whiteoutOf, type IndexEntry } from '../../layers/path-index.js';

const f = (path: string): IndexEntry => ({ path, type: 'file' });
const dir = (path: string): IndexEntry => ({ path, type: 'dir' });

describe('layer index', () => {
  it('round-trips sorted, one entry per name, names normalised', () => {
    const b = encodeIndex([f('./etc/motd'), dir('./etc/'), f('./bin/sh'), { path: './etc/motd', type: 'symlink' }, dir('./')]);
    expect(decodeIndex(b)).toEqual([{ path: 'bin/sh', type: 'file' }, { path: 'etc', type: 'dir' }, { path: 'etc/motd', type: 'symlink' }]);
    expect(decodeIndex(encodeIndex([]))).toEqual([]);
  });

  it('classifies whiteouts as the extractor does', () => {
    expect(whiteoutOf(['etc', '.wh..wh..opq'])).toEqual({ kind: 'opaque', dir: 'etc' });
    expect(whiteoutOf(['etc', '.wh.motd'])).toEqual({ kind: 'hide', victim: 'etc/motd' });
    expect(whiteoutOf(['.wh.'])).toEqual({ kind: 'invalid' });
    expect(whiteoutOf(['etc', 'motd'])).toBeUndefined();
  });
});

describe('image tree', () => {
  const base = [dir('etc'), f('etc/motd'), f('etc/hosts'), dir('etc/ssh'), f('etc/ssh/sshd_config'), dir('usr'), f('usr/bin/true')];

  it('holds every path of one layer, parents made as directories', () => {
    const t = new ImageTree([base]);
    expect(t.kind('/etc/motd')).toBe('file');
    expect(t.kind('/usr/bin')).toBe('dir');
    expect(t.kind('/')).toBe('dir');
    expect(t.kind('/etc/nope')).toBeUndefined();
    expect(t.list('/etc')).toEqual(['hosts', 'motd', 'ssh']);
  });

  it('a later whiteout hides a file and a whole directory', () => {
    const t = new ImageTree([base, [f('etc/.wh.motd'), f('etc/.wh.ssh')]]);
    expect(t.kind('/etc/motd')).toBeUndefined();
    expect(t.kind('/etc/ssh')).toBeUndefined();
    expect(t.kind('/etc/ssh/sshd_config')).toBeUndefined();
    expect(t.kind('/etc/hosts')).toBe('file');
  });

  it('a whiteout never hides an entry of its own layer, whatever the order', () => {
    const t = new ImageTree([base, [f('etc/motd'), f('etc/.wh.motd')], [f('etc/.wh.hosts'), f('etc/hosts')]]);
    expect(t.kind('/etc/motd')).toBe('file');
    expect(t.kind('/etc/hosts')).toBe('file');
  });

  it('an opaque directory keeps only what its own layer put there', () => {
    const t = new ImageTree([base, [dir('etc'), f('etc/.wh..wh..opq'), f('etc/ssh/ssh_config')]]);
    expect(t.kind('/etc/motd')).toBeUndefined();
    expect(t.kind('/etc/ssh/sshd_config')).toBeUndefined();
    expect(t.kind('/etc/ssh')).toBe('dir');
    expect(t.kind('/etc/ssh/ssh_config')).toBe('file');
    expect(t.kind('/usr/bin/true')).toBe('file');
  });

  it('a path below a symbolic link cannot be told missing (merged /usr: /lib -> usr/lib)', () => {
    const t = new ImageTree([[{ path: 'lib', type: 'symlink' }, dir('usr'), dir('usr/lib'), f('usr/lib/os-release')]]);
    expect(t.kind('/lib/systemd/system/ssh.service')).toBe('symlink');
    expect(t.kind('/usr/lib/nope')).toBeUndefined();
  });

  it('a file replaces a directory and what it held; a whited-out path can come back later', () => {
    const t = new ImageTree([base, [f('etc/ssh')], [f('etc/.wh.hosts')], [f('etc/hosts')]]);
    expect(t.kind('/etc/ssh')).toBe('file');
    expect(t.kind('/etc/ssh/sshd_config')).toBeUndefined();
    expect(t.kind('/etc/hosts')).toBe('file');
  });
});

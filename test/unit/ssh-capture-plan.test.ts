/** The capture's remote tar command (pure) and the bounded fan-out of `ferry exec`. */
import { describe, expect, it } from 'vitest';
import { captureArgv, checkExclude, DEFAULT_EXCLUDES, parseExcludeList } from '../../server/ssh/capture.js';
import { boundedMap } from '../../common/bounded.js';
import { shellCommand } from '../../server/ssh/target.js';

describe('captureArgv', () => {
  it('keeps owners, xattrs, sparse files and one file system, with anchored excludes', () => {
    const argv = captureArgv('/', [...DEFAULT_EXCLUDES, '/var/cache/apt/*']);
    expect(argv.slice(0, 4)).toEqual(['tar', '--create', '--file=-', '--directory=/']);
    for (const o of ['--format=posix', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sparse', '--sparse-version=1.0', '--one-file-system', '--anchored']) expect(argv).toContain(o);
    expect(argv).toContain('--exclude=./proc/*');
    expect(argv).toContain('--exclude=./var/lib/ferry');
    expect(argv).toContain('--exclude=./var/cache/apt/*');
    // --anchored must come before the patterns it applies to, and the member list last.
    expect(argv.indexOf('--anchored')).toBeLessThan(argv.indexOf('--exclude=./proc/*'));
    expect(argv[argv.length - 1]).toBe('.');
  });
  it('quotes a root with spaces and quotes as one word for the remote shell', () => {
    const cmd = shellCommand(captureArgv("/srv/it's here", []));
    expect(cmd).toContain(`'--directory=/srv/it'\\''s here'`);
  });
  it('refuses a relative root and bad patterns', () => {
    expect(() => captureArgv('srv', [])).toThrowError(expect.objectContaining({ code: 'FERRY_E_CAPTURE_BAD_ROOT' }));
    for (const p of ['var/log', '/a/../etc', '/a\nb']) expect(() => checkExclude(p), p).toThrowError(expect.objectContaining({ code: 'FERRY_E_CAPTURE_BAD_EXCLUDE' }));
    expect(parseExcludeList('# cache\n/var/cache/*\n\n  /srv/scratch  \n')).toEqual(['/var/cache/*', '/srv/scratch']);
    expect(() => parseExcludeList('/ok\nrelative\n')).toThrowError(expect.objectContaining({ code: 'FERRY_E_CAPTURE_BAD_EXCLUDE' }));
  });
});

describe('boundedMap', () => {
  it('never runs more than the limit at once and keeps the order of the items', async () => {
    let running = 0;
    let peak = 0;
    const out = await boundedMap([...Array(20).keys()], 3, async (i) => {
      running++;
      peak = Math.max(peak, running);
      // Resolve in a scrambled order; a microtask chain, no timers.
      for (let k = 0; k < (i * 7) % 5; k++) await Promise.resolve();
      running--;
      return i * 2;
    });
    expect(peak).toBe(3);
    expect(out).toEqual([...Array(20).keys()].map((i) => i * 2));
    expect(await boundedMap([], 4, async () => 1)).toEqual([]);
  });
});

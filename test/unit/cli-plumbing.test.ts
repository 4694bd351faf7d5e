import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { dataDir, parse, parseSubcommand, readAdminToken, serverUrl, usageError } from '../../common/cli.js';

const NOWHERE = join(import.meta.dirname, 'no-such-data-dir');

describe('command plumbing (common/cli.ts)', () => {
  it('parses the common options with the command\'s own, and refuses unknown ones as FERRY_E_USAGE with the usage', () => {
    const { values, positionals } = parse(['--data', '/d', '--json', 'x', '--disk', 'a', '--disk', 'b'], { disk: { type: 'string', multiple: true } }, 'ferry t');
    expect(values).toMatchObject({ data: '/d', json: true, disk: ['a', 'b'] });
    expect(positionals).toEqual(['x']);
    expect(() => parse(['--nope'], {}, 'ferry t [--x]')).toThrow(expect.objectContaining({ code: 'FERRY_E_USAGE', message: expect.stringContaining('usage: ferry t [--x]') }));
    expect(() => parse(['extra'], {}, 'ferry t', { positionals: false })).toThrow(expect.objectContaining({ code: 'FERRY_E_USAGE' }));
    expect(usageError('bad', 'ferry t').message).toBe('bad\nusage: ferry t');
    expect(parseSubcommand(['add', '--json'], {}, 'u')).toEqual({ sub: 'add', values: { json: true }, positionals: [] });
  });

  it('takes --data, else $FERRY_DATA, else /var/lib/ferry', () => {
    const saved = process.env.FERRY_DATA;
    try {
      process.env.FERRY_DATA = '/env/dir';
      expect(dataDir({ data: '/given' })).toBe('/given');
      expect(dataDir({})).toBe('/env/dir');
      delete process.env.FERRY_DATA;
      expect(dataDir({})).toBe('/var/lib/ferry');
    } finally {
      if (saved === undefined) delete process.env.FERRY_DATA;
      else process.env.FERRY_DATA = saved;
    }
  });

  it('finds the server: --server (without trailing slashes), else the one recorded in the data directory, else says none is', () => {
    expect(serverUrl({ server: 'http://h:1//' })).toBe('http://h:1');
    expect(() => serverUrl({ data: NOWHERE })).toThrow(expect.objectContaining({ code: 'FERRY_E_SERVER_UNKNOWN', details: { dataDir: NOWHERE } }));
    expect(() => serverUrl({ data: NOWHERE }, { public: true, missing: (f) => usageError(`none in ${f}`, 'u') })).toThrow(`none in ${join(NOWHERE, 'server.json')}`);
  });

  it('takes the admin token given, else DATA/admin.token, else FERRY_E_NO_ADMIN_TOKEN with the caller\'s hint', () => {
    expect(readAdminToken(NOWHERE, { given: 'tok' })).toBe('tok');
    expect(() => readAdminToken(NOWHERE, { hint: 'give --admin-token' })).toThrow(expect.objectContaining({ code: 'FERRY_E_NO_ADMIN_TOKEN', hint: 'give --admin-token' }));
  });
});

import { describe, expect, it } from 'vitest';
import { parseSize, parseBytes, formatBytes, alignUp, alignDown, MiB } from '../../common/units.js';
import { isFerryError } from '../../common/errors.js';

describe('parseSize', () => {
  const cases: [string, string | undefined, ReturnType<typeof parseSize>][] = [
    ['500', 'MB', { kind: 'bytes', bytes: 500_000_000n }],
    ['500', 'MiB', { kind: 'bytes', bytes: 500n * MiB }],
    ['500', undefined, { kind: 'bytes', bytes: 500_000_000n }],
    ['2097152K', 'MB', { kind: 'bytes', bytes: 2n * 1024n ** 3n }],
    ['1.5GiB', 'MB', { kind: 'bytes', bytes: 1610612736n }],
    ['1.5GB', 'MB', { kind: 'bytes', bytes: 1_500_000_000n }],
    ['10 kB', 'MB', { kind: 'bytes', bytes: 10_000n }],
    ['4096', 'B', { kind: 'bytes', bytes: 4096n }],
    ['4096K', 'MB', { kind: 'bytes', bytes: 4096n * 1024n }],
    ['1T', 'MB', { kind: 'bytes', bytes: 1024n ** 4n }],
    ['2048s', 'MB', { kind: 'sectors', sectors: 2048n }],
    ['2048', 'sectors', { kind: 'sectors', sectors: 2048n }],
    ['25%', 'MB', { kind: 'percent', percent: 25 }],
    ['25', 'percent', { kind: 'percent', percent: 25 }],
    ['*', 'MB', { kind: 'fill' }],
    [' * ', 'MB', { kind: 'fill' }],
    ['0', 'MB', { kind: 'bytes', bytes: 0n }],
  ];
  it.each(cases)('%s (default %s)', (input, unit, want) => {
    expect(parseSize(input, unit)).toEqual(want);
  });

  it.each(['-1', 'abc', '12 parsecs', '101%', '1.5s', '', '1e6'])('rejects %j with FERRY_E_BAD_SIZE', (input) => {
    let err: unknown;
    try {
      parseSize(input, 'MB');
    } catch (e) {
      err = e;
    }
    expect(isFerryError(err, 'FERRY_E_BAD_SIZE')).toBe(true);
  });

  it('parseBytes refuses relative sizes', () => {
    expect(parseBytes('20GiB')).toBe(20n * 1024n ** 3n);
    expect(() => parseBytes('*')).toThrow(/absolute/);
    expect(() => parseBytes('50%')).toThrow(/absolute/);
  });
});

describe('helpers', () => {
  it('formats bytes for people', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(20n * 1024n ** 3n)).toBe('20.0 GiB');
  });
  it('aligns', () => {
    expect(alignUp(1n, MiB)).toBe(MiB);
    expect(alignUp(MiB, MiB)).toBe(MiB);
    expect(alignDown(MiB + 5n, MiB)).toBe(MiB);
  });
});

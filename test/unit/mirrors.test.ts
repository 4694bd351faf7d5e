/**
 * Per-subnet mirrors (`ferry serve --mirror URL[@CIDR]`, issue 13): what a node at an address is
 * told to try, in order, before the server; and the checks where the option enters. Also the
 * seeder's rate (`--torrent-seed-rate`, common/units.ts parseByteRate).
 */
import { describe, expect, it } from 'vitest';
import { mirrorsFor, parseMirrors } from '../../server/api/fanout-routes.js';
import { parseByteRate } from '../../common/units.js';

const M = parseMirrors([
  'http://rack1/blobs@10.1.0.0/16',
  'http://global-a/blobs',
  'http://rack2/blobs@10.2.0.0/16',
  'http://rack1b/blobs/@10.1.7.0/24',
  'http://v6/blobs@2001:db8:1::/48',
  'http://global-b/blobs',
]);

describe('mirrorsFor: the node subnet\'s mirrors first, then the global ones', () => {
  it('a node in a subnet gets its mirrors in the order given, then the global ones; other subnets are left out', () => {
    expect(mirrorsFor(M, '10.1.7.9')).toEqual(['http://rack1/blobs', 'http://rack1b/blobs', 'http://global-a/blobs', 'http://global-b/blobs']);
    expect(mirrorsFor(M, '10.1.8.9')).toEqual(['http://rack1/blobs', 'http://global-a/blobs', 'http://global-b/blobs']);
    expect(mirrorsFor(M, '10.2.0.1')).toEqual(['http://rack2/blobs', 'http://global-a/blobs', 'http://global-b/blobs']);
  });
  it('a node outside every subnet, or of unknown address, gets the global mirrors only', () => {
    expect(mirrorsFor(M, '192.0.2.5')).toEqual(['http://global-a/blobs', 'http://global-b/blobs']);
    expect(mirrorsFor(M, undefined)).toEqual(['http://global-a/blobs', 'http://global-b/blobs']);
    expect(mirrorsFor(M, 'not-an-address')).toEqual(['http://global-a/blobs', 'http://global-b/blobs']);
  });
  it('IPv4-mapped addresses (a dual-stack socket) count as IPv4; IPv6 subnets match IPv6 nodes', () => {
    expect(mirrorsFor(M, '::ffff:10.2.3.4')[0]).toBe('http://rack2/blobs');
    expect(mirrorsFor(M, '2001:db8:1:ff::7')[0]).toBe('http://v6/blobs');
    expect(mirrorsFor(M, '2001:db8:2::7')).toEqual(['http://global-a/blobs', 'http://global-b/blobs']);
  });
  it('no mirrors: nothing (the server alone)', () => {
    expect(mirrorsFor([], '10.1.0.1')).toEqual([]);
  });
});

describe('parseMirrors', () => {
  it('keeps the subnet as written and the URL without its trailing slash', () => {
    expect(parseMirrors(['http://m/b/@10.0.0.0/8', 'https://x/y'])).toEqual([
      { url: 'http://m/b', subnet: { cidr: '10.0.0.0/8', family: 'ipv4', net: '10.0.0.0', prefix: 8 } },
      { url: 'https://x/y' },
    ]);
  });
  it('refuses bad subnets and bad URLs, every problem at once', () => {
    let err: any;
    try {
      parseMirrors(['http://m/b@10.0.0.0/33', 'http://m/b@300.1.1.1/8', 'ftp://m/b@10.0.0.0/8', 'http://ok/b@2001:db8::/129']);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'FERRY_E_BAD_VALUE' });
    expect(err.details.problems).toHaveLength(4);
    expect(err.details.problems[0]).toMatch(/10\.0\.0\.0\/33.*not a subnet/);
    expect(err.details.problems[2]).toMatch(/not an http\(s\) URL/);
  });
});

describe('parseByteRate', () => {
  it('reads sizes per second by the unit parser', () => {
    expect(parseByteRate('6MiB', '--r')).toBe(6 * 1024 * 1024);
    expect(parseByteRate('6M', '--r')).toBe(6 * 1024 * 1024);
    expect(parseByteRate('50MB/s', '--r')).toBe(50_000_000);
    expect(parseByteRate('800K', '--r')).toBe(800 * 1024);
    expect(parseByteRate('2048', '--r')).toBe(2048);
  });
  it('refuses what is not a rate, or under 1 KiB/s', () => {
    expect(() => parseByteRate('fast', '--torrent-seed-rate')).toThrow(/--torrent-seed-rate "fast" is not a rate/);
    expect(() => parseByteRate('10', '--r')).toThrow(/outside/);
    expect(() => parseByteRate('50%', '--r')).toThrow(/not a rate/);
    expect(() => parseByteRate('1000GiB', '--r')).toThrow(/outside/);
  });
});

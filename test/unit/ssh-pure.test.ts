/**
 * The pure parts of Ferry's SSH work: node-set folding (range notation), collation of results
 * from many nodes, the [USER@]HOST[:PORT] parser and shell quoting, fingerprints (checked against
 * what OpenSSH's ssh-keygen -lf printed for the same key) and the host-key trust decision.
 */
import { describe, expect, it } from 'vitest';
import { foldNodeSet } from '../../common/nodeset.js';
import { collate, formatGroups, overallExit, type NodeResult } from '../../server/ssh/collate.js';
import { fingerprint, parseHostKey } from '../../server/ssh/keys.js';
import { parseTarget, shellCommand, shellQuote, formatAddress } from '../../server/ssh/target.js';
import { decideHostKey } from '../../server/ssh/trust.js';

describe('foldNodeSet', () => {
  it('folds padded ranges and singles', () => {
    const names = [...Array.from({ length: 12 }, (_, i) => `web${String(i + 1).padStart(2, '0')}`), 'web15'];
    expect(foldNodeSet(names.reverse())).toBe('web[01-12,15]');
  });
  it('keeps different prefixes and suffixes apart, sorted', () => {
    expect(foldNodeSet(['n2', 'db', 'n1', 'n3', 'rack1-n7.lab', 'rack1-n8.lab', 'x5'])).toBe('db,n[1-3],rack1-n[7-8].lab,x5');
  });
  it('a single name stays plain; duplicates count once', () => {
    expect(foldNodeSet(['web01'])).toBe('web01');
    expect(foldNodeSet(['a1', 'a1', 'a2'])).toBe('a[1-2]');
  });
  it('padding: 1 and 01 are different names, 09 runs into 10, unpadded 9 into 10', () => {
    expect(foldNodeSet(['n1', 'n01'])).toBe('n[1,01]');
    expect(foldNodeSet(['n08', 'n09', 'n10', 'n11'])).toBe('n[08-11]');
    expect(foldNodeSet(['n9', 'n10', 'n12'])).toBe('n[9-10,12]');
    expect(foldNodeSet(['n099', 'n100'])).toBe('n[099-100]');
    expect(foldNodeSet(['n09', 'n100'])).toBe('n[09,100]');
  });
  it('folds on the last run of digits only', () => {
    expect(foldNodeSet(['r1n1', 'r1n2', 'r2n1'])).toBe('r1n[1-2],r2n1');
  });
  it('empty input gives an empty set', () => {
    expect(foldNodeSet([])).toBe('');
  });
});

const ok = (node: string, stdout: string, code = 0): NodeResult => ({ node, outcome: { kind: 'exit', code }, stdout, stderr: '', durationMs: 5 });

describe('collate', () => {
  it('groups identical output and exit code, largest group first, errors and timeouts apart', () => {
    const results: NodeResult[] = [
      ok('n01', 'bookworm\n'),
      ok('n02', 'bookworm\n'),
      ok('n03', 'bookworm\n'),
      ok('n04', 'bullseye\n'),
      ok('n05', 'bookworm\n', 1),
      { node: 'n06', outcome: { kind: 'error', code: 'FERRY_E_SSH_UNREACHABLE', message: 'cannot reach 10.0.0.6' }, stdout: '', stderr: '', durationMs: 1 },
      { node: 'n07', outcome: { kind: 'error', code: 'FERRY_E_SSH_UNREACHABLE', message: 'cannot reach 10.0.0.7' }, stdout: '', stderr: '', durationMs: 1 },
      { node: 'n08', outcome: { kind: 'timeout', seconds: 5 }, stdout: '', stderr: '', durationMs: 5000 },
    ];
    const g = collate(results);
    expect(g.map((x) => x.nodeset)).toEqual(['n[01-03]', 'n[06-07]', 'n04', 'n05', 'n08']);
    const text = formatGroups(g);
    expect(text).toContain('n[01-03] (3)\n---------------\nbookworm\n');
    expect(text).toContain('n[06-07] (2)\n---------------\n[FERRY_E_SSH_UNREACHABLE: cannot reach 10.0.0.6]');
    expect(text).toContain('n05 (1)\n---------------\n[exit code 1]\nbookworm');
    expect(text).toContain('[timed out after 5 s]');
    expect(overallExit(results)).toBe(255);
    expect(overallExit(results.slice(0, 5))).toBe(1);
    expect(overallExit(results.slice(0, 3))).toBe(0);
  });
  it('stderr takes part in the comparison and is marked', () => {
    const a = { ...ok('a1', 'x\n'), stderr: 'warn\n' };
    const g = collate([a, ok('a2', 'x\n')]);
    expect(g).toHaveLength(2);
    expect(formatGroups(g)).toContain('stderr: warn');
  });
});

describe('parseTarget', () => {
  it('reads user, host and port', () => {
    expect(parseTarget('admin@golden.lab:2222')).toEqual({ user: 'admin', host: 'golden.lab', port: 2222 });
    expect(parseTarget('10.1.2.3')).toEqual({ user: 'root', host: '10.1.2.3', port: 22 });
    expect(parseTarget('[fd00::5]:2200')).toEqual({ user: 'root', host: 'fd00::5', port: 2200 });
    expect(formatAddress({ host: 'fd00::5', port: 22 })).toBe('[fd00::5]');
    expect(formatAddress({ host: 'h', port: 2222 })).toBe('h:2222');
  });
  it('refuses what is not a target, with a stable code', () => {
    for (const bad of ['', 'host:0', 'host:70000', 'host:x', 'fd00::5', '[fd00::5', 'a b', '-oProxyCommand=x', 'us er@h', 'h;rm']) {
      expect(() => parseTarget(bad), bad).toThrowError(expect.objectContaining({ code: 'FERRY_E_SSH_BAD_TARGET' }));
    }
    expect(() => parseTarget('root@h', 'address', { allowUser: false })).toThrowError(expect.objectContaining({ code: 'FERRY_E_SSH_BAD_TARGET' }));
  });
});

describe('shell quoting', () => {
  it('keeps plain words and quotes everything else so no name becomes syntax', () => {
    expect(shellQuote('--exclude=./proc/*')).toBe("'--exclude=./proc/*'");
    expect(shellQuote('/srv/root')).toBe('/srv/root');
    expect(shellQuote("it's; rm -rf /")).toBe(`'it'\\''s; rm -rf /'`);
    expect(shellCommand(['tar', '-C', '/a b', '.'])).toBe("tar -C '/a b' .");
  });
});

// Made with `ssh-keygen -t ed25519`; `ssh-keygen -lf` printed the fingerprint below.
const PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILWC1S2rn7UDhYm2iDFFB9a7WuVc5h44T7OHV6RSTslQ test';
const FP = 'SHA256:5uD1xeiW8qfI3/ZwAtREMi1UeYOghZQaDNdxKCV1Ork';

describe('fingerprints', () => {
  it("match OpenSSH's", () => {
    expect(fingerprint(Buffer.from(PUB.split(' ')[1], 'base64'))).toBe(FP);
    expect(parseHostKey(PUB)).toBe(FP);
    expect(parseHostKey(` ${FP} `)).toBe(FP);
  });
  it('refuses other text', () => {
    for (const bad of ['SHA256:short', 'MD5:aa:bb', 'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAILWC1S2rn7UDhYm2iDFFB9a7WuVc5h44T7OHV6RSTslQ', '']) {
      expect(() => parseHostKey(bad), bad).toThrowError(expect.objectContaining({ code: 'FERRY_E_SSH_BAD_HOST_KEY' }));
    }
  });
});

describe('decideHostKey', () => {
  const other = 'SHA256:' + 'A'.repeat(43);
  it('accepts the recorded key and refuses any other, even with accept-new', () => {
    expect(decideHostKey('n1', FP, { recorded: [FP], given: [], acceptNew: false })).toEqual({ ok: true, record: false });
    const d = decideHostKey('n1', other, { recorded: [FP], given: [], acceptNew: true });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error.code).toBe('FERRY_E_SSH_HOST_KEY_MISMATCH');
  });
  it('an unknown key is refused unless given or accept-new; both record it', () => {
    const d = decideHostKey('h', FP, { recorded: [], given: [], acceptNew: false });
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.error.code).toBe('FERRY_E_SSH_HOST_KEY_UNKNOWN');
      expect(d.error.details.presented).toBe(FP);
    }
    expect(decideHostKey('h', FP, { recorded: [], given: [FP], acceptNew: false })).toEqual({ ok: true, record: true, source: 'operator' });
    expect(decideHostKey('h', FP, { recorded: [], given: [], acceptNew: true })).toEqual({ ok: true, record: true, source: 'accept-new' });
    const g = decideHostKey('h', other, { recorded: [], given: [FP], acceptNew: true });
    expect(g.ok).toBe(false);
    if (!g.ok) expect(g.error.code).toBe('FERRY_E_SSH_HOST_KEY_MISMATCH');
  });
});

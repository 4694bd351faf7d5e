import { describe, expect, it } from 'vitest';
import { parseRange } from '../../../server/api/files.js';
import { parseTtl } from '../../../server/db/deployments.js';
import { validateCustomizations, validateEvents, validateResult } from '../../../common/schema/validate.js';
import { normaliseMac, parsePairs } from '../../../server/db/inventory.js';
import { canonicalJson, parseRef } from '../../../server/store/images.js';
import { parseListen } from '../../../server/index.js';
import { MonitorState, formatEta, rowCells } from '../../../server/monitor.js';
import { unsafeLayerName } from '../../../server/store/layers.js';

describe('parseRange', () => {
  const cases: [string | undefined, number, ReturnType<typeof parseRange>][] = [
    [undefined, 100, { kind: 'full' }],
    ['bytes=0-9', 100, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=90-', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-10', 100, { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-1000', 100, { kind: 'partial', start: 0, end: 99 }],
    ['bytes=50-5000', 100, { kind: 'partial', start: 50, end: 99 }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=5-1', 100, { kind: 'full' }],
    ['bytes=0-1,3-4', 100, { kind: 'full' }],
    ['lines=1-2', 100, { kind: 'full' }],
  ];
  it.each(cases)('%s of %d', (h, size, want) => expect(parseRange(h, size)).toEqual(want));
});

describe('request validation', () => {
  it('accepts good events and names every bad field', () => {
    expect(validateEvents({ events: [{ phase: 'layers', state: 'progress', bytes: 1, total: 2, object: 'x', ts: '2026-01-01T00:00:00Z' }] })).toHaveLength(1);
    const err = (() => {
      try {
        validateEvents({ events: [{ phase: 'x', state: 'start', details: [] }, { state: 'end', bytes: NaN }] });
      } catch (e) {
        return e as any;
      }
    })();
    expect(err.code).toBe('FERRY_E_BAD_REQUEST');
    expect(err.problems.map((p: any) => p.path)).toEqual(['$.events[0].details', '$.events[1].phase', '$.events[1].bytes']);
    expect(() => validateEvents([])).toThrow(/must be an object/);
  });
  it('results', () => {
    expect(validateResult({ status: 'success' })).toEqual({ status: 'success' });
    expect(() => validateResult({ status: 'failed' })).toThrow(/\$\.error/);
    expect(() => validateResult({ status: 'maybe' })).toThrow(/\$\.status/);
  });
  it('customization items', () => {
    expect(validateCustomizations([{ kind: 'hostname' }, { kind: 'file', path: '/etc/motd', content: 'hi', mode: 420 }])).toHaveLength(2);
    let e: any;
    try {
      validateCustomizations([{ kind: 'file', path: 'etc/motd' }, { kind: 'regexp', path: '/x', pattern: '(', replacement: '' }, { kind: 'nope' }, 3]);
    } catch (x) {
      e = x;
    }
    expect(e.code).toBe('FERRY_E_BAD_CUSTOMIZATIONS');
    expect(e.problems.map((p: any) => p.path)).toEqual(['$[0].content', '$[0].path', '$[1].pattern', '$[2].kind', '$[3]']);
  });
  it('key=value pairs', () => {
    expect(parsePairs(['hostname=web1', 'network.address=10.0.0.5/24', 'x='], '--set')).toEqual({ hostname: 'web1', 'network.address': '10.0.0.5/24', x: '' });
    expect(() => parsePairs(['novalue', 'bad key=1'], '--set')).toThrow(/--set\[0\].*\n.*--set\[1\]/);
  });
});

describe('small parsers', () => {
  it('MACs', () => {
    expect(normaliseMac('52:54:00:AB:cd:01')).toBe('52:54:00:ab:cd:01');
    expect(normaliseMac('52-54-00-ab-cd-01')).toBe('52:54:00:ab:cd:01');
    expect(normaliseMac('525400abcd01')).toBe('52:54:00:ab:cd:01');
    expect(normaliseMac('5254.00ab.cd01')).toBe('52:54:00:ab:cd:01');
    for (const bad of ['', 'zz:zz:zz:zz:zz:zz', '52:54:00:ab:cd', '52:54:00:ab:cd:01:02', '../etc']) expect(normaliseMac(bad)).toBeUndefined();
  });
  it('image references and layer names', () => {
    expect(parseRef('debian')).toEqual({ name: 'debian', version: undefined });
    expect(parseRef('debian@12')).toEqual({ name: 'debian', version: 12 });
    expect(() => parseRef('../x')).toThrow(/not allowed/);
    expect(() => parseRef('a@b')).toThrow();
    expect(unsafeLayerName('/etc/passwd')).toMatch(/absolute/);
    expect(unsafeLayerName('a/../../b')).toMatch(/\.\./);
    expect(unsafeLayerName('./etc/..x')).toBeUndefined();
  });
  it('listen addresses and durations', () => {
    expect(parseListen('0.0.0.0:8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(() => parseListen('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseListen('x:99999')).toThrow(/HOST:PORT/);
    expect(parseTtl('6h')).toBe(6 * 3600_000);
    expect(parseTtl('90')).toBe(90_000);
    expect(() => parseTtl('0')).toThrow();
    expect(() => parseTtl('soon')).toThrow();
  });
  it('canonical JSON sorts keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }] })).toBe('{"a":[{"c":"x"}],"b":1}');
  });
});

describe('monitor rows', () => {
  it('compute percent, MB/s and ETA from progress events', () => {
    const m = new MonitorState();
    m.apply('snapshot', { deployments: [{ info: { id: 1, node: 'web1', image: 'base@1', status: 'running' }, events: [] }, { info: { id: 2, node: 'db1', image: 'base@1', status: 'armed' }, events: [] }] });
    const t = Date.parse('2026-01-01T00:00:00Z');
    const ev = (s: number, bytes: number) => ({ deployment: 1, node: 'web1', event: { phase: 'layers', state: 'progress', object: 'sha256:a', bytes, total: 100_000_000, ts: new Date(t + s * 1000).toISOString() } });
    m.apply('progress', ev(0, 0));
    m.apply('progress', ev(1, 10_000_000));
    m.apply('progress', ev(2, 20_000_000));
    const [db, web] = m.rows();
    expect(db).toMatchObject({ node: 'db1', state: 'armed', stage: '-' });
    expect(web.percent).toBe(20);
    expect(web.mbps).toBeCloseTo(10, 6);
    expect(web.etaSeconds).toBeCloseTo(8, 6);
    expect(rowCells(web, t + 5000)).toEqual({ id: '1', node: 'web1', via: 'http', stage: 'layers', percent: '20%', 'mb/s': '10.0', eta: '8s', seen: '3s', state: 'running', error: '' });
    // A new phase starts its own figures.
    m.apply('progress', { deployment: 1, node: 'web1', event: { phase: 'customize', state: 'start', ts: new Date(t + 3000).toISOString() } });
    const after = m.rows()[1];
    expect(after.stage).toBe('customize');
    expect(after.percent).toBeUndefined();
    expect(after.mbps).toBeUndefined();
    m.apply('progress', { deployment: 1, node: 'web1', event: { phase: 'customize', state: 'error', code: 'FERRY_E_X', ts: new Date(t + 4000).toISOString() } });
    expect(m.rows()[1].state).toBe('error');
    m.apply('deployment', { id: 1, node: 'web1', image: 'base@1', status: 'failed' });
    expect(m.rows()[1].state).toBe('failed');
    expect(formatEta(3725)).toBe('1h02m');
    expect(formatEta(65)).toBe('1m05s');
  });

  it('show the transport, and multicast>http once a layer fell back to HTTP', () => {
    const m = new MonitorState();
    const transport = { kind: 'multicast', multicast: { maxWaitS: 60, maxBitrate: '600m' } };
    m.apply('snapshot', { deployments: [{ info: { id: 7, node: 'n1', image: 'base@1', status: 'running', transport }, events: [] }] });
    expect(rowCells(m.rows()[0]).via).toBe('multicast');
    // Another warning (an HTTP resume) changes nothing; the fallback warning does.
    m.apply('progress', { deployment: 7, node: 'n1', event: { phase: 'layers', state: 'warning', object: 'sha256:a', message: 'connection lost', details: { received: 5 } } });
    expect(m.rows()[0].transport).toBe('multicast');
    m.apply('progress', { deployment: 7, node: 'n1', event: { phase: 'layers', state: 'warning', object: 'sha256:a', message: 'multicast: late; falling back to http', details: { transport: 'multicast', fallback: 'http' } } });
    expect(m.rows()[0].transport).toBe('multicast>http');
  });
});

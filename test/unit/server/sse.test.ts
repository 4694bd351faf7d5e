import { describe, expect, it } from 'vitest';
import { frame, SseParser } from '../../../cli/monitor.js';

describe('server-sent events parser', () => {
  it('splits events across chunk boundaries, joins data lines, skips comments', () => {
    const got: [string, string][] = [];
    const p = new SseParser((t, d) => got.push([t, d]));
    const stream = 'retry: 2000\n\nid: 1\nevent: snapshot\ndata: {"a":1}\n\n: heartbeat\n\nid: 2\nevent: progress\ndata: line1\ndata: line2\n\ndata: plain\n\n';
    for (let i = 0; i < stream.length; i += 7) p.push(stream.slice(i, i + 7));
    expect(got).toEqual([
      ['snapshot', '{"a":1}'],
      ['progress', 'line1\nline2'],
      ['message', 'plain'],
    ]);
  });
});

describe('ferry monitor screen updates', () => {
  const a = 'NODE  STATE\nweb1  running\n';
  const b = 'NODE  STATE\nweb1  success\n';
  it('on a terminal, redraws the table in place over the previous one and keeps what is above it', () => {
    expect(frame(undefined, a, true)).toBe(a);
    // Back to the start of the line, up over the two lines of the old table, clear below.
    expect(frame(a, b, true)).toBe(`\r\x1b[2A\x1b[J${b}`);
    expect(frame(b, b, true)).toBe('');
  });
  it('in a log or a pipe, writes a table again only when it changed, and never control sequences', () => {
    expect(frame(undefined, a, false)).toBe(a);
    expect(frame(a, a, false)).toBe('');
    expect(frame(a, b, false)).toBe(b);
  });
});

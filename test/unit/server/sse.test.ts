import { describe, expect, it } from 'vitest';
import { SseParser } from '../../../cli/monitor.js';

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

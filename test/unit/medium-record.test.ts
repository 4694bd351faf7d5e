/** The offline install record (installer/medium-record.ts): which events it keeps, and the first-boot report's text. */
import { describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../../common/progress.js';
import { MEDIA_RECORD_ROUTE, REPORT_HEADER_FILE } from '../../common/medium.js';
import { recordEvents, reportScript, reportUnit } from '../../installer/medium-record.js';

const ev = (state: ProgressEvent['state'], i: number): ProgressEvent => ({ phase: 'layers', state, message: `${state} ${i}` });

describe('recordEvents', () => {
  it('keeps every start, end, error, info and warning, then the newest progress events, in order, never heartbeats', () => {
    const events = [ev('start', 0), ...Array.from({ length: 10 }, (_, i) => ev('progress', i + 1)), ev('heartbeat', 11), ev('warning', 12), ev('end', 13)];
    const kept = recordEvents(events, 6);
    expect(kept.map((e) => e.message)).toEqual(['start 0', 'progress 8', 'progress 9', 'progress 10', 'warning 12', 'end 13']);
    expect(recordEvents(events, 100).filter((e) => e.state === 'heartbeat')).toHaveLength(0);
    expect(recordEvents(events, 100)).toHaveLength(13);
  });

  it('is bounded even when milestones alone exceed the bound', () => {
    expect(recordEvents(Array.from({ length: 50 }, (_, i) => ev('info', i)), 20)).toHaveLength(20);
  });
});

describe('the first-boot report', () => {
  it('posts with the token from a 0600 file (never on a command line) and removes itself only after a success', () => {
    const s = reportScript();
    expect(s).toContain(`-H @"$hdr"`);
    expect(s).toContain(REPORT_HEADER_FILE);
    expect(s).toContain(MEDIA_RECORD_ROUTE);
    expect(s.indexOf('|| exit 1')).toBeLessThan(s.indexOf('rm -f'));
    expect(reportUnit()).toMatch(/Type=oneshot[\s\S]*Restart=on-failure[\s\S]*WantedBy=multi-user.target/);
  });
});

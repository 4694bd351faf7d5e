/** The console's pure views (server/ui/views.ts): stage timelines and which node runs which image. */
import { describe, expect, it } from 'vitest';
import type { DeploymentInfo } from '../../server/db/deployments.js';
import { runningImages, stageTimeline } from '../../server/ui/views.js';

const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe('stageTimeline', () => {
  it('gives each stage its start, end, duration and last state; objects and progress do not move them', () => {
    const spans = stageTimeline([
      { phase: 'config', state: 'start', ts: t(0) },
      { phase: 'config', state: 'end', ts: t(1) },
      { phase: 'layers', state: 'start', ts: t(1) },
      { phase: 'layers', state: 'start', ts: t(2), object: 'sha256:a' },
      { phase: 'layers', state: 'progress', ts: t(3), object: 'sha256:a' },
      { phase: 'layers', state: 'end', ts: t(5), object: 'sha256:a' },
      { phase: 'layers', state: 'heartbeat', ts: t(6) },
      { phase: 'layers', state: 'error', ts: t(7) },
      { phase: 'customize', state: 'start', ts: t(8) },
    ]);
    expect(spans).toEqual([
      { phase: 'config', state: 'end', start: t(0), end: t(1), seconds: 1, events: 2 },
      { phase: 'layers', state: 'error', start: t(1), end: t(7), seconds: 6, events: 6 },
      { phase: 'customize', state: 'start', start: t(8), events: 1 },
    ]);
  });
});

describe('runningImages', () => {
  const dep = (id: number, node: string, image: string, status: string, startedAt?: string): DeploymentInfo =>
    ({ id, node, image, status, startedAt, endedAt: startedAt, createdAt: t(id) }) as unknown as DeploymentInfo;

  it('is the last successful deployment of each node, marked when a later one started and did not succeed', () => {
    const m = runningImages([
      dep(4, 'b', 'web@2', 'failed', t(4)),
      dep(1, 'a', 'web@1', 'success', t(1)),
      dep(2, 'b', 'web@1', 'success', t(2)),
      dep(3, 'a', 'web@2', 'success', t(3)),
      dep(5, 'a', 'web@3', 'cancelled'),
      dep(6, 'c', 'web@1', 'failed', t(6)),
    ]);
    expect(m.get('a')).toEqual({ node: 'a', image: 'web@2', deployment: 3, endedAt: t(3) });
    expect(m.get('b')).toEqual({ node: 'b', image: 'web@1', deployment: 2, endedAt: t(2), overwrittenBy: { id: 4, status: 'failed' } });
    expect(m.has('c')).toBe(false);
  });
});

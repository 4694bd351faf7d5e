/**
 * What the console's pages compute from the admin API's answers, as pure functions (no DOM), so
 * the unit tier checks them: a deployment's stages with their durations, and which image version
 * each node runs.
 */
import type { DeploymentInfo, StoredEvent } from '../db/deployments.js';

export interface StageSpan {
  phase: string;
  /** The stage's last state: start, end, error (progress and heartbeats do not change it). */
  state: string;
  start?: string;
  end?: string;
  /** end - start, when both are known. */
  seconds?: number;
  /** Events of this stage, its objects' included. */
  events: number;
}

/** The stages of a deployment in the order they started, from its events. */
export function stageTimeline(events: Pick<StoredEvent, 'phase' | 'state' | 'ts' | 'object'>[]): StageSpan[] {
  const spans = new Map<string, StageSpan>();
  for (const e of events) {
    const s = spans.get(e.phase) ?? { phase: e.phase, state: e.state, events: 0 };
    s.events++;
    spans.set(e.phase, s);
    // An object's start and end (one layer, one partition) are not the stage's.
    if (e.object) continue;
    if (e.state === 'start' && !s.start) s.start = e.ts;
    if (e.state === 'end' || e.state === 'error') s.end = e.ts;
    if (e.state !== 'heartbeat' && e.state !== 'progress') s.state = e.state;
  }
  for (const s of spans.values()) if (s.start && s.end) s.seconds = Math.max(0, (Date.parse(s.end) - Date.parse(s.start)) / 1000);
  return [...spans.values()];
}

export interface RunningImage {
  node: string;
  /** NAME@VERSION of the last deployment that succeeded. */
  image: string;
  deployment: number;
  endedAt?: string;
  /**
   * A later deployment that started writing and did not succeed (failed, aborted, lost, or still
   * running): the disk may no longer hold that image.
   */
  overwrittenBy?: { id: number; status: string };
}

/** For each node, the image version its last successful deployment installed. */
export function runningImages(deployments: DeploymentInfo[]): Map<string, RunningImage> {
  const out = new Map<string, RunningImage>();
  const sorted = [...deployments].sort((a, b) => a.id - b.id);
  for (const d of sorted) {
    if (d.status === 'success') out.set(d.node, { node: d.node, image: d.image, deployment: d.id, endedAt: d.endedAt });
    else if (d.startedAt && out.has(d.node)) out.get(d.node)!.overwrittenBy = { id: d.id, status: d.status };
  }
  return out;
}

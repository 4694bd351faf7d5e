/**
 * The live state every page may draw: the CLI monitor's rows (server/monitor-state.ts) plus each
 * deployment's record (for its error), fed by the admin event stream. The page showing it sets
 * `onRedraw`; redraws are batched to one per animation frame.
 */
import type { DeploymentInfo } from '../../db/deployments.js';
import { MonitorState } from '../../monitor-state.js';
import { ADMIN } from './api.js';

export const monitor = new MonitorState();
export const infos = new Map<number, DeploymentInfo>();
export const live = { eventsSeen: 0 };
let stream: EventSource | undefined;
let redraw: (() => void) | undefined;
let pending = false;

/** The current page's redraw (undefined: the page draws nothing live). */
export function onRedraw(f: (() => void) | undefined): void {
  redraw = f;
}

export function hasRedraw(): boolean {
  return redraw !== undefined;
}

export function schedule(): void {
  if (pending || !redraw) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    redraw?.();
  });
}

/** Open the event stream; `closed` is called when the browser gives it up (a 401). */
export function connect(closed: () => void): void {
  stream?.close();
  stream = new EventSource(`${ADMIN}/events`);
  const on = (type: string) =>
    stream!.addEventListener(type, (m) => {
      const data = JSON.parse((m as MessageEvent).data);
      live.eventsSeen++;
      monitor.apply(type, data);
      if (type === 'snapshot') for (const d of data.deployments as { info: DeploymentInfo }[]) infos.set(d.info.id, d.info);
      if (type === 'deployment') infos.set(data.id, data);
      schedule();
    });
  ['snapshot', 'deployment', 'progress'].forEach(on);
  stream.onerror = () => {
    // The browser reconnects by itself (retry: 2000); a 401 closes the stream for good.
    if (stream?.readyState === EventSource.CLOSED) closed();
  };
}

export function disconnect(): void {
  stream?.close();
  redraw = undefined;
}

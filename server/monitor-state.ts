/**
 * The monitor's pure state machine (a `snapshot` on connect, then `progress` and `deployment`
 * messages in, one row per deployment out): what `ferry monitor` prints and what the web
 * console (server/ui/client) draws. Only type imports, so the browser bundle carries no server code.
 */
import type { ProgressEvent } from '../common/progress.js';
import type { DeploymentInfo, StoredEvent } from './db/deployments.js';

export interface MonitorSnapshot {
  deployments: { info: DeploymentInfo; events: StoredEvent[] }[];
}

export interface MonitorRow {
  id: number;
  node: string;
  image: string;
  /** The deployment's transport; "multicast>http" once a layer fell back to HTTP. */
  transport: string;
  stage: string;
  object?: string;
  percent?: number;
  mbps?: number;
  etaSeconds?: number;
  state: string;
  message?: string;
  updatedAt?: string;
  /** When the server last heard from the installer (any event, heartbeats included; the server's clock). */
  seenAt?: string;
  /** A failed or aborted deployment's error: `CODE: message`. */
  error?: string;
}

interface Sample {
  t: number;
  bytes: number;
}

type TrackInfo = Pick<DeploymentInfo, 'id' | 'node' | 'image' | 'status'> & { transport?: DeploymentInfo['transport']; error?: DeploymentInfo['error'] };

interface Track {
  info: TrackInfo;
  /** Layers (digests) that fell back to HTTP. */
  fellBack: Set<string>;
  stage: string;
  object?: string;
  bytes?: number;
  total?: number;
  samples: Sample[];
  message?: string;
  lastState?: string;
  updatedAt?: string;
  seenAt?: string;
}

const WINDOW_MS = 5000;

export class MonitorState {
  private tracks = new Map<number, Track>();

  applySnapshot(s: MonitorSnapshot): void {
    this.tracks.clear();
    for (const d of s.deployments) {
      this.deployment(d.info);
      for (const e of d.events) this.progress(d.info.id, d.info.node, e);
      // Replaying its past events must not make a lost (or armed) deployment look running: the status is the server's.
      this.tracks.get(d.info.id)!.info.status = d.info.status;
    }
  }

  deployment(info: TrackInfo & Pick<DeploymentInfo, 'stage'>): void {
    const t = this.tracks.get(info.id);
    if (t) t.info = { ...t.info, ...info };
    else this.tracks.set(info.id, { info: { ...info }, stage: info.stage ?? '', samples: [], fellBack: new Set() });
  }

  progress(id: number, node: string, e: ProgressEvent): void {
    let t = this.tracks.get(id);
    if (!t) {
      t = { info: { id, node, image: '', status: 'running' }, stage: '', samples: [], fellBack: new Set() };
      this.tracks.set(id, t);
    }
    // The server makes a lost deployment running again when its installer is heard from.
    if (t.info.status === 'lost') t.info.status = 'running';
    t.seenAt = (e as Partial<StoredEvent>).receivedAt ?? e.ts ?? t.seenAt;
    if (e.state === 'heartbeat') {
      t.updatedAt = e.ts;
      return;
    }
    // The installer's fallback warning (installer/transport/index.ts): {transport, fallback: 'http'}.
    if (e.state === 'warning' && e.details?.fallback === 'http' && e.object) t.fellBack.add(e.object);
    const ts = e.ts ? Date.parse(e.ts) : Date.now();
    if (e.phase !== t.stage || (e.object !== undefined && e.object !== t.object)) {
      t.samples = [];
      t.bytes = undefined;
      t.total = undefined;
    }
    t.stage = e.phase;
    if (e.object !== undefined) t.object = e.object;
    if (e.bytes !== undefined) {
      t.bytes = e.bytes;
      t.samples.push({ t: ts, bytes: e.bytes });
      while (t.samples.length > 2 && t.samples[t.samples.length - 1].t - t.samples[0].t > WINDOW_MS) t.samples.shift();
    }
    if (e.total !== undefined) t.total = e.total;
    if (e.message !== undefined) t.message = e.message;
    t.lastState = e.state;
    t.updatedAt = e.ts;
    if (t.info.status === 'armed') t.info.status = 'running';
  }

  /** Apply one message of the event stream. */
  apply(type: string, data: any): void {
    if (type === 'snapshot') this.applySnapshot(data as MonitorSnapshot);
    else if (type === 'deployment') this.deployment(data as DeploymentInfo);
    else if (type === 'progress') this.progress(data.deployment, data.node, data.event as ProgressEvent);
  }

  /** One row per deployment, superseded ones left out (a newer deployment of the node replaced them). */
  rows(): MonitorRow[] {
    return [...this.tracks.values()]
      .filter((t) => t.info.status !== 'superseded')
      .sort((a, b) => a.info.node.localeCompare(b.info.node) || a.info.id - b.info.id)
      .map((t) => {
        const kind = t.info.transport?.kind ?? 'http';
        const transport = t.fellBack.size && kind !== 'http' ? `${kind}>http` : kind;
        const row: MonitorRow = { id: t.info.id, node: t.info.node, image: t.info.image, transport, stage: t.stage || '-', state: t.info.status, object: t.object, message: t.message, updatedAt: t.updatedAt, seenAt: t.seenAt };
        if (t.bytes !== undefined && t.total) row.percent = Math.min(100, (100 * t.bytes) / t.total);
        const s = t.samples;
        if (s.length >= 2 && s[s.length - 1].t > s[0].t) {
          const rate = ((s[s.length - 1].bytes - s[0].bytes) * 1000) / (s[s.length - 1].t - s[0].t);
          if (rate > 0) {
            row.mbps = rate / 1e6;
            if (t.total !== undefined && t.bytes !== undefined) row.etaSeconds = Math.max(0, (t.total - t.bytes) / rate);
          }
        }
        if (t.lastState === 'error' && row.state === 'running') row.state = 'error';
        if (t.info.error && row.state !== 'success') row.error = `${t.info.error.code}: ${t.info.error.message}`;
        return row;
      });
  }
}

export function formatEta(s?: number): string {
  if (s === undefined || !Number.isFinite(s)) return '';
  const r = Math.round(s);
  const h = Math.floor(r / 3600), m = Math.floor((r % 3600) / 60), sec = r % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** How long ago `iso` was, short (`4s`, `2m05s`, `1h02m`); empty when unknown. */
export function formatAge(iso: string | undefined, now: number): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  return Number.isFinite(t) ? formatEta(Math.max(0, (now - t) / 1000)) : '';
}

/** The table's columns, in order (`ferry monitor`). */
export const MONITOR_COLUMNS = ['id', 'node', 'via', 'stage', 'percent', 'mb/s', 'eta', 'seen', 'state', 'error'] as const;

/** The table's cells as text; `seen` is the age at `now` of the last word from the installer. */
export function rowCells(r: MonitorRow, now = Date.now()): Record<string, string> {
  return {
    id: String(r.id),
    node: r.node,
    via: r.transport,
    stage: r.stage,
    percent: r.percent === undefined ? '' : `${r.percent.toFixed(0)}%`,
    'mb/s': r.mbps === undefined ? '' : r.mbps.toFixed(1),
    eta: formatEta(r.etaSeconds),
    seen: r.state === 'running' || r.state === 'lost' || r.state === 'error' ? formatAge(r.seenAt, now) : '',
    state: r.state,
    error: r.error ?? '',
  };
}

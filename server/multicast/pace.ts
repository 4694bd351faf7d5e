/**
 * The multicast pace rule (issue 13): which receiver holds a session back. udpcast paces to the
 * slowest receiver, so the bytes every receiver has are the same and do not single it out; what
 * does is udp-sender's own wait report. When a slice's acknowledgements are late, udp-sender
 * prints (stderr, with --nokbd)
 *
 *   Timeout notAnswered=[2] notReady=[2] nrAns=2 nrRead=2 nrPart=3 avg=1234
 *
 * naming, by participant number (`New connection from A (#N)`), who has not answered the
 * acknowledgement request and who is not ready with the slice. A receiver that is not ready
 * while the others are, again and again, is the one the others wait for: at least `minHits`
 * such reports within `windowMs` and it is told to leave (the server marks it dropped; its
 * installer, polling the session state, stops its receiver and takes the layer over HTTP; then
 * udp-sender drops it as unanswering, and the others go on at the session's pace). When most
 * receivers are late at once (a busy machine, the server's own link) nobody is singled out, nor
 * in a session of two: the slower of two is no outlier, and the vm tier's emulated pair showed
 * it (a healthy guest told to leave at 27% when its emulation lagged); udp-sender's own drop
 * (30 rounds unanswered) still ends a receiver that stopped.
 */

export interface TimeoutReport {
  notAnswered: number[];
  notReady: number[];
  participants: number;
}

const TIMEOUT_RE = /^Timeout notAnswered=\[([0-9,]*)\] notReady=\[([0-9,]*)\] nrAns=\d+ nrRead=\d+ nrPart=(\d+)/;

const ids = (s: string): number[] => (s ? s.split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 0 && n < 1024) : []);

/** udp-sender's `Timeout notAnswered=[…] notReady=[…] … nrPart=N` line, else undefined. */
export function parseTimeoutLine(line: string): TimeoutReport | undefined {
  const m = TIMEOUT_RE.exec(line.trim());
  if (!m) return undefined;
  return { notAnswered: ids(m[1]), notReady: ids(m[2]), participants: Number(m[3]) };
}

export interface PaceRule {
  /** Reports counted for a receiver within this window (ms). */
  windowMs: number;
  /** This many reports singling a receiver out within the window: it is told to leave. */
  minHits: number;
}

/** Measured in the netns harness (test/integration/multicast-pace.test.ts); see the note there. */
export const DEFAULT_PACE_RULE: PaceRule = { windowMs: 20_000, minHits: 3 };

/** Per session: the receivers' late reports, and who is to leave. */
export class PaceWatch {
  private readonly hits = new Map<number, number[]>();
  private readonly told = new Set<number>();
  constructor(private readonly rule: PaceRule = DEFAULT_PACE_RULE) {}

  /**
   * One Timeout report at `now` (ms): the participant numbers to tell to leave now (each once).
   * A report singles out its late receivers only when the others are ready: fewer than half of
   * at least three participants late.
   */
  report(r: TimeoutReport, now: number): number[] {
    const all = new Set(r.notReady);
    const late = [...all].filter((n) => !this.told.has(n));
    if (!late.length || r.participants < 3) return [];
    if (!(all.size * 2 < r.participants)) return [];
    const out: number[] = [];
    for (const n of late) {
      const list = (this.hits.get(n) ?? []).filter((t) => now - t < this.rule.windowMs);
      list.push(now);
      this.hits.set(n, list);
      if (list.length >= this.rule.minHits) {
        this.told.add(n);
        out.push(n);
      }
    }
    return out;
  }

  /** A receiver that left (udp-sender dropped or disconnected it): forget it. */
  gone(n: number): void {
    this.hits.delete(n);
  }
}

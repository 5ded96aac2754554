// What clients experienced at the gate, over a sliding window: the share answered well, and time to
// first token. Kept in one-minute buckets (an hour is 60 small records, whatever the traffic).
import type { RequestOutcome, RequestRecord } from '../model/door.js';
import type { Alert } from './alerts.js';

const MINUTE = 60_000;
/** Time to first token, bucket upper bounds in ms (the last one catches the rest). */
export const TTFT_BOUNDS_MS = [
  50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10_000, 20_000, 30_000, 60_000, 120_000,
];

interface Bucket {
  minute: number;
  counts: Partial<Record<RequestOutcome, number>>;
  ttft: number[];
}

/** Answered well: the model's answer (sent again or not). A client's own error does not count either way. */
const GOOD: ReadonlySet<RequestOutcome> = new Set(['ok', 'replayed']);

export interface RequestSummary {
  /** Requests that count (all but client errors). */
  counted: number;
  /** Their share answered well, 0..1; undefined without any. */
  successRate?: number;
  /** The 95th percentile of time to first token (ms, a bucket's upper bound); undefined without any. */
  ttftP95?: number;
}

export class RequestStats {
  private buckets: Bucket[] = [];

  constructor(private readonly keepMs = 60 * MINUTE) {}

  add(records: readonly RequestRecord[]): void {
    for (const r of records) {
      const minute = Math.floor(r.at / MINUTE);
      let b = this.buckets.find((x) => x.minute === minute);
      if (!b) {
        b = { minute, counts: {}, ttft: TTFT_BOUNDS_MS.map(() => 0).concat(0) };
        this.buckets.push(b);
        this.buckets.sort((x, y) => x.minute - y.minute);
      }
      b.counts[r.outcome] = (b.counts[r.outcome] ?? 0) + 1;
      if (r.ttftMs !== undefined) {
        const i = TTFT_BOUNDS_MS.findIndex((ub) => (r.ttftMs ?? 0) <= ub);
        const at = i < 0 ? TTFT_BOUNDS_MS.length : i;
        b.ttft[at] = (b.ttft[at] ?? 0) + 1;
      }
    }
  }

  /** The requests that ended within `windowMs` before `now`. */
  summary(now: number, windowMs = this.keepMs): RequestSummary {
    const from = Math.floor((now - windowMs) / MINUTE);
    this.buckets = this.buckets.filter((b) => b.minute >= Math.floor((now - this.keepMs) / MINUTE));
    let counted = 0;
    let good = 0;
    const ttft = TTFT_BOUNDS_MS.map(() => 0).concat(0);
    for (const b of this.buckets) {
      if (b.minute < from) continue;
      for (const [o, n] of Object.entries(b.counts) as Array<[RequestOutcome, number]>) {
        if (o === 'client_error') continue;
        counted += n;
        if (GOOD.has(o)) good += n;
      }
      b.ttft.forEach((n, i) => (ttft[i] = (ttft[i] ?? 0) + n));
    }
    const total = ttft.reduce((a, n) => a + n, 0);
    let p95: number | undefined;
    if (total > 0) {
      let seen = 0;
      const i = ttft.findIndex((n) => (seen += n) >= 0.95 * total);
      p95 = TTFT_BOUNDS_MS[i] ?? Infinity;
    }
    return {
      counted,
      ...(counted ? { successRate: good / counted } : {}),
      ...(p95 !== undefined ? { ttftP95: p95 } : {}),
    };
  }
}

/** Below this many requests in the window, a rate says little: no alert. */
export const SLO_MIN_REQUESTS = 20;

/**
 * The `slo` alert: the share answered well over the window fell under the target. One per window
 * (its key), so a long bad spell is said once an interval, not at every request.
 */
export function sloAlert(
  s: RequestSummary,
  slo: { window: number; successRate: number },
  now: number,
  name: string,
): Alert | undefined {
  if (s.successRate === undefined || s.counted < SLO_MIN_REQUESTS || s.successRate >= slo.successRate) return undefined;
  const pct = (x: number) => `${(100 * x).toFixed(x >= 0.999 ? 2 : 1)}%`;
  return {
    event: 'slo',
    trouble: true,
    title: `${name}: ${pct(s.successRate)} of requests answered well (target ${pct(slo.successRate)})`,
    message:
      `Over the last ${Math.round(slo.window / MINUTE)} minutes, ${pct(s.successRate)} of ${s.counted} requests ` +
      "got the model's answer (held requests answered after a planned restart count as answered).",
    key: `slo-${Math.floor(now / slo.window)}`,
  };
}

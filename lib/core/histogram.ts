/**
 * `Histogram`: a fixed-bucket histogram of durations in milliseconds, cheap enough to observe on
 * the hot path (one comparison per bucket below the value, no allocation), read as a snapshot
 * by metrics exporters.
 *
 * Invariants:
 *  1. `counts[i]` counts the observations `<= boundsMs[i]` and `> boundsMs[i - 1]`; the last
 *     count (index `boundsMs.length`) counts those above every bound (`+Inf`). A snapshot's
 *     counts are per bucket, not cumulative.
 *  2. `sumMs` and `count` cover every observation; a value that is not a finite number >= 0 is
 *     counted as 0 (a clock that went backwards must not poison the sum).
 */

/** Buckets of processing latency, ms: from half a millisecond to a minute. */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000]);

/** Buckets of checkpoint durations, ms. */
export const CHECKPOINT_BOUNDS_MS: readonly number[] = Object.freeze([1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000]);

/** What a histogram holds at one moment. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ms, ascending. */
  boundsMs: readonly number[];
  /** Observations per bucket (invariant 1): `boundsMs.length + 1` entries, the last one `+Inf`. */
  counts: number[];
  sumMs: number;
  count: number;
}

/**
 * @example
 * const h = new Histogram(LATENCY_BOUNDS_MS);
 * h.observe(3.2);
 * h.snapshot().counts[3] // 1 (the 5 ms bucket)
 */
export class Histogram {
  private readonly counts: Float64Array;
  private sumMs = 0;
  private count = 0;

  constructor(readonly boundsMs: readonly number[]) {
    this.counts = new Float64Array(boundsMs.length + 1);
  }

  /** Invariant 2. */
  observe(ms: number): void {
    const v = ms >= 0 && ms !== Infinity ? ms : 0;
    const b = this.boundsMs;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sumMs += v;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { boundsMs: this.boundsMs, counts: Array.from(this.counts), sumMs: this.sumMs, count: this.count };
  }
}

/** Adds snapshots of the same bounds (the partitions of a stage). */
export function mergeSnapshots(boundsMs: readonly number[], snapshots: Iterable<HistogramSnapshot>): HistogramSnapshot {
  const out: HistogramSnapshot = { boundsMs, counts: new Array<number>(boundsMs.length + 1).fill(0), sumMs: 0, count: 0 };
  for (const s of snapshots) {
    for (let i = 0; i < out.counts.length; i++) out.counts[i]! += s.counts[i] ?? 0;
    out.sumMs += s.sumMs;
    out.count += s.count;
  }
  return out;
}

/**
 * Cadence statistics for `dashboard(keys)` batches: the server promises at
 * most one batch per interval (250 ms by default) while updates flow, so
 * batches should arrive about that far apart, never much closer, and not
 * stall. Pure (no `k6/*`, no `node:*`).
 */

/** Summary of the gaps between consecutive batches. */
export interface IntervalStats {
  /** Number of gaps (one less than the number of batches). */
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
}

/** Gaps between consecutive timestamps (ms), in arrival order. */
export function intervals(timestamps: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < timestamps.length; i++) out.push((timestamps[i] as number) - (timestamps[i - 1] as number));
  return out;
}

/** The p-th percentile (0-100) of the values, nearest-rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)] as number;
}

/** Stats over the gaps between batch timestamps; undefined with fewer than two batches. */
export function intervalStats(timestamps: readonly number[]): IntervalStats | undefined {
  const gaps = intervals(timestamps);
  if (gaps.length === 0) return undefined;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const g of gaps) {
    if (g < min) min = g;
    if (g > max) max = g;
    sum += g;
  }
  return { count: gaps.length, min, max, mean: sum / gaps.length, p50: percentile(gaps, 50), p95: percentile(gaps, 95) };
}

/** How far a gap may stray from the expected interval before it counts as off-cadence. */
export interface CadenceTolerance {
  /** A gap below `expected * early` means batches came faster than the server promises. Default 0.8. */
  early?: number;
  /** A gap above `expected * late` means delivery stalled. Default 2. */
  late?: number;
}

/** Where one gap sits against the expected interval. */
export type Cadence = 'early' | 'on_time' | 'late';

/**
 * Classifies one gap. The early bound is loose (0.8) because arrival times
 * carry network and scheduling jitter: two batches built 250 ms apart can
 * land 220 ms apart. Server-side `DashboardBatch.at` gaps can be held to a
 * tighter bound.
 */
export function classifyInterval(gapMs: number, expectedMs: number, tolerance: CadenceTolerance = {}): Cadence {
  const early = tolerance.early ?? 0.8;
  const late = tolerance.late ?? 2;
  if (gapMs < expectedMs * early) return 'early';
  if (gapMs > expectedMs * late) return 'late';
  return 'on_time';
}

/**
 * Remembers the previous batch time of one subscription and returns each
 * new gap, so a k6 VU can feed a Trend without keeping every timestamp.
 */
export class IntervalMeter {
  private previous: number | undefined;

  /** Records a batch at `at` (ms); returns the gap since the previous one, if any. */
  record(at: number): number | undefined {
    const gap = this.previous === undefined ? undefined : at - this.previous;
    this.previous = at;
    return gap;
  }

  /** Forgets the previous batch, e.g. after a pause in publishing. */
  reset(): void {
    this.previous = undefined;
  }
}

/**
 * Flags buckets of a count series that deviate from their baseline, with robust statistics: the
 * median of the baseline and its median absolute deviation (MAD, scaled by 1.4826 to estimate a
 * standard deviation), so one past spike does not hide the next. Hourly series use the same hour
 * of the week in earlier weeks as the baseline once there are at least three such weeks (weekly
 * seasonality); otherwise the trailing buckets.
 */

export interface CountPoint {
  start: Date;
  count: number;
}

export interface AnomalyPoint {
  start: Date;
  observed: number;
  expected: number | null;
  score: number | null;
  anomaly: boolean;
  baseline: 'hour_of_week' | 'trailing' | 'insufficient';
}

const HOURS_PER_WEEK = 168;
const MIN_SEASONAL_WEEKS = 3;
const TRAILING = { hour: 24, day: 14 } as const;
const MIN_TRAILING = 5;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Robust z-score of `observed` against `baseline` values. */
export function robustScore(observed: number, baseline: readonly number[]): { expected: number; score: number } {
  const center = median(baseline);
  const mad = median(baseline.map((value) => Math.abs(value - center)));
  // A flat baseline has no spread: fall back to a Poisson-like scale so a jump still scores.
  const scale = mad > 0 ? 1.4826 * mad : Math.max(1, Math.sqrt(center));
  return { expected: center, score: (observed - center) / scale };
}

/**
 * `history` holds the series before `points`, oldest first, in the same bucket size; together
 * they must be contiguous.
 */
export function detectAnomalies(history: readonly CountPoint[], points: readonly CountPoint[], bucket: 'hour' | 'day', threshold: number): AnomalyPoint[] {
  const all = [...history, ...points];
  return points.map((point, offset) => {
    const index = history.length + offset;
    let baseline: number[] = [];
    let kind: AnomalyPoint['baseline'] = 'insufficient';
    if (bucket === 'hour') {
      for (let back = index - HOURS_PER_WEEK; back >= 0; back -= HOURS_PER_WEEK) baseline.push(all[back]!.count);
      if (baseline.length >= MIN_SEASONAL_WEEKS) kind = 'hour_of_week';
      else baseline = [];
    }
    if (kind === 'insufficient') {
      baseline = all.slice(Math.max(0, index - TRAILING[bucket]), index).map((p) => p.count);
      if (baseline.length >= MIN_TRAILING) kind = 'trailing';
    }
    if (kind === 'insufficient') return { start: point.start, observed: point.count, expected: null, score: null, anomaly: false, baseline: kind };
    const { expected, score } = robustScore(point.count, baseline);
    return { start: point.start, observed: point.count, expected, score: Math.round(score * 100) / 100, anomaly: Math.abs(score) >= threshold, baseline: kind };
  });
}

/** How much history each bucket size looks back on. */
export const HISTORY_MS = { hour: 4 * HOURS_PER_WEEK * 3_600_000, day: 14 * 86_400_000 } as const;

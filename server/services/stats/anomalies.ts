import type { EventQueries } from './queries.ts';
import type { AnomaliesQuery, AnomaliesResult } from './schemas.ts';

/**
 * Flags buckets of a count series that deviate from their baseline, with robust statistics: the
 * median of the baseline and its median absolute deviation (MAD, scaled by 1.4826 to estimate a
 * standard deviation), so one past spike does not hide the next.
 *
 * An hour is compared with exactly the same hour in each of the four weeks before it (weekly
 * seasonality), whatever range was asked for, so its verdict never depends on `from`. A day is
 * compared with the fourteen days before it. Only time since the workspace's first recorded event
 * counts as history: the empty hours before a new install are not a baseline of zero. Without
 * enough history (three of the four weeks, or five of the fourteen days) a bucket gets no verdict
 * and is never flagged.
 */

export interface CountPoint {
  start: Date;
  count: number;
}

export type BaselineKind = 'hour_of_week' | 'trailing' | 'insufficient';

export interface AnomalyPoint {
  start: Date;
  observed: number;
  expected: number | null;
  score: number | null;
  anomaly: boolean;
  baseline: BaselineKind;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
const SEASONAL_WEEKS = 4;
const MIN_SEASONAL_WEEKS = 3;
const TRAILING_DAYS = 14;
const MIN_TRAILING_DAYS = 5;

/** Days of recorded events a bucket needs before it can get a verdict. */
export const REQUIRED_HISTORY_DAYS = { hour: MIN_SEASONAL_WEEKS * 7, day: MIN_TRAILING_DAYS } as const;

/**
 * How far before `from` the history is read. A day bucket may be 23 or 25 hours long and `from`
 * may cut one, so a day more than the baseline needs.
 */
export const HISTORY_MS = { hour: SEASONAL_WEEKS * WEEK_MS, day: (TRAILING_DAYS + 1) * DAY_MS } as const;

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
 * they must be contiguous and cover the baseline of every point (HISTORY_MS before the first).
 * `recordedSince` is the workspace's first recorded event (null: none at all).
 */
export function detectAnomalies(input: {
  history: readonly CountPoint[];
  points: readonly CountPoint[];
  bucket: 'hour' | 'day';
  threshold: number;
  recordedSince: Date | null;
}): AnomalyPoint[] {
  const { history, points, bucket, threshold, recordedSince } = input;
  const all = [...history, ...points];
  // A bucket is history if the workspace was recording during it.
  const recorded = (start: number) =>
    recordedSince !== null && (bucket === 'hour' ? start >= Math.floor(recordedSince.getTime() / HOUR_MS) * HOUR_MS : start + DAY_MS > recordedSince.getTime());
  const countAt = new Map(all.map((point) => [point.start.getTime(), point.count]));
  return points.map((point, offset) => {
    let baseline: number[];
    let kind: BaselineKind;
    if (bucket === 'hour') {
      baseline = [];
      for (let week = 1; week <= SEASONAL_WEEKS; week += 1) {
        const at = point.start.getTime() - week * WEEK_MS;
        const count = countAt.get(at);
        if (count !== undefined && recorded(at)) baseline.push(count);
      }
      kind = baseline.length >= MIN_SEASONAL_WEEKS ? 'hour_of_week' : 'insufficient';
    } else {
      const index = history.length + offset;
      baseline = all
        .slice(Math.max(0, index - TRAILING_DAYS), index)
        .filter((day) => recorded(day.start.getTime()))
        .map((day) => day.count);
      kind = baseline.length >= MIN_TRAILING_DAYS ? 'trailing' : 'insufficient';
    }
    if (kind === 'insufficient') return { start: point.start, observed: point.count, expected: null, score: null, anomaly: false, baseline: kind };
    const { expected, score } = robustScore(point.count, baseline);
    return { start: point.start, observed: point.count, expected, score: Math.round(score * 100) / 100, anomaly: Math.abs(score) >= threshold, baseline: kind };
  });
}

/** The anomalies of a workspace's counts over a range, and whether its history allows a verdict. */
export async function findAnomalies(queries: EventQueries, workspaceId: string, input: AnomaliesQuery): Promise<AnomaliesResult> {
  // The history starts a whole baseline before the first bucket (not before `from`, which may cut it).
  const firstBucket = input.bucket === 'hour' ? new Date(Math.floor(input.from.getTime() / HOUR_MS) * HOUR_MS) : input.from;
  const historyFrom = new Date(firstBucket.getTime() - HISTORY_MS[input.bucket]);
  const query = { bucket: input.bucket, timeZone: input.timeZone, uniqueUsers: false, eventType: input.eventType, name: input.name, source: input.source };
  const [history, current, recordedSince] = await Promise.all([
    queries.timeseries(workspaceId, { ...query, from: historyFrom, to: input.from }),
    queries.timeseries(workspaceId, { ...query, from: input.from, to: input.to }),
    queries.firstRecordedHour(workspaceId),
  ]);
  const points = (series: typeof current) => (series.series[0]?.points ?? []).map((p) => ({ start: new Date(p.start), count: p.count }));
  // A bucket split by `from` would appear in both: keep it once, in the current range.
  const currentStarts = new Set(points(current).map((p) => p.start.getTime()));
  const flagged = detectAnomalies({
    history: points(history).filter((p) => !currentStarts.has(p.start.getTime())),
    points: points(current),
    bucket: input.bucket,
    threshold: input.threshold,
    recordedSince,
  });
  const judged = flagged.filter((point) => point.baseline !== 'insufficient').length;
  return {
    status: judged === flagged.length ? 'ok' : judged === 0 ? 'insufficient_history' : 'partial_history',
    history: { since: recordedSince?.toISOString() ?? null, requiredDays: REQUIRED_HISTORY_DAYS[input.bucket] },
    points: flagged.map((point) => ({ ...point, start: point.start.toISOString() })),
  };
}

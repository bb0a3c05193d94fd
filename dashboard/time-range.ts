/** The time ranges the dashboard offers, and the query window and bucket sizes each one uses. */

export const RANGE_NAMES = ['1h', '24h', '7d', '30d'] as const;
export type RangeName = (typeof RANGE_NAMES)[number];

export type ChartBucket = 'minute' | 'hour' | 'day';

export interface QueryWindow {
  from: Date;
  to: Date;
  /** Bucket of the volume and percentile charts. */
  bucket: ChartBucket;
  /**
   * Bucket of the anomaly detection, which works on hours or days only; null for a per-minute
   * chart, where an hour's verdict would shade the whole chart.
   */
  anomalyBucket: 'hour' | 'day' | null;
  /** The browser's zone, so day buckets are the viewer's days. */
  timeZone: string;
  /** The range in words, e.g. "last 7 days". */
  label: string;
}

export const BUCKET_MS: Record<ChartBucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

const RANGE_LABELS: Record<RangeName, string> = { '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days', '30d': 'last 30 days' };

export const isRangeName = (value: string | undefined): value is RangeName => RANGE_NAMES.some((name) => name === value);

const ceilTo = (time: number, unitMs: number) => Math.ceil(time / unitMs) * unitMs;

/**
 * The window ends at the end of the current bucket, so the newest (partial) bucket is drawn whole
 * and bucket edges fall on whole minutes, hours or local days; the service then answers from its
 * per-minute and per-hour rollups rather than the raw events.
 */
export function queryWindow(range: RangeName, now = new Date()): QueryWindow {
  const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const time = now.getTime();
  const label = RANGE_LABELS[range];
  switch (range) {
    case '1h': {
      const to = ceilTo(time + 1, BUCKET_MS.minute);
      return { from: new Date(to - 60 * BUCKET_MS.minute), to: new Date(to), bucket: 'minute', anomalyBucket: null, timeZone, label };
    }
    case '24h': {
      const to = ceilTo(time + 1, BUCKET_MS.hour);
      return { from: new Date(to - 24 * BUCKET_MS.hour), to: new Date(to), bucket: 'hour', anomalyBucket: 'hour', timeZone, label };
    }
    case '7d': {
      const to = ceilTo(time + 1, BUCKET_MS.hour);
      return { from: new Date(to - 7 * 24 * BUCKET_MS.hour), to: new Date(to), bucket: 'hour', anomalyBucket: 'hour', timeZone, label };
    }
    case '30d': {
      // Local midnights, computed with the Date constructor so a DST change inside the range is right.
      const tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
      const from = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1 - 30);
      return { from, to: tomorrow, bucket: 'day', anomalyBucket: 'day', timeZone, label };
    }
  }
}

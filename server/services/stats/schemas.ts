import { z } from 'zod';
import { STORABLE_TIME_RANGE } from '../../../db/timestamps.ts';
import { JsonObjectSchema, Source, StoredEvent, Timestamp } from '../events/schemas.ts';
import { MAX_RANGE_DAYS, rangeSpanMs, RelativeRange, type WithAbsoluteRange } from './relative-range.ts';

export { MAX_RANGE_DAYS };
const DAY_MS = 86_400_000;
/** Most buckets one series may have. */
export const MAX_BUCKETS = 10_000;
/** Series of a breakdown: the N largest by total get their own, the rest are summed into `other`. */
export const DEFAULT_SERIES = 10;
export const MAX_SERIES = 50;
/** Most points (series x buckets, `other` included) one timeseries answer may hold: about 1 MB of JSON. */
export const MAX_POINTS = 20_000;

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

export const TimeZone = z
  .string()
  .min(1)
  .max(64)
  .refine(isTimeZone, 'Unknown IANA time zone')
  .default('UTC')
  .describe('IANA time zone for day and week buckets, e.g. Europe/Berlin (one PostgreSQL knows too)');

/**
 * A statistic's time range: `from` and `to`, or a relative `range` ("24h") ending now. Both forms
 * are optional fields of one object (not a union of two), so an input missing both gets one issue
 * per missing field instead of one per union branch, and the OpenAPI document shows every field.
 */
const Range = z.object({
  from: Timestamp.optional().describe('Start of the range (inclusive); required with "to" unless "range" is given'),
  to: Timestamp.optional().describe('End of the range (exclusive); required with "from" unless "range" is given'),
  range: RelativeRange.optional(),
});

/**
 * Statistics also read a little outside their range: anomalies the weeks before `from`, funnels
 * up to 30 days after `to`, week buckets the start of `from`'s week. A range keeps this far inside
 * the storable years, so those reads never reach a time PostgreSQL cannot read.
 */
const STATS_MARGIN_MS = 60 * DAY_MS;
const EARLIEST_STATS_TIME = new Date(STORABLE_TIME_RANGE.earliestMs + STATS_MARGIN_MS);
const LATEST_STATS_TIME = new Date(STORABLE_TIME_RANGE.latestMs + 1 - STATS_MARGIN_MS);

type RangeInput = { from?: Date | undefined; to?: Date | undefined; range?: string | undefined };

/**
 * One form of range, whole and within bounds. Answers its length in milliseconds when the range is
 * valid, so callers check their buckets against it; undefined after reporting (or while a field is
 * invalid on its own: Zod reported that already).
 */
function checkRange(input: RangeInput, ctx: z.RefinementCtx): number | undefined {
  if (input.range !== undefined) {
    if (input.from !== undefined || input.to !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['range'], message: '"range" replaces "from" and "to": send either "range" or both "from" and "to"' });
      return undefined;
    }
    // A relative range ends now: always within the storable years, its length checked by its own schema.
    return rangeSpanMs(input);
  }
  let missing = false;
  for (const field of ['from', 'to'] as const) {
    if (input[field] === undefined) {
      ctx.addIssue({ code: 'custom', path: [field], message: `Required: "${field}", or a relative "range" such as "24h" instead of "from" and "to"` });
      missing = true;
    }
  }
  const { from, to } = input;
  if (missing || !(from instanceof Date) || !(to instanceof Date)) return undefined;
  if (from < EARLIEST_STATS_TIME) {
    ctx.addIssue({ code: 'custom', path: ['from'], message: `"from" must be at or after ${EARLIEST_STATS_TIME.toISOString()}` });
  } else if (to > LATEST_STATS_TIME) {
    ctx.addIssue({ code: 'custom', path: ['to'], message: `"to" must be at or before ${LATEST_STATS_TIME.toISOString()}` });
  } else if (to <= from) ctx.addIssue({ code: 'custom', path: ['to'], message: '"to" must be after "from"' });
  else if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) {
    ctx.addIssue({ code: 'custom', path: ['to'], message: `A range may span at most ${MAX_RANGE_DAYS} days` });
  } else return to.getTime() - from.getTime();
  return undefined;
}

const EventTypeFilter = z.string().min(1).max(100);
const NameFilter = z.string().min(1).max(200);

export const EventFilters = z.object({
  eventType: EventTypeFilter.optional(),
  name: NameFilter.optional(),
  source: Source.optional(),
  userId: z.uuid().optional(),
  targetType: z.string().min(1).max(100).optional(),
  targetId: z.string().min(1).max(256).optional(),
  metadata: JsonObjectSchema.optional().describe('Only events whose metadata contains this JSON object (jsonb @>)'),
});
export type EventFilters = z.infer<typeof EventFilters>;

// ---- events.list ----------------------------------------------------------------------------

export const ListEventsInput = EventFilters.extend({
  from: Timestamp.optional().describe('Only events at or after this time'),
  to: Timestamp.optional().describe('Only events before this time'),
  range: RelativeRange.optional().describe(
    'Only events of the last N minutes, hours, days or weeks, e.g. "24h" or "7d", instead of "from" and "to". It is resolved again on each call: page through a fixed window with "from" and "to".',
  ),
  limit: z.number().int().min(1).max(500).default(100),
  cursor: z.string().max(200).optional().describe('nextCursor of the previous page'),
}).superRefine((input, ctx) => {
  if (input.range !== undefined && (input.from !== undefined || input.to !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['range'], message: '"range" replaces "from" and "to": send one or the other' });
  }
});
export type ListEventsInput = z.input<typeof ListEventsInput>;
export type ListEventsQuery = z.output<typeof ListEventsInput>;

export const ListEventsResult = z.object({
  events: z.array(StoredEvent),
  nextCursor: z.string().nullable().describe('Pass as cursor for the next (older) page; null on the last page'),
});
export type ListEventsResult = z.infer<typeof ListEventsResult>;

// ---- stats ----------------------------------------------------------------------------------

export const BUCKETS = ['minute', 'hour', 'day', 'week'] as const;
export const Bucket = z.enum(BUCKETS);
export type Bucket = z.infer<typeof Bucket>;
export const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: DAY_MS, week: 7 * DAY_MS };

export const Dimension = z.enum(['eventType', 'name', 'source', 'targetType']);
export type Dimension = z.infer<typeof Dimension>;

export const TimeseriesInput = Range.extend({
  bucket: Bucket,
  timeZone: TimeZone,
  eventType: EventTypeFilter.optional(),
  name: NameFilter.optional(),
  source: Source.optional(),
  targetType: z.string().min(1).max(100).optional(),
  uniqueUsers: z.boolean().default(false).describe('Also count distinct users per bucket'),
  breakdown: Dimension.optional().describe('One series per value of this dimension'),
  seriesLimit: z
    .number()
    .int()
    .min(1)
    .max(MAX_SERIES)
    .default(DEFAULT_SERIES)
    .describe(`With a breakdown: the values with the largest totals that get a series of their own; the rest are summed into "other" (at most ${MAX_SERIES})`),
}).superRefine((input, ctx) => {
  const span = checkRange(input, ctx);
  if (span === undefined) return;
  const buckets = span / BUCKET_MS[input.bucket];
  if (buckets > MAX_BUCKETS) {
    ctx.addIssue({ code: 'custom', path: ['bucket'], message: `At most ${MAX_BUCKETS} buckets: choose a larger bucket or a shorter range` });
    return;
  }
  // Decided from the input alone (the most series the answer could have), so whether a call is
  // refused never depends on the data. A bucket cut by the range's edges counts whole.
  const series = input.breakdown ? input.seriesLimit + 1 : 1;
  const points = series * (Math.ceil(buckets) + 1);
  if (points > MAX_POINTS) {
    ctx.addIssue({
      code: 'custom',
      path: ['bucket'],
      message: `At most ${MAX_POINTS} points per answer (series x buckets): ${series} series x ${Math.ceil(buckets) + 1} buckets is too many; choose a larger bucket, a shorter range or a smaller seriesLimit`,
    });
  }
});
export type TimeseriesInput = z.input<typeof TimeseriesInput>;
export type TimeseriesQuery = z.output<typeof TimeseriesInput>;

/**
 * Bucket starts are ISO-8601 strings rather than Dates: a month of hourly points is 720 of them,
 * and superjson's Date encoding cost more than the query.
 */
const BucketStart = z.string().describe('Start of the bucket, ISO 8601 (UTC)');
export const SeriesPoint = z.object({ start: BucketStart, count: z.number().int(), uniqueUsers: z.number().int().optional() });
export const TimeseriesResult = z.object({
  bucket: Bucket,
  timeZone: z.string(),
  source: z.enum(['rollup', 'raw']).describe('rollup: per-minute counts; raw: the events themselves'),
  series: z.array(z.object({ key: z.string().nullable(), total: z.number().int(), points: z.array(SeriesPoint) })),
  other: z
    .object({
      keys: z.number().int().describe('How many values were summed into this series'),
      total: z.number().int(),
      points: z.array(SeriesPoint),
    })
    .nullable()
    .describe('With a breakdown of more values than seriesLimit: the sum of all the values without a series of their own; else null'),
});
export type TimeseriesResult = z.infer<typeof TimeseriesResult>;

export const TopInput = Range.extend({
  by: z.enum(['name', 'eventType', 'source', 'targetType', 'targetId', 'userId']),
  limit: z.number().int().min(1).max(100).default(10),
  eventType: EventTypeFilter.optional(),
  name: NameFilter.optional(),
  source: Source.optional(),
  targetType: z.string().min(1).max(100).optional(),
}).superRefine((input, ctx) => {
  checkRange(input, ctx);
});
export type TopInput = z.input<typeof TopInput>;

export const TopResult = z.object({
  source: z.enum(['rollup', 'raw']),
  items: z.array(z.object({ key: z.string(), count: z.number().int() })),
});

export const FIELD_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,4}$/;
export const PercentilesInput = Range.extend({
  field: z.string().regex(FIELD_PATTERN, 'A dotted path of metadata keys, e.g. value or timing.ttfb').default('value'),
  eventType: EventTypeFilter.default('perf.metric'),
  name: NameFilter.optional(),
  source: Source.optional(),
  bucket: Bucket.optional().describe('Also give the figures per bucket'),
  timeZone: TimeZone,
}).superRefine((input, ctx) => {
  const span = checkRange(input, ctx);
  if (span !== undefined && input.bucket && span / BUCKET_MS[input.bucket] > MAX_BUCKETS) {
    ctx.addIssue({ code: 'custom', path: ['bucket'], message: `At most ${MAX_BUCKETS} buckets` });
  }
});
export type PercentilesInput = z.input<typeof PercentilesInput>;

export const Distribution = z.object({
  count: z.number().int(),
  min: z.number().nullable(),
  max: z.number().nullable(),
  p50: z.number().nullable(),
  p75: z.number().nullable(),
  p90: z.number().nullable(),
  p95: z.number().nullable(),
  p99: z.number().nullable(),
});
export type Distribution = z.infer<typeof Distribution>;
export const PercentilesResult = z.object({
  overall: Distribution,
  unit: z.string().nullable().describe('The most common metadata.unit of the measured events (e.g. ms), if they give one'),
  buckets: z.array(Distribution.extend({ start: BucketStart })).optional(),
});

export const FunnelInput = Range.extend({
  steps: z
    .array(z.object({ name: NameFilter, eventType: EventTypeFilter.optional(), source: Source.optional() }))
    .min(2)
    .max(8),
  windowSeconds: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .default(86_400)
    .describe('Time allowed from the first step to the last'),
}).superRefine((input, ctx) => {
  checkRange(input, ctx);
});
export type FunnelInput = z.input<typeof FunnelInput>;

export const FunnelResult = z.object({
  steps: z.array(
    z.object({
      index: z.number().int(),
      name: z.string(),
      users: z.number().int(),
      conversionFromPrevious: z.number().nullable(),
      conversionFromFirst: z.number().nullable(),
    }),
  ),
});

export const AnomaliesInput = Range.extend({
  bucket: z.enum(['hour', 'day']),
  timeZone: TimeZone,
  eventType: EventTypeFilter.optional(),
  name: NameFilter.optional(),
  source: Source.optional(),
  threshold: z.number().min(1).max(20).default(3.5).describe('Robust z-score from which a bucket is flagged'),
}).superRefine((input, ctx) => {
  const span = checkRange(input, ctx);
  if (span !== undefined && span / BUCKET_MS[input.bucket] > 2000) {
    ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'At most 2000 buckets' });
  }
});
export type AnomaliesInput = z.input<typeof AnomaliesInput>;
/** What the anomaly search runs on: the input with its range made absolute. */
export type AnomaliesQuery = WithAbsoluteRange<z.output<typeof AnomaliesInput>>;

export const AnomaliesResult = z.object({
  status: z
    .enum(['ok', 'partial_history', 'insufficient_history'])
    .describe('insufficient_history: no bucket has enough history for a verdict, so none is flagged; partial_history: only the later ones do'),
  history: z.object({
    since: BucketStart.nullable().describe("Start of the hour of the workspace's first recorded event; null if it has none"),
    requiredDays: z.number().int().describe('Days of recorded events a bucket needs before it can be judged (21 for hours, 5 for days)'),
  }),
  points: z.array(
    z.object({
      start: BucketStart,
      observed: z.number().int(),
      expected: z.number().nullable(),
      score: z.number().nullable(),
      anomaly: z.boolean(),
      baseline: z.enum(['hour_of_week', 'trailing', 'insufficient']).describe('insufficient: not enough history, never flagged'),
    }),
  ),
});
export type AnomaliesResult = z.infer<typeof AnomaliesResult>;

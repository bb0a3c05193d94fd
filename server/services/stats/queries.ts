import { sql, type SQL } from 'drizzle-orm';
import type { SqlRunner } from '../../../db/database.ts';
import { DomainError } from '../../errors.ts';
import { isStorableTime, STORABLE_TIME_RANGE } from '../../../db/timestamps.ts';
import { pickRollup, rollupOf } from '../../../db/rollups.ts';
import { fromStoredEventRow, STORED_EVENT_SELECT, type StoredEventRow } from '../events/read.ts';
import { fromEpochMicros } from '../events/precise-time.ts';
import { createTimeZoneCatalog, type TimeZoneCatalog } from './time-zones.ts';
import type { StoredEvent } from '../events/schemas.ts';
import { withOptionalAbsoluteRange } from './relative-range.ts';
import { DEFAULT_SERIES, type Bucket, type Dimension, type Distribution, type EventFilters } from './schemas.ts';
import { isUuid } from '../../uuid.ts';

/** Columns of `telemetry.events` a dimension or `top` key maps to (fixed names, never input). */
const COLUMN: Record<Dimension | 'targetId' | 'userId', string> = {
  eventType: 'event_type',
  name: 'name',
  source: 'source',
  targetType: 'target_type',
  targetId: 'target_id',
  userId: 'user_id',
};
const ROLLUP_DIMENSIONS = new Set<string>(['eventType', 'name', 'source']);

const DAY_MS = 86_400_000;
const DAY_AND_WEEK: ReadonlySet<Bucket> = new Set(['day', 'week']);

/** Minute and hour buckets are UTC; day and week follow the caller's time zone (DST included). */
function bucketZone(bucket: Bucket, timeZone: string): string {
  return DAY_AND_WEEK.has(bucket) ? timeZone : 'UTC';
}

/** A bucket's nominal length: no rollup coarser than it may answer (db/rollups.ts pickRollup). */
const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: DAY_MS, week: 7 * DAY_MS };

const HOURLY = rollupOf('hour');

/** Position after the last event of a page: its created_at in epoch microseconds (exact) and id. */
type ListCursor = { t: string; i: string };

function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/**
 * A cursor comes back from the client, so it is checked as input: a time the database can hold
 * and a real UUID, or a 400 naming `cursor` (a forged one must never reach the SQL as a 500).
 */
function decodeCursor(value: string): ListCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    const { t, i } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Partial<Record<keyof ListCursor, unknown>>;
    if (typeof t === 'string' && /^-?\d{1,19}$/.test(t) && isStorableTime(fromEpochMicros(t)) && typeof i === 'string' && isUuid(i)) {
      return { t, i };
    }
  } catch {
    // fall through: not base64url JSON
  }
  throw new DomainError('invalid_input', 'Invalid cursor: pass back a nextCursor this service gave', { path: 'cursor' });
}

/**
 * A page of events ends early once its metadata passes this many bytes (at least one event per
 * page), so 500 events of 32 KB each arrive over four pages instead of in one 16 MB answer.
 */
export const LIST_PAGE_MAX_METADATA_BYTES = 4 * 1024 * 1024;

function withinPageBytes<Row extends { metadata_bytes: number | string | null }>(rows: Row[]): Row[] {
  let bytes = 0;
  for (const [index, row] of rows.entries()) {
    bytes += Number(row.metadata_bytes ?? 0);
    if (bytes > LIST_PAGE_MAX_METADATA_BYTES && index > 0) return rows.slice(0, index);
  }
  return rows;
}

const toNumber = (value: unknown): number => Number(value ?? 0);
const toDate = (ms: unknown): Date => new Date(Number(ms));

export type EventQueries = ReturnType<typeof createEventQueries>;

/**
 * `timeZones` is shared by the per-call instances (see Services.readsUntil), so one call's deadline
 * never cancels the catalog's load for the others.
 */
export function createEventQueries({
  db,
  timeZones = createTimeZoneCatalog({ db }),
  now = () => new Date(),
}: {
  db: SqlRunner;
  timeZones?: TimeZoneCatalog;
  /** The server clock relative ranges ("24h") end at; tests pin it. */
  now?: () => Date;
}) {
  /** Raw-event conditions shared by every query: workspace, time range, filters. */
  type Filters = Omit<Partial<EventFilters>, 'source'> & { source?: string | undefined };
  function eventConditions(workspaceId: string, range: { from?: Date | undefined; to?: Date | undefined }, filters: Filters): SQL[] {
    const conditions: SQL[] = [sql`e.workspace_id = ${workspaceId}`];
    if (range.from) conditions.push(sql`e.created_at >= ${range.from.toISOString()}::timestamptz`);
    if (range.to) conditions.push(sql`e.created_at < ${range.to.toISOString()}::timestamptz`);
    if (filters.eventType) conditions.push(sql`e.event_type = ${filters.eventType}`);
    if (filters.name) conditions.push(sql`e.name = ${filters.name}`);
    if (filters.source) conditions.push(sql`e.source = ${filters.source}`);
    if (filters.userId) conditions.push(sql`e.user_id = ${filters.userId}`);
    if (filters.targetType) conditions.push(sql`e.target_type = ${filters.targetType}`);
    if (filters.targetId) conditions.push(sql`e.target_id = ${filters.targetId}`);
    if (filters.metadata) conditions.push(sql`e.metadata @> ${JSON.stringify(filters.metadata)}::text::jsonb`);
    return conditions;
  }

  function rollupConditions(
    workspaceId: string,
    column: SQL,
    range: { from: Date; to: Date },
    filters: { eventType?: string | undefined; name?: string | undefined; source?: string | undefined },
  ): SQL[] {
    const conditions: SQL[] = [
      sql`r.workspace_id = ${workspaceId}`,
      sql`r.${column} >= ${range.from.toISOString()}::timestamptz`,
      sql`r.${column} < ${range.to.toISOString()}::timestamptz`,
    ];
    if (filters.eventType) conditions.push(sql`r.event_type = ${filters.eventType}`);
    if (filters.name) conditions.push(sql`r.name = ${filters.name}`);
    if (filters.source) conditions.push(sql`r.source = ${filters.source}`);
    return conditions;
  }

  /** Newest first, keyset-paginated: a page never repeats or skips events because others arrived. */
  async function listEvents(
    workspaceId: string,
    query: EventFilters & { from?: Date | undefined; to?: Date | undefined; range?: string | undefined; limit: number; cursor?: string | undefined },
  ): Promise<{ events: StoredEvent[]; nextCursor: string | null }> {
    const input = withOptionalAbsoluteRange(query, now());
    const cursor = input.cursor ? decodeCursor(input.cursor) : undefined;
    const upper = cursor ? fromEpochMicros(cursor.t) : input.to;
    // Newest first without a lower bound would open every daily partition. Look back one day,
    // then a week, a month, then everything, until a page fills: each step reads few partitions,
    // and a full page from a narrower window is exactly the page the whole range would give.
    const windows = [DAY_MS, 8 * DAY_MS, 32 * DAY_MS, Number.POSITIVE_INFINITY];
    // Without an upper bound, count back from a little after now (events may carry times a few
    // minutes ahead of the server clock).
    const reference = upper ?? new Date(now().getTime() + DAY_MS);
    for (const span of windows) {
      // A window reaching before year 1 is the unbounded one (PostgreSQL would not read its start).
      const windowStart =
        Number.isFinite(span) && reference.getTime() - span >= STORABLE_TIME_RANGE.earliestMs ? new Date(reference.getTime() - span) : undefined;
      const lower = windowStart && input.from && input.from > windowStart ? input.from : (windowStart ?? input.from);
      const conditions = eventConditions(workspaceId, { from: lower, to: input.to }, input);
      if (cursor) {
        conditions.push(sql`(e.created_at, e.id) < ('epoch'::timestamptz + ${cursor.t}::bigint * interval '1 microsecond', ${cursor.i}::uuid)`);
      }
      const rows = await db.rows<StoredEventRow & { metadata_bytes: number | string | null }>(sql`
        select ${STORED_EVENT_SELECT}, octet_length(e.metadata::text) as metadata_bytes
        from telemetry.events e
        where ${sql.join(conditions, sql` and `)}
        order by e.created_at desc, e.id desc
        limit ${input.limit + 1}`);
      const complete = rows.length > input.limit || !windowStart || (input.from !== undefined && lower === input.from);
      if (!complete) continue;
      const pageRows = withinPageBytes(rows.slice(0, input.limit));
      const last = pageRows[pageRows.length - 1];
      return {
        events: pageRows.map(fromStoredEventRow),
        nextCursor: rows.length > pageRows.length && last ? encodeCursor({ t: last.created_micros, i: last.id }) : null,
      };
    }
    throw new Error('unreachable: the last window is unbounded');
  }

  /** Bucket starts covering [from, to), generated in the bucket's zone so DST days are 23 or 25 hours long. */
  async function bucketStarts(from: Date, to: Date, bucket: Bucket, zone: string): Promise<Date[]> {
    if (zone === 'UTC' && (bucket === 'minute' || bucket === 'hour')) {
      // Fixed-length UTC buckets need no calendar: plain arithmetic, no round trip.
      const unit = bucket === 'minute' ? 60_000 : 3_600_000;
      const starts: Date[] = [];
      for (let at = Math.floor(from.getTime() / unit) * unit; at < to.getTime(); at += unit) starts.push(new Date(at));
      return starts;
    }
    const rows = await db.rows<{ start_ms: number | string }>(sql`
      select (extract(epoch from (local_start at time zone ${zone})) * 1000)::float8 as start_ms
      from generate_series(
        date_trunc(${bucket}, ${from.toISOString()}::timestamptz at time zone ${zone}),
        (${to.toISOString()}::timestamptz - interval '1 microsecond') at time zone ${zone},
        ${`1 ${bucket}`}::interval
      ) as local_start
      order by local_start`);
    return rows.map((row) => toDate(row.start_ms));
  }

  async function timeseries(
    workspaceId: string,
    input: {
      from: Date;
      to: Date;
      bucket: Bucket;
      timeZone: string;
      uniqueUsers: boolean;
      breakdown?: Dimension | undefined;
      seriesLimit?: number | undefined;
      eventType?: string | undefined;
      name?: string | undefined;
      source?: string | undefined;
      targetType?: string | undefined;
    },
  ) {
    const zone = bucketZone(input.bucket, input.timeZone);
    const starts = await bucketStarts(input.from, input.to, input.bucket, zone);
    const rollup =
      !input.uniqueUsers && !input.targetType && (!input.breakdown || ROLLUP_DIMENSIONS.has(input.breakdown))
        ? pickRollup({ from: input.from, to: input.to, bucketMs: BUCKET_MS[input.bucket], bucketStarts: starts })
        : undefined;
    // The same statement over either source: the rollup table `r` (counts) or the events `e`.
    const table = rollup ? sql`${rollup.table} r` : sql`telemetry.events e`;
    const where = sql.join(rollup ? rollupConditions(workspaceId, rollup.bucket, input, input) : eventConditions(workspaceId, input, input), sql` and `);
    const time = rollup ? sql`r.${rollup.bucket}` : sql`e.created_at`;
    const count = rollup ? sql`sum(r.count)` : sql`count(*)`;
    const users = !rollup && input.uniqueUsers ? sql`count(distinct e.user_id)` : sql`0`;
    const start = sql`(extract(epoch from (date_trunc(${input.bucket}, ${time} at time zone ${zone}) at time zone ${zone})) * 1000)::float8`;
    type Row = { start_ms: number | string; key: string | null; other: boolean; count: number | string; users: number | string; keys: number | string };
    let rows: Row[];
    if (!input.breakdown) {
      rows = await db.rows<Row>(sql`
        select ${start} as start_ms, null::text as key, false as other, ${count} as count, ${users} as users, 1 as keys
        from ${table} where ${where} group by 1`);
    } else {
      // The N values with the largest totals keep a series each; all others are summed into one
      // "other" series inside the database, so the answer is at most N + 1 series whatever the
      // number of distinct values. The join pairs a null value with null (targetType may be absent).
      const limit = input.seriesLimit ?? DEFAULT_SERIES;
      const key = sql`${rollup ? sql.raw('r') : sql.raw('e')}.${sql.raw(COLUMN[input.breakdown])}`;
      rows = await db.rows<Row>(sql`
        with ranked as (
          select t.key, t.key is null as key_is_null, count(*) over () as keys,
                 row_number() over (order by t.total desc, t.key asc nulls last) as rank
          from (select ${key} as key, ${count} as total from ${table} where ${where} group by 1) t
        )
        select ${start} as start_ms, case when k.rank <= ${limit} then k.key end as key, k.rank > ${limit} as other,
               ${count} as count, ${users} as users, max(k.keys) as keys
        from ${table} join ranked k on (${key} is null) = k.key_is_null and coalesce(${key}, '') = coalesce(k.key, '')
        where ${where}
        group by 1, 2, 3`);
    }
    const fill = (points: Map<number, { count: number; users: number }>) => {
      const filled = starts.map((bucketStart) => {
        const found = points.get(bucketStart.getTime());
        return { start: bucketStart.toISOString(), count: found?.count ?? 0, ...(input.uniqueUsers && { uniqueUsers: found?.users ?? 0 }) };
      });
      return { total: filled.reduce((sum, point) => sum + point.count, 0), points: filled };
    };
    const byKey = new Map<string | null, Map<number, { count: number; users: number }>>();
    const otherPoints = new Map<number, { count: number; users: number }>();
    let otherKeys = 0;
    for (const row of rows) {
      const point = { count: toNumber(row.count), users: toNumber(row.users) };
      if (row.other) {
        otherPoints.set(Number(row.start_ms), point);
        otherKeys = toNumber(row.keys) - (input.seriesLimit ?? DEFAULT_SERIES);
        continue;
      }
      const points = byKey.get(row.key) ?? new Map();
      points.set(Number(row.start_ms), point);
      byKey.set(row.key, points);
    }
    if (byKey.size === 0 && !input.breakdown) byKey.set(null, new Map());
    const series = [...byKey.entries()].map(([key, points]) => ({ key, ...fill(points) }));
    series.sort((a, b) => b.total - a.total || String(a.key).localeCompare(String(b.key)));
    const other = otherKeys > 0 ? { keys: otherKeys, ...fill(otherPoints) } : null;
    return { bucket: input.bucket, timeZone: zone, source: rollup ? ('rollup' as const) : ('raw' as const), series, other };
  }

  async function top(
    workspaceId: string,
    input: {
      from: Date;
      to: Date;
      by: Dimension | 'targetId' | 'userId';
      limit: number;
      eventType?: string | undefined;
      name?: string | undefined;
      source?: string | undefined;
      targetType?: string | undefined;
    },
  ) {
    const column = sql.raw(COLUMN[input.by]);
    const rollup = ROLLUP_DIMENSIONS.has(input.by) && !input.targetType ? pickRollup({ from: input.from, to: input.to }) : undefined;
    const rows = rollup
      ? await db.rows<{ key: string; count: number | string }>(sql`
          select r.${column} as key, sum(r.count) as count
          from ${rollup.table} r
          where ${sql.join(rollupConditions(workspaceId, rollup.bucket, input, input), sql` and `)}
          group by 1 order by 2 desc, 1 asc limit ${input.limit}`)
      : await db.rows<{ key: string; count: number | string }>(sql`
          select e.${column}::text as key, count(*) as count
          from telemetry.events e
          where ${sql.join([...eventConditions(workspaceId, input, input), sql`e.${column} is not null`], sql` and `)}
          group by 1 order by 2 desc, 1 asc limit ${input.limit}`);
    return { source: rollup ? ('rollup' as const) : ('raw' as const), items: rows.map((row) => ({ key: row.key, count: toNumber(row.count) })) };
  }

  async function percentiles(
    workspaceId: string,
    input: {
      from: Date;
      to: Date;
      field: string;
      eventType: string;
      name?: string | undefined;
      source?: string | undefined;
      bucket?: Bucket | undefined;
      timeZone: string;
    },
  ) {
    // The path is validated as dotted identifiers; it travels as a text[] parameter.
    const path = `{${input.field.split('.').join(',')}}`;
    const value = sql`(e.metadata #>> ${path}::text[])::float8`;
    const conditions = [...eventConditions(workspaceId, input, input), sql`jsonb_typeof(e.metadata #> ${path}::text[]) = 'number'`];
    const figures = sql`count(*) as count, min(${value}) as min, max(${value}) as max,
      percentile_cont(array[0.5, 0.75, 0.9, 0.95, 0.99]::float8[]) within group (order by ${value}) as p`;
    type Row = {
      count: number | string;
      min: number | string | null;
      max: number | string | null;
      p: (number | string)[] | string | null;
      start_ms?: number | string;
    };
    const toDistribution = (row: Row | undefined): Distribution => {
      const p = parsePercentiles(row?.p ?? null);
      const count = toNumber(row?.count);
      const num = (v: unknown) => (count === 0 || v === null || v === undefined ? null : Number(v));
      return { count, min: num(row?.min), max: num(row?.max), p50: num(p[0]), p75: num(p[1]), p90: num(p[2]), p95: num(p[3]), p99: num(p[4]) };
    };
    // The unit the events give most often (perf.metric carries one), so charts can label the axis.
    const [overall] = await db.rows<Row & { unit: string | null }>(sql`
      select ${figures}, mode() within group (order by e.metadata ->> 'unit') as unit
      from telemetry.events e where ${sql.join(conditions, sql` and `)}`);
    const unit = overall?.unit ?? null;
    if (!input.bucket) return { overall: toDistribution(overall), unit };
    const zone = bucketZone(input.bucket, input.timeZone);
    const rows = await db.rows<Row>(sql`
      select (extract(epoch from (date_trunc(${input.bucket}, e.created_at at time zone ${zone}) at time zone ${zone})) * 1000)::float8 as start_ms, ${figures}
      from telemetry.events e where ${sql.join(conditions, sql` and `)} group by 1`);
    const byStart = new Map(rows.map((row) => [Number(row.start_ms), row]));
    const starts = await bucketStarts(input.from, input.to, input.bucket, zone);
    return {
      overall: toDistribution(overall),
      unit,
      buckets: starts.map((start) => ({ start: start.toISOString(), ...toDistribution(byStart.get(start.getTime())) })),
    };
  }

  /**
   * Users reaching each step in order: a user's first step-1 event in the range starts their
   * funnel; each next step counts if it happens after the previous one and within the window of
   * the first.
   */
  async function funnel(
    workspaceId: string,
    input: { from: Date; to: Date; windowSeconds: number; steps: { name: string; eventType?: string | undefined; source?: string | undefined }[] },
  ) {
    const stepCondition = (step: { name: string; eventType?: string | undefined; source?: string | undefined }) =>
      sql.join(
        [
          sql`e.name = ${step.name}`,
          ...(step.eventType ? [sql`e.event_type = ${step.eventType}`] : []),
          ...(step.source ? [sql`e.source = ${step.source}`] : []),
        ],
        sql` and `,
      );
    const windowEnd = new Date(input.to.getTime() + input.windowSeconds * 1000).toISOString();
    // One scan of the workspace's range for all steps; every step then joins this set in memory
    // (a scan per step read the same week of events once per step).
    const ctes: SQL[] = [
      sql`ev as materialized (select e.user_id, e.created_at, e.name, e.event_type, e.source
        from telemetry.events e
        where e.workspace_id = ${workspaceId} and e.user_id is not null
          and e.created_at >= ${input.from.toISOString()}::timestamptz and e.created_at < ${windowEnd}::timestamptz
          and (${sql.join(input.steps.map(stepCondition), sql` or `)}))`,
      sql`s0 as (select e.user_id, min(e.created_at) as at, min(e.created_at) as started
        from ev e where ${stepCondition(input.steps[0]!)} and e.created_at < ${input.to.toISOString()}::timestamptz
        group by e.user_id)`,
    ];
    input.steps.slice(1).forEach((step, i) => {
      const previous = sql.raw(`s${i}`);
      ctes.push(sql`${sql.raw(`s${i + 1}`)} as (select p.user_id, min(e.created_at) as at, min(p.started) as started
        from ${previous} p join ev e on e.user_id = p.user_id
        where ${stepCondition(step)} and e.created_at > p.at and e.created_at <= p.started + ${`${input.windowSeconds} seconds`}::interval
        group by p.user_id)`);
    });
    const counts = input.steps.map((_, i) => sql`(select count(*) from ${sql.raw(`s${i}`)}) as ${sql.raw(`c${i}`)}`);
    const [row] = await db.rows<Record<string, number | string>>(sql`with ${sql.join(ctes, sql`, `)} select ${sql.join(counts, sql`, `)}`);
    const users = input.steps.map((_, i) => toNumber(row?.[`c${i}`]));
    return {
      steps: input.steps.map((step, index) => ({
        index,
        name: step.name,
        users: users[index]!,
        conversionFromPrevious: index === 0 ? null : users[index - 1] ? users[index]! / users[index - 1]! : null,
        conversionFromFirst: index === 0 ? null : users[0] ? users[index]! / users[0]! : null,
      })),
    };
  }

  /** The hour of the workspace's first recorded event (from the hourly rollup's key), or null. */
  async function firstRecordedHour(workspaceId: string): Promise<Date | null> {
    const [row] = await db.rows<{ first_ms: number | string | null }>(sql`
      select (extract(epoch from min(r.${HOURLY.bucket})) * 1000)::float8 as first_ms from ${HOURLY.table} r where r.workspace_id = ${workspaceId}`);
    return row?.first_ms === null || row?.first_ms === undefined ? null : toDate(row.first_ms);
  }

  // Queries that read a calendar in the caller's zone take only zones PostgreSQL knows.
  const inKnownZone =
    <I extends { timeZone: string }, R>(query: (workspaceId: string, input: I) => Promise<R>) =>
    async (workspaceId: string, input: I): Promise<R> => {
      await timeZones.assertKnown(input.timeZone);
      return query(workspaceId, input);
    };

  return { listEvents, timeseries: inKnownZone(timeseries), top, percentiles: inKnownZone(percentiles), funnel, firstRecordedHour, now };
}

/** percentile_cont over an array answers a Postgres array: postgres.js parses it, PGlite may give text. */
function parsePercentiles(value: (number | string)[] | string | null): (number | null)[] {
  if (value === null) return [];
  if (Array.isArray(value)) return value.map((v) => (v === null ? null : Number(v)));
  return value
    .replace(/[{}]/g, '')
    .split(',')
    .map((v) => (v === 'NULL' ? null : Number(v)));
}

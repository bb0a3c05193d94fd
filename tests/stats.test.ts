import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { ensureDailyPartitions } from '../db/partitions.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { detectAnomalies, median } from '../server/services/stats/anomalies.ts';
import { LIST_PAGE_MAX_METADATA_BYTES } from '../server/services/stats/queries.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { procedureCaller, registerTestWorkspaces, startTestServer } from './support/app.ts';
import { TRPCClientError } from '@trpc/client';
import { createTelemetryClient, type AppRouter } from '../client/index.ts';

/**
 * Every answer is checked against one computed here in plain JavaScript over the same seeded
 * events. The seed spans the end of daylight saving time in New York (2026-11-01) and a partition
 * edge (UTC midnight).
 */
let testDb: TestDatabase;
const workspaceId = randomUUID();
const otherWorkspace = randomUUID();
let readKey: string;
const seeded: EventRow[] = [];
const FROM = new Date('2026-10-28T00:00:00Z');
const TO = new Date('2026-11-05T00:00:00Z');
const USERS = Array.from({ length: 12 }, () => randomUUID());
const NAMES = ['page.view', 'signup.start', 'signup.done', 'LCP', 'button.click'];

// A small deterministic generator, so failures reproduce.
let state = 42;
const random = () => {
  state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
  return state / 2 ** 31;
};
const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;

function event(createdAt: Date, overrides: Partial<EventRow> = {}): EventRow {
  const name = pick(NAMES);
  return {
    id: randomUUID(),
    workspaceId,
    userId: pick(USERS),
    source: pick(['web', 'mobile', 'backend']),
    eventType: name === 'LCP' ? 'perf.metric' : 'ui.interaction',
    name,
    targetType: random() < 0.5 ? 'button' : null,
    targetId: random() < 0.5 ? pick(['a', 'b', 'c']) : null,
    metadata: name === 'LCP' ? { value: Math.round(random() * 4000), unit: 'ms' } : { plan: pick(['free', 'pro']) },
    createdAt,
    receivedAt: createdAt,
    ...overrides,
  };
}

beforeAll(async () => {
  testDb = await openTestDatabase();
  await ensureDailyPartitions(testDb.db, { from: FROM, to: new Date(TO.getTime() - 1) });
  await registerTestWorkspaces(testDb.db, workspaceId, otherWorkspace);
  readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
  for (let i = 0; i < 700; i += 1) seeded.push(event(new Date(FROM.getTime() + Math.floor(random() * (TO.getTime() - FROM.getTime())))));
  // Edges: UTC midnight (a partition edge), either side of New York's fall-back hour.
  seeded.push(event(new Date('2026-11-01T00:00:00.000Z')), event(new Date('2026-10-31T23:59:59.999Z')));
  seeded.push(event(new Date('2026-11-01T05:30:00Z')), event(new Date('2026-11-01T06:30:00Z')), event(new Date('2026-11-02T04:30:00Z')));
  // A funnel walked by known users, and noise in another workspace that must never count.
  const writer = createEventWriter(testDb.db);
  for (let i = 0; i < seeded.length; i += 200) await writer.write(seeded.slice(i, i + 200));
  await writer.write(Array.from({ length: 50 }, () => event(new Date('2026-11-01T12:00:00Z'), { workspaceId: otherWorkspace })));
});
afterAll(async () => {
  await testDb?.drop();
});

const reader = () => procedureCaller(testDb.db, { apiKey: readKey });
const inRange = (e: EventRow, from: Date, to: Date) => e.createdAt >= from && e.createdAt < to;

/** The local calendar day of an instant in a time zone, e.g. 2026-11-01. */
function localDay(instant: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(instant);
}

describe('stats.timeseries', () => {
  it('counts per local day across a DST change, with 25-hour days where the clocks go back', async () => {
    const result = await reader().telemetry.stats.timeseries({ from: FROM, to: TO, bucket: 'day', timeZone: 'America/New_York' });
    const points = result.series[0]!.points;
    const expected = new Map<string, number>();
    for (const e of seeded.filter((e) => inRange(e, FROM, TO)))
      expected.set(localDay(e.createdAt, 'America/New_York'), (expected.get(localDay(e.createdAt, 'America/New_York')) ?? 0) + 1);
    for (const point of points)
      expect(point.count, localDay(new Date(point.start), 'America/New_York')).toBe(expected.get(localDay(new Date(point.start), 'America/New_York')) ?? 0);
    expect(points.reduce((sum, p) => sum + p.count, 0)).toBe(seeded.filter((e) => inRange(e, FROM, TO)).length);
    const nov1 = points.find((p) => localDay(new Date(p.start), 'America/New_York') === '2026-11-01')!;
    const nov2 = points[points.indexOf(nov1) + 1]!;
    expect(nov1.start).toBe('2026-11-01T04:00:00.000Z');
    expect(nov2.start).toBe('2026-11-02T05:00:00.000Z');
  });

  it.each([
    ['hourly rollups, hour buckets', { from: FROM, to: TO, bucket: 'hour' as const }],
    ['minute rollups, minute buckets', { from: new Date('2026-11-01T00:07:00Z'), to: new Date('2026-11-01T03:07:00Z'), bucket: 'minute' as const }],
    ['minute rollups, days in a half-hour time zone', { from: FROM, to: TO, bucket: 'day' as const, timeZone: 'Asia/Kolkata' }],
    ['hourly rollups, weeks in New York', { from: FROM, to: TO, bucket: 'week' as const, timeZone: 'America/New_York' }],
  ])('gives the same numbers from %s as from raw events, with a breakdown', async (_label, range) => {
    const query = { ...range, breakdown: 'name' as const };
    const fromRollups = await reader().telemetry.stats.timeseries(query);
    // Asking for unique users forces the raw path.
    const fromRaw = await reader().telemetry.stats.timeseries({ ...query, uniqueUsers: true });
    expect(fromRollups.source).toBe('rollup');
    expect(fromRaw.source).toBe('raw');
    const strip = (r: typeof fromRollups) => r.series.map((s) => ({ key: s.key, points: s.points.map((p) => [p.start, p.count]) }));
    expect(strip(fromRollups)).toEqual(strip(fromRaw));
    for (const series of fromRaw.series) {
      expect(series.total).toBe(seeded.filter((e) => e.name === series.key && inRange(e, range.from, range.to)).length);
    }
  });

  it('fills empty buckets with zero and counts unique users per bucket', async () => {
    const from = new Date('2026-11-01T00:00:00Z');
    const to = new Date('2026-11-01T06:00:00Z');
    const result = await reader().telemetry.stats.timeseries({ from, to, bucket: 'hour', uniqueUsers: true, source: 'web' });
    expect(result.series[0]!.points).toHaveLength(6);
    for (const point of result.series[0]!.points) {
      const start = new Date(point.start);
      const inBucket = seeded.filter((e) => e.source === 'web' && inRange(e, start, new Date(start.getTime() + 3_600_000)));
      expect(point.count).toBe(inBucket.length);
      expect(point.uniqueUsers).toBe(new Set(inBucket.map((e) => e.userId)).size);
    }
  });

  it('answers an empty range with zeros', async () => {
    const result = await reader().telemetry.stats.timeseries({
      from: new Date('2025-01-01T00:00:00Z'),
      to: new Date('2025-01-01T00:10:00Z'),
      bucket: 'minute',
    });
    expect(result.series[0]!.points.map((p) => p.count)).toEqual(Array(10).fill(0));
  });

  it('refuses too many buckets and an inverted range with 400', async () => {
    await expect(reader().telemetry.stats.timeseries({ from: FROM, to: new Date(FROM.getTime() + 30 * 86_400_000), bucket: 'minute' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(reader().telemetry.stats.timeseries({ from: TO, to: FROM, bucket: 'day' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(reader().telemetry.stats.timeseries({ from: FROM, to: TO, bucket: 'day', timeZone: 'Mars/Olympus' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});

describe('stats.timeseries answers are bounded', () => {
  const manyNames = randomUUID();
  const DAY = { from: new Date('2026-10-29T00:00:00Z'), to: new Date('2026-10-30T00:00:00Z') };
  // 1,000 names seen once each and 12 frequent ones (20 to 31 events), spread over one day.
  const frequent = Array.from({ length: 12 }, (_, i) => [`frequent-${String(i).padStart(2, '0')}`, 20 + i] as const);
  let manyNamesKey: string;

  beforeAll(async () => {
    await registerTestWorkspaces(testDb.db, manyNames);
    manyNamesKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId: manyNames })).key;
    const names = [...Array.from({ length: 1000 }, (_, i) => `rare-${i}`), ...frequent.flatMap(([name, count]) => Array<string>(count).fill(name))];
    const rows = names.map((name, i) => event(new Date(DAY.from.getTime() + ((i * 7_919_000) % 86_400_000)), { workspaceId: manyNames, name }));
    const writer = createEventWriter(testDb.db);
    for (let i = 0; i < rows.length; i += 500) await writer.write(rows.slice(i, i + 500));
  });

  it.each([
    ['rollups', false],
    ['raw events', true],
  ])('a breakdown of 1,000 names answers the ten largest and one "other" series, and the counts still sum to the total (%s)', async (_label, uniqueUsers) => {
    const caller = procedureCaller(testDb.db, { apiKey: manyNamesKey });
    const result = await caller.telemetry.stats.timeseries({ ...DAY, bucket: 'hour', breakdown: 'name', uniqueUsers });
    expect(result.source).toBe(uniqueUsers ? 'raw' : 'rollup');
    expect(result.series.map((s) => s.key)).toEqual(
      frequent
        .slice(2)
        .reverse()
        .map(([name]) => name),
    );
    expect(result.series.every((s) => s.points.length === 24)).toBe(true);
    expect(result.other).toMatchObject({ keys: 1002, total: 1000 + 20 + 21 });
    expect(result.other!.points).toHaveLength(24);
    const total = 1000 + frequent.reduce((sum, [, count]) => sum + count, 0);
    expect(result.series.reduce((sum, s) => sum + s.total, 0) + result.other!.total).toBe(total);
    const perBucket = result.other!.points.map((p, i) => p.count + result.series.reduce((sum, s) => sum + s.points[i]!.count, 0));
    expect(perBucket.reduce((a, b) => a + b, 0)).toBe(total);

    const three = await caller.telemetry.stats.timeseries({ ...DAY, bucket: 'hour', breakdown: 'name', uniqueUsers, seriesLimit: 3 });
    expect(three.series).toHaveLength(3);
    expect(three.other!.keys).toBe(1009);
    expect(three.series.reduce((sum, s) => sum + s.total, 0) + three.other!.total).toBe(total);
  });

  it('has no "other" series when every value fits', async () => {
    const result = await reader().telemetry.stats.timeseries({ from: FROM, to: TO, bucket: 'day', breakdown: 'name' });
    expect(result.series).toHaveLength(NAMES.length);
    expect(result.other).toBeNull();
  });

  it('refuses a breakdown whose series times buckets exceed the point cap with 400 naming the bucket field, over HTTP', async () => {
    const server = await startTestServer(testDb.db);
    try {
      const client = createTelemetryClient({ url: server.url, apiKey: manyNamesKey });
      // 51 series x 1,441 minutes is over 20,000 points; without the breakdown the same range is fine.
      const refused = await client.telemetry.stats.timeseries
        .query({ ...DAY, bucket: 'minute', breakdown: 'name', seriesLimit: 50 })
        .catch((caught: unknown) => caught);
      expect(refused).toBeInstanceOf(TRPCClientError);
      const error = refused as TRPCClientError<AppRouter>;
      expect(error.data?.httpStatus).toBe(400);
      expect(error.data?.issues?.[0]?.path).toBe('bucket');
      expect(error.message).toContain('points');
      await expect(client.telemetry.stats.timeseries.query({ ...DAY, bucket: 'minute', breakdown: 'name', seriesLimit: 51 })).rejects.toMatchObject({
        data: { httpStatus: 400 },
      });
      const single = await client.telemetry.stats.timeseries.query({ ...DAY, bucket: 'minute' });
      expect(single.series[0]!.points).toHaveLength(1440);
    } finally {
      await server.close();
    }
  });
});

describe('telemetry.events.list pages are bounded in bytes', () => {
  it('ends a page of large events early and pages on to the rest, each event exactly once, over HTTP', async () => {
    const large = randomUUID();
    // 200 events of 30 KB of metadata: 6 MB, more than one page may hold.
    const rows = Array.from({ length: 200 }, (_, i) =>
      event(new Date(Date.UTC(2026, 9, 29, 12, 0, i)), { workspaceId: large, metadata: { blob: 'x'.repeat(30_000) } }),
    );
    await createEventWriter(testDb.db).write(rows);
    await registerTestWorkspaces(testDb.db, large);
    const key = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId: large })).key;
    const server = await startTestServer(testDb.db);
    try {
      const client = createTelemetryClient({ url: server.url, apiKey: key });
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await client.telemetry.events.list.query({ limit: 500, ...(cursor && { cursor }) });
        pages.push(page.events.map((e) => e.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor && pages.length < 10);
      expect(pages.length).toBeGreaterThan(1);
      expect(pages.every((ids) => ids.length * 30_000 <= LIST_PAGE_MAX_METADATA_BYTES)).toBe(true);
      expect(pages.flat()).toEqual([...rows].reverse().map((e) => e.id));
    } finally {
      await server.close();
    }
  });
});

describe('stats.top', () => {
  it.each(['name', 'targetId', 'userId', 'source'] as const)('ranks %s by count like a plain count does', async (by) => {
    const field = { name: 'name', targetId: 'targetId', userId: 'userId', source: 'source' }[by] as keyof EventRow;
    const result = await reader().telemetry.stats.top({ from: FROM, to: TO, by, limit: 3 });
    const counts = new Map<string, number>();
    for (const e of seeded) if (e[field] !== null) counts.set(String(e[field]), (counts.get(String(e[field])) ?? 0) + 1);
    const expected = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 3)
      .map(([key, count]) => ({ key, count }));
    expect(result.items).toEqual(expected);
  });
});

describe('stats.percentiles', () => {
  /** percentile_cont: linear interpolation between the closest ranks. */
  function percentile(sorted: number[], p: number): number {
    const rank = p * (sorted.length - 1);
    const low = Math.floor(rank);
    return sorted[low]! + (sorted[Math.min(low + 1, sorted.length - 1)]! - sorted[low]!) * (rank - low);
  }

  it('matches percentiles computed over the same perf.metric values, overall and per day', async () => {
    const result = await reader().telemetry.stats.percentiles({ from: FROM, to: TO, name: 'LCP', bucket: 'day' });
    const values = seeded
      .filter((e) => e.name === 'LCP')
      .map((e) => (e.metadata as { value: number }).value)
      .sort((a, b) => a - b);
    expect(result.overall.count).toBe(values.length);
    expect(result.overall.min).toBe(values[0]);
    expect(result.overall.max).toBe(values[values.length - 1]);
    expect(result.overall.p50).toBeCloseTo(percentile(values, 0.5), 6);
    expect(result.overall.p95).toBeCloseTo(percentile(values, 0.95), 6);
    expect(result.overall.p99).toBeCloseTo(percentile(values, 0.99), 6);
    expect(result.unit).toBe((seeded.find((e) => e.name === 'LCP')!.metadata as { unit: string }).unit);
    expect(result.buckets).toHaveLength(8);
    const day = result.buckets![2]!;
    const dayStart = new Date(day.start);
    const dayValues = seeded
      .filter((e) => e.name === 'LCP' && inRange(e, dayStart, new Date(dayStart.getTime() + 86_400_000)))
      .map((e) => (e.metadata as { value: number }).value)
      .sort((a, b) => a - b);
    expect(day.count).toBe(dayValues.length);
    expect(day.p90).toBeCloseTo(percentile(dayValues, 0.9), 6);
  });

  it('answers count 0 and nulls for a range without values', async () => {
    const result = await reader().telemetry.stats.percentiles({ from: new Date('2025-01-01T00:00:00Z'), to: new Date('2025-01-02T00:00:00Z') });
    expect(result.overall).toEqual({ count: 0, min: null, max: null, p50: null, p75: null, p90: null, p95: null, p99: null });
    expect(result.unit).toBeNull();
  });
});

describe('stats.funnel', () => {
  it('counts users who did each step in order within the window, like a plain walk over their events', async () => {
    const steps = ['page.view', 'signup.start', 'signup.done'];
    const windowSeconds = 6 * 3_600;
    const result = await reader().telemetry.stats.funnel({ from: FROM, to: TO, windowSeconds, steps: steps.map((name) => ({ name })) });
    const expected = steps.map(() => 0);
    for (const user of USERS) {
      const mine = seeded.filter((e) => e.userId === user).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
      const first = mine.find((e) => e.name === steps[0] && inRange(e, FROM, TO));
      if (!first) continue;
      expected[0]! += 1;
      let at = first.createdAt;
      for (let s = 1; s < steps.length; s += 1) {
        const next = mine.find((e) => e.name === steps[s] && e.createdAt > at && e.createdAt.getTime() <= first.createdAt.getTime() + windowSeconds * 1000);
        if (!next) break;
        expected[s]! += 1;
        at = next.createdAt;
      }
    }
    expect(result.steps.map((s) => s.users)).toEqual(expected);
    // The window must actually cut some users off, or this test proves little.
    expect(expected[2]).toBeLessThan(expected[0]!);
    expect(expected[2]).toBeGreaterThan(0);
    expect(result.steps[1]!.conversionFromPrevious).toBeCloseTo(expected[1]! / expected[0]!, 9);
  });
});

describe('stats.anomalies', () => {
  it('flags a spike against a robust trailing baseline and leaves ordinary buckets alone', () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    const counts = [10, 12, 9, 11, 10, 13, 11, 10, 12, 95, 11, 10];
    const series = counts.map((count, i) => ({ start: new Date(start + i * 86_400_000), count }));
    const points = detectAnomalies({ history: series.slice(0, 8), points: series.slice(8), bucket: 'day', threshold: 3.5, recordedSince: new Date(start) });
    expect(points.map((p) => p.anomaly)).toEqual([false, true, false, false]);
    expect(points[1]!.expected).toBe(median(counts.slice(0, 9)));
    expect(points[1]!.baseline).toBe('trailing');
  });

  it('uses the same hour of the week once three weeks of history exist', () => {
    const start = Date.parse('2026-01-05T00:00:00Z');
    // A strong daily rhythm: busy at 12:00, quiet at night. A normal busy noon is no anomaly.
    const hourly = Array.from({ length: 4 * 168 }, (_, i) => ({ start: new Date(start + i * 3_600_000), count: i % 24 === 12 ? 100 : 5 }));
    const points = detectAnomalies({
      history: hourly.slice(0, 3 * 168),
      points: hourly.slice(3 * 168),
      bucket: 'hour',
      threshold: 3.5,
      recordedSince: new Date(start),
    });
    expect(points.every((p) => p.baseline === 'hour_of_week')).toBe(true);
    expect(points.some((p) => p.anomaly)).toBe(false);
  });

  it('answers through the procedure with one point per bucket', async () => {
    const result = await reader().telemetry.stats.anomalies({ from: new Date('2026-11-03T00:00:00Z'), to: TO, bucket: 'hour' });
    expect(result.points).toHaveLength(48);
    expect(result.points.reduce((sum, p) => sum + p.observed, 0)).toBe(seeded.filter((e) => inRange(e, new Date('2026-11-03T00:00:00Z'), TO)).length);
  });

  describe('over HTTP', () => {
    const HOUR = 3_600_000;
    const WEEK = 168 * HOUR;
    let server: Awaited<ReturnType<typeof startTestServer>>;
    const clientFor = (apiKey: string) => createTelemetryClient({ url: server.url, apiKey });
    async function seedCounts(workspace: string, counts: readonly (readonly [Date, number])[]) {
      // Before the seeded partitions: these land in the default partition.
      const rows = counts.flatMap(([hour, count]) =>
        Array.from({ length: count }, (_, i) => event(new Date(hour.getTime() + i * 1000), { workspaceId: workspace })),
      );
      const writer = createEventWriter(testDb.db);
      for (let i = 0; i < rows.length; i += 500) await writer.write(rows.slice(i, i + 500));
      await registerTestWorkspaces(testDb.db, workspace);
      return (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId: workspace })).key;
    }
    beforeAll(async () => {
      server = await startTestServer(testDb.db);
    });
    afterAll(async () => {
      await server?.close();
    });

    it("gives an hour the same verdict whatever the range's start, comparing it with exactly the same hour of the four weeks before", async () => {
      // The same hour of the four weeks before: about 10 events; five and more weeks before: 100.
      // 100 now is an anomaly against the four weeks before, whatever earlier weeks held.
      const hour = new Date('2026-09-16T14:00:00Z');
      const key = await seedCounts(randomUUID(), [
        [hour, 100],
        ...[10, 11, 9, 10].map((count, i) => [new Date(hour.getTime() - (i + 1) * WEEK), count] as const),
        ...[5, 6, 7, 8, 9].map((weeksBack) => [new Date(hour.getTime() - weeksBack * WEEK), 100] as const),
      ]);
      const to = new Date(hour.getTime() + HOUR);
      const verdict = async (from: Date) => {
        const result = await clientFor(key).telemetry.stats.anomalies.query({ from, to, bucket: 'hour' });
        return result.points.find((p) => p.start === hour.toISOString())!;
      };
      const short = await verdict(new Date(hour.getTime() - 24 * HOUR));
      const long = await verdict(new Date(hour.getTime() - 5 * WEEK));
      expect(short).toMatchObject({ observed: 100, expected: 10, anomaly: true, baseline: 'hour_of_week' });
      expect(long).toEqual(short);
    });

    it('flags nothing in a fresh workspace with 24 busy hours and says plainly that history is insufficient', async () => {
      const firstHour = new Date('2026-09-20T00:00:00Z');
      // A daily rhythm: quiet nights, a busy afternoon.
      const counts = Array.from({ length: 24 }, (_, h) => [new Date(firstHour.getTime() + h * HOUR), h < 7 ? 2 : 10 + ((h * 7) % 30)] as const);
      const key = await seedCounts(randomUUID(), counts);
      const result = await clientFor(key).telemetry.stats.anomalies.query({ from: firstHour, to: new Date(firstHour.getTime() + 24 * HOUR), bucket: 'hour' });
      expect(result.status).toBe('insufficient_history');
      expect(result.history).toEqual({ since: firstHour.toISOString(), requiredDays: 21 });
      expect(result.points).toHaveLength(24);
      expect(result.points.filter((p) => p.anomaly)).toEqual([]);
      expect(result.points.every((p) => p.baseline === 'insufficient' && p.expected === null)).toBe(true);
      expect(result.points.map((p) => p.observed)).toEqual(counts.map(([, count]) => count));

      const days = await clientFor(key).telemetry.stats.anomalies.query({
        from: new Date('2026-09-10T00:00:00Z'),
        to: new Date('2026-09-21T00:00:00Z'),
        bucket: 'day',
      });
      expect(days.status).toBe('insufficient_history');
      expect(days.points.some((p) => p.anomaly)).toBe(false);
    });

    it('judges only the hours with three recorded weeks before them, and says the history is partial', async () => {
      // One event an hour from `since` on, for 22 days; the range spans the 21st and 22nd day.
      const since = new Date('2026-08-01T00:00:00Z');
      const key = await seedCounts(
        randomUUID(),
        Array.from({ length: 22 * 24 }, (_, h) => [new Date(since.getTime() + h * HOUR), 1] as const),
      );
      const from = new Date(since.getTime() + 20 * 24 * HOUR);
      const result = await clientFor(key).telemetry.stats.anomalies.query({ from, to: new Date(from.getTime() + 48 * HOUR), bucket: 'hour' });
      expect(result.status).toBe('partial_history');
      expect(result.points.slice(0, 24).every((p) => p.baseline === 'insufficient' && !p.anomaly)).toBe(true);
      expect(result.points.slice(24).every((p) => p.baseline === 'hour_of_week' && p.expected === 1 && !p.anomaly)).toBe(true);
    });
  });
});

describe('telemetry.events.list', () => {
  it('pages through every matching event newest first, with no repeats and no gaps', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await reader().telemetry.events.list({ from: FROM, to: TO, source: 'web', limit: 37, ...(cursor && { cursor }) });
      seen.push(...page.events.map((e) => e.id));
      expect(page.events.every((e) => e.workspaceId === workspaceId && e.source === 'web')).toBe(true);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const expected = seeded
      .filter((e) => e.source === 'web' && inRange(e, FROM, TO))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .map((e) => e.id);
    expect(seen).toEqual(expected);
  });

  it('filters by user, target and metadata containment', async () => {
    const user = USERS[3]!;
    const page = await reader().telemetry.events.list({ userId: user, metadata: { plan: 'pro' }, limit: 500 });
    const expected = seeded.filter((e) => e.userId === user && (e.metadata as { plan?: string }).plan === 'pro');
    expect(page.events.map((e) => e.id).sort()).toEqual(expected.map((e) => e.id).sort());
    const targeted = await reader().telemetry.events.list({ targetType: 'button', targetId: 'a', limit: 500 });
    expect(targeted.events).toHaveLength(seeded.filter((e) => e.targetType === 'button' && e.targetId === 'a').length);
  });

  it('pages and reads events whose times carry microseconds (written by other tools) exactly once', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, id] of ids.entries()) {
      const at = `2025-06-01T12:00:00.000${i}01Z`;
      await testDb.db.rows(sql`insert into telemetry.event_ids (id, workspace_id, created_at) values (${id}, ${workspaceId}, ${at}::timestamptz)`);
      await testDb.db.rows(
        sql`insert into telemetry.events (id, workspace_id, source, event_type, name, created_at) values (${id}, ${workspaceId}, 'web', 'custom', 'micro', ${at}::timestamptz)`,
      );
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await reader().telemetry.events.list({ name: 'micro', limit: 1, ...(cursor && { cursor }) });
      seen.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect((await reader().telemetry.events.get({ id: ids[1]! })).name).toBe('micro');
  });

  it('refuses a forged cursor with 400', async () => {
    await expect(reader().telemetry.events.list({ cursor: 'not-a-cursor' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

describe('workspace scoping of statistics', () => {
  it('never counts another workspace, and refuses to name it', async () => {
    const result = await reader().telemetry.stats.top({ from: FROM, to: TO, by: 'name', limit: 100 });
    expect(result.items.reduce((sum, i) => sum + i.count, 0)).toBe(seeded.length);
    await expect(reader().telemetry.stats.top({ workspaceId: otherWorkspace, from: FROM, to: TO, by: 'name' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('partition pruning', () => {
  it('reads only the partitions a time-bounded query touches', async () => {
    const plan = await testDb.db.rows<Record<string, string>>(sql`
      explain select count(*) from telemetry.events e
      where e.workspace_id = ${workspaceId} and e.created_at >= ${'2026-11-01T00:00:00Z'}::timestamptz and e.created_at < ${'2026-11-02T00:00:00Z'}::timestamptz`);
    const text = plan.map((row) => Object.values(row).join(' ')).join('\n');
    expect(text).toContain('events_p20261101');
    expect(text).not.toContain('events_p20261031');
    expect(text).not.toContain('events_p20261102');
    expect(text).not.toContain('events_default');
  });
});

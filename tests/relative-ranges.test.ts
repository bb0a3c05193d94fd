import { randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { ensureDailyPartitions } from '../db/partitions.ts';
import { createEventQueries } from '../server/services/stats/queries.ts';
import { createStatsService } from '../server/services/stats/stats.ts';
import type { Services } from '../server/trpc/context.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, createTestWorkspace, procedureCaller, startTestServer, testServices, type TestKeys, type TestServer } from './support/app.ts';

/**
 * `range: "24h"` instead of `from` and `to`, on events.list and every statistic. Procedure tests
 * pin the clock the range ends at; the /api tests run on the real clock, with events far enough
 * either side of the range's start that a second more or less cannot matter.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// The pinned clock: mid-minute, so the range's end (the next whole minute) differs from it.
const NOW = new Date('2026-11-20T10:30:15.000Z');
const END = new Date('2026-11-20T10:31:00.000Z');

let testDb: TestDatabase;
let keys: TestKeys;
let workspaceId: string;
let pinned: Services;
let server: TestServer;

function row(createdAt: Date, name: string): EventRow {
  return {
    id: randomUUID(),
    workspaceId,
    userId: randomUUID(),
    source: 'web',
    eventType: 'ui.interaction',
    name,
    targetType: null,
    targetId: null,
    metadata: {},
    createdAt,
    receivedAt: createdAt,
  };
}

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  workspaceId = await createTestWorkspace(testDb.db);
  const realNow = Date.now();
  await ensureDailyPartitions(testDb.db, { from: new Date(NOW.getTime() - 10 * DAY), to: new Date(NOW.getTime() + DAY) });
  await ensureDailyPartitions(testDb.db, { from: new Date(realNow - 10 * DAY), to: new Date(realNow + DAY) });
  await createEventWriter(testDb.db).write([
    // Around the pinned clock.
    row(new Date(NOW.getTime() - 5 * MINUTE), 'pinned.recent'),
    row(new Date(NOW.getTime() - HOUR), 'pinned.recent'),
    row(new Date(NOW.getTime() - 3 * HOUR), 'pinned.hours_ago'),
    row(new Date(NOW.getTime() - 3 * DAY), 'pinned.days_ago'),
    // Around the real clock, for the /api tests.
    row(new Date(realNow - HOUR), 'real.recent'),
    row(new Date(realNow - 3 * DAY), 'real.days_ago'),
  ]);
  // The read verbs on a pinned clock, wherever a procedure takes them (with a deadline or not).
  const queries = createEventQueries({ db: testDb.db, now: () => NOW });
  const base = testServices(testDb.db);
  const reads = { eventReader: { ...base.eventReader, listEvents: queries.listEvents }, stats: createStatsService(queries) };
  pinned = { ...base, ...reads, readsUntil: () => reads };
  server = await startTestServer(testDb.db);
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

const reader = () => procedureCaller(testDb.db, { apiKey: keys.admin, services: pinned });

async function refusal(call: Promise<unknown>): Promise<{ path: string; message: string }[]> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TRPCError);
  expect((error as TRPCError).code).toBe('BAD_REQUEST');
  const { inputIssues } = await import('../server/trpc/errors.ts');
  return inputIssues(error as TRPCError) ?? [];
}

describe('a relative range on the procedures', () => {
  it('stats.timeseries with range "2h" answers what from and to of the two hours ending at the next whole minute answer', async () => {
    const relative = await reader().telemetry.stats.timeseries({ workspaceId, range: '2h', bucket: 'hour' });
    const absolute = await reader().telemetry.stats.timeseries({ workspaceId, from: new Date(END.getTime() - 2 * HOUR), to: END, bucket: 'hour' });
    expect(relative).toEqual(absolute);
    expect(relative.series[0]?.total).toBe(2);
    expect(relative.series[0]?.points.map((point) => point.start)).toEqual([
      '2026-11-20T08:00:00.000Z',
      '2026-11-20T09:00:00.000Z',
      '2026-11-20T10:00:00.000Z',
    ]);
  });

  it('stats.top counts only the events inside the relative range', async () => {
    const day = await reader().telemetry.stats.top({ workspaceId, range: '24h', by: 'name' });
    expect(day.items).toEqual(
      expect.arrayContaining([
        { key: 'pinned.recent', count: 2 },
        { key: 'pinned.hours_ago', count: 1 },
      ]),
    );
    expect(day.items.map((item) => item.key)).not.toContain('pinned.days_ago');

    const week = await reader().telemetry.stats.top({ workspaceId, range: '1w', by: 'name' });
    expect(week.items).toEqual(expect.arrayContaining([{ key: 'pinned.days_ago', count: 1 }]));

    const halfHour = await reader().telemetry.stats.top({ workspaceId, range: '30m', by: 'name' });
    expect(halfHour.items).toEqual([{ key: 'pinned.recent', count: 1 }]);
  });

  it('events.list with range "2h" lists the events of the last two hours, newest first', async () => {
    const { events } = await reader().telemetry.events.list({ workspaceId, range: '2h', eventType: 'ui.interaction' });
    expect(events.map((event) => event.name)).toEqual(['pinned.recent', 'pinned.recent']);
    expect(events[0]?.createdAt).toBe(new Date(NOW.getTime() - 5 * MINUTE).toISOString());
  });

  it('funnel, percentiles and anomalies accept a relative range too', async () => {
    const funnel = await reader().telemetry.stats.funnel({ workspaceId, range: '7d', steps: [{ name: 'pinned.days_ago' }, { name: 'pinned.recent' }] });
    expect(funnel.steps.map((step) => step.users)).toEqual([1, 0]);
    const percentiles = await reader().telemetry.stats.percentiles({ workspaceId, range: '24h', eventType: 'ui.interaction', field: 'value' });
    expect(percentiles.overall.count).toBe(0);
    const anomalies = await reader().telemetry.stats.anomalies({ workspaceId, range: '2d', bucket: 'hour' });
    expect(anomalies.points).toHaveLength(49);
    expect(anomalies.points.at(-1)?.start).toBe('2026-11-20T10:00:00.000Z');
  });

  it.each([
    ['24x', 'A relative range is a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): e.g. "30m", "24h", "7d", "2w"'],
    ['-24h', 'A relative range is a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): e.g. "30m", "24h", "7d", "2w"'],
    ['24 h', 'A relative range is a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): e.g. "30m", "24h", "7d", "2w"'],
    ['1.5h', 'A relative range is a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): e.g. "30m", "24h", "7d", "2w"'],
    ['0d', 'A relative range must be longer than zero, e.g. "24h"'],
    ['401d', 'A relative range may reach back at most 400 days'],
    ['58w', 'A relative range may reach back at most 400 days'],
    ['9999999m', 'A relative range is a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): e.g. "30m", "24h", "7d", "2w"'],
  ])('range %j is refused once, at "range", in words', async (range, message) => {
    expect(await refusal(reader().telemetry.stats.top({ workspaceId, range, by: 'name' }))).toEqual([{ path: 'range', message }]);
    expect(await refusal(reader().telemetry.events.list({ workspaceId, range }))).toEqual([{ path: 'range', message }]);
  });

  it('a relative range beside from or to is refused at "range"', async () => {
    expect(await refusal(reader().telemetry.stats.top({ workspaceId, range: '24h', from: NOW, by: 'name' }))).toEqual([
      { path: 'range', message: '"range" replaces "from" and "to": send either "range" or both "from" and "to"' },
    ]);
    expect(await refusal(reader().telemetry.events.list({ workspaceId, range: '24h', to: NOW }))).toEqual([
      { path: 'range', message: '"range" replaces "from" and "to": send one or the other' },
    ]);
  });

  it('a statistic without any range names from and to once each', async () => {
    expect(await refusal(reader().telemetry.stats.top({ workspaceId, by: 'name' }))).toEqual([
      { path: 'from', message: 'Required: "from", or a relative "range" such as "24h" instead of "from" and "to"' },
      { path: 'to', message: 'Required: "to", or a relative "range" such as "24h" instead of "from" and "to"' },
    ]);
  });

  it('a relative range counts against the bucket limits like from and to', async () => {
    const issues = await refusal(reader().telemetry.stats.timeseries({ workspaceId, range: '30d', bucket: 'minute' }));
    expect(issues).toEqual([{ path: 'bucket', message: 'At most 10000 buckets: choose a larger bucket or a shorter range' }]);
  });
});

describe('a relative range on /api', () => {
  async function post(path: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${server.url}/api${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.admin}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('POST /api/stats/top with range "24h" counts the last day only', async () => {
    const answer = await post('/stats/top', { workspaceId, range: '24h', by: 'name' });
    expect(answer.status).toBe(200);
    expect(answer.body.items).toEqual([{ key: 'real.recent', count: 1 }]);
    const week = await post('/stats/top', { workspaceId, range: '7d', by: 'name' });
    expect(week.body.items).toEqual(
      expect.arrayContaining([
        { key: 'real.days_ago', count: 1 },
        { key: 'real.recent', count: 1 },
      ]),
    );
  });

  it('POST /api/events/list with range "24h" lists the last day only', async () => {
    const answer = await post('/events/list', { workspaceId, range: '24h', name: 'real.recent' });
    expect(answer.status).toBe(200);
    expect((answer.body.events as { name: string }[]).map((event) => event.name)).toEqual(['real.recent']);
    const older = await post('/events/list', { workspaceId, range: '24h', name: 'real.days_ago' });
    expect(older.body.events).toEqual([]);
  });

  it('POST /api/stats/timeseries with a bad range is a 400 naming "range"', async () => {
    const answer = await post('/stats/timeseries', { workspaceId, range: '7 days', bucket: 'hour' });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({
      data: {
        issues: [
          {
            path: 'range',
            message: 'A relative range is a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): e.g. "30m", "24h", "7d", "2w"',
          },
        ],
      },
    });
  });

  it('the OpenAPI document describes range beside from and to on every read that takes a time range', async () => {
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<
        string,
        {
          post?: {
            requestBody: { content: { 'application/json': { schema: { properties: Record<string, { description?: string }>; required?: string[] } } } };
          };
        }
      >;
    };
    for (const path of ['/events/list', '/stats/timeseries', '/stats/top', '/stats/percentiles', '/stats/funnel', '/stats/anomalies']) {
      const schema = document.paths[path]?.post?.requestBody.content['application/json'].schema;
      expect(schema?.properties.range?.description, path).toContain('"24h"');
      expect(schema?.properties.from, path).toBeDefined();
      expect(schema?.required ?? [], path).not.toContain('from');
    }
  });
});

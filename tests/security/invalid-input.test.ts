import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeyService } from '../../server/services/keys/keys.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { capturingLogger, startTestServer, type LogRecord, type TestServer, registerTestWorkspaces } from '../support/app.ts';

let testDb: TestDatabase;
let server: TestServer;
let readKey: string;
let logLines: LogRecord[];
const workspaceId = randomUUID();

beforeAll(async () => {
  testDb = await openTestDatabase();
  await registerTestWorkspaces(testDb.db, workspaceId);
  readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
  const { logger, lines } = capturingLogger();
  logLines = lines;
  server = await startTestServer(testDb.db, { logger });
});
// Each test looks only at what its own calls logged.
beforeEach(() => {
  logLines.length = 0;
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

interface Refusal {
  status: number;
  issues: { path: string; message: string }[];
}

/** A query on the tRPC face, as the typed client sends it (superjson in the query string). */
async function trpcQuery(path: string, json: Record<string, unknown>, dates: string[] = []): Promise<Refusal> {
  const values = Object.fromEntries(dates.map((field) => [field, ['Date']]));
  const input = { json, ...(dates.length > 0 && { meta: { values, v: 1 } }) };
  const response = await fetch(`${server.url}/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`, {
    headers: { authorization: `Bearer ${readKey}` },
  });
  const body = (await response.json()) as { error?: { json: { data: { issues?: Refusal['issues'] } } } };
  return { status: response.status, issues: body.error?.json.data.issues ?? [] };
}

async function apiPost(path: string, body: Record<string, unknown>): Promise<Refusal> {
  const response = await fetch(`${server.url}/api/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${readKey}` },
    body: JSON.stringify(body),
  });
  const parsed = (await response.json()) as { data?: { issues?: Refusal['issues'] } };
  return { status: response.status, issues: parsed.data?.issues ?? [] };
}

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const day = { from: '2026-01-01T00:00:00.000Z', to: '2026-01-08T00:00:00.000Z' };
const procedureFailures = () => logLines.filter((line) => line.line.includes('procedure failed') || line.line.includes('trpc error'));

describe('forged cursors', () => {
  it.each([
    ['a time past what a bigint holds', cursorOf({ t: '99999999999999999999', i: randomUUID() })],
    ['a time past year 9999', cursorOf({ t: '9223372036854775807', i: randomUUID() })],
    ['a time before year 1', cursorOf({ t: '-9223372036854775808', i: randomUUID() })],
    ['an id of dashes', cursorOf({ t: '1700000000000000', i: '------------------------------------' })],
    ['no object at all', cursorOf(null)],
    ['text that is not base64 JSON', 'not a cursor at all'],
  ])('are answered 400 naming cursor on both faces for %s, and nothing is logged as failed', async (_label, cursor) => {
    for (const refusal of [await trpcQuery('telemetry.events.list', { cursor }), await apiPost('events/list', { cursor })]) {
      expect(refusal.status).toBe(400);
      expect(refusal.issues[0]?.path).toBe('cursor');
    }
    expect(procedureFailures()).toEqual([]);
  });
});

describe('dates PostgreSQL cannot read', () => {
  it.each([
    ['year -5000 (a Date on the tRPC face)', 'telemetry.events.list', { from: '-005000-01-01T00:00:00.000Z' }, ['from'], 'from'],
    ['year -1 as the end of a range', 'telemetry.events.list', { to: '-000001-06-01T00:00:00.000Z' }, ['to'], 'to'],
    ['year 300000', 'telemetry.events.list', { from: '+300000-01-01T00:00:00.000Z' }, ['from'], 'from'],
    [
      'year -5000 in a timeseries',
      'telemetry.stats.timeseries',
      { from: '-005000-01-01T00:00:00.000Z', to: '-005000-06-01T00:00:00.000Z', bucket: 'week' },
      ['from', 'to'],
      'from',
    ],
    ['year 0 in top', 'telemetry.stats.top', { from: '0000-01-01T00:00:00.000Z', to: '0000-01-02T00:00:00.000Z', by: 'name' }, [], 'from'],
  ])('are answered 400 naming the field on the tRPC face for %s', async (_label, path, json, dates, field) => {
    const refusal = await trpcQuery(path, json, dates);
    expect(refusal.status).toBe(400);
    expect(refusal.issues[0]?.path).toBe(field);
    expect(procedureFailures()).toEqual([]);
  });

  it.each([
    ['events/list', { from: '0000-06-01T00:00:00Z' }, 'from'],
    ['stats/top', { from: '0000-06-01T00:00:00Z', to: '0000-06-02T00:00:00Z', by: 'name' }, 'from'],
  ])('are answered 400 naming the field on /api (%s, year 0)', async (path, body, field) => {
    const refusal = await apiPost(path, body);
    expect(refusal.status).toBe(400);
    expect(refusal.issues[0]?.path).toBe(field);
    expect(procedureFailures()).toEqual([]);
  });

  it.each([
    [
      'a funnel whose window would run past year 9999',
      'stats/funnel',
      { from: '9999-12-01T00:00:00Z', to: '9999-12-30T00:00:00Z', steps: [{ name: 'a' }, { name: 'b' }] },
      'to',
    ],
    [
      'anomalies whose history would start before year 1',
      'stats/anomalies',
      { from: '0001-01-10T00:00:00Z', to: '0001-01-12T00:00:00Z', bucket: 'hour' },
      'from',
    ],
    [
      'week buckets whose first week would start before year 1',
      'stats/timeseries',
      { from: '0001-01-01T00:00:00Z', to: '0001-02-01T00:00:00Z', bucket: 'week' },
      'from',
    ],
  ])('are answered 400 naming the field when %s', async (_label, path, body, field) => {
    const refusal = await apiPost(path, body);
    expect(refusal.status).toBe(400);
    expect(refusal.issues[0]?.path).toBe(field);
    expect(procedureFailures()).toEqual([]);
  });

  it('still lists from the first day of year 1', async () => {
    const refusal = await apiPost('events/list', { to: '0001-01-02T00:00:00Z' });
    expect(refusal.status).toBe(200);
    expect(procedureFailures()).toEqual([]);
  });
});

describe('time zones Node knows but PostgreSQL does not', () => {
  it.each([
    ['stats/timeseries', 'telemetry.stats.timeseries', { ...day, bucket: 'day', timeZone: 'US/Pacific-New' }],
    ['stats/timeseries (hour buckets)', 'telemetry.stats.timeseries', { ...day, bucket: 'hour', timeZone: 'US/Pacific-New' }],
    ['stats/percentiles', 'telemetry.stats.percentiles', { ...day, bucket: 'day', timeZone: 'US/Pacific-New' }],
    ['stats/anomalies', 'telemetry.stats.anomalies', { ...day, bucket: 'day', timeZone: 'US/Pacific-New' }],
  ])('are answered 400 naming timeZone on both faces (%s)', async (_label, path, json) => {
    const apiPath = path.replace('telemetry.', '').replace('.', '/');
    for (const refusal of [await trpcQuery(path, json), await apiPost(apiPath, json)]) {
      expect(refusal.status).toBe(400);
      expect(refusal.issues[0]).toMatchObject({ path: 'timeZone', message: expect.stringContaining('US/Pacific-New') });
    }
    expect(procedureFailures()).toEqual([]);
  });

  it('are accepted when both know them, whatever their case', async () => {
    expect((await apiPost('stats/timeseries', { ...day, bucket: 'day', timeZone: 'europe/berlin' })).status).toBe(200);
    expect((await apiPost('stats/timeseries', { ...day, bucket: 'day', timeZone: 'US/Pacific' })).status).toBe(200);
  });
});

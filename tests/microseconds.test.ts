import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type TelemetryClient } from '../client/index.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, startTestServer, type TestKeys, type TestServer, createTestWorkspace } from './support/app.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let server: TestServer;
let keys: TestKeys;

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  server = await startTestServer(testDb.db);
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

/** A recent time on a whole millisecond, as ISO 8601 without the trailing "Z". */
function recentMillisecond(): string {
  return new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000 + 123).toISOString().slice(0, -1);
}

/** Two UUIDs, the first sorting after the second: ordering by id alone would put them the wrong way round. */
function idsInReverseOrder(): [string, string] {
  const [a, b] = [randomUUID(), randomUUID()].sort();
  return [b!, a!];
}

async function readKeyFor(workspaceId: string): Promise<string> {
  return (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
}

async function storedMicros(id: string): Promise<string | undefined> {
  const [row] = await testDb.db.rows<{ micros: string }>(
    sql`select (extract(epoch from created_at) * 1000000)::bigint::text as micros from telemetry.events where id = ${id}`,
  );
  return row?.micros;
}

/** Epoch microseconds of an ISO time ending in Z, exactly. */
const micros = (iso: string) => String(BigInt(Date.parse(iso)) * 1000n + BigInt((/\.(\d+)Z$/.exec(iso)?.[1] ?? '').padEnd(6, '0').slice(3, 6)));

const api = (path: string, body: unknown, key: string) =>
  fetch(`${server.url}/api/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });

describe('createdAt microseconds on /api', () => {
  it('are stored, answered in receipts, events.get and events.list, and order a page and its cursor', async () => {
    const workspaceId = await newWorkspace();
    const readKey = await readKeyFor(workspaceId);
    const base = recentMillisecond();
    const [earlierId, laterId] = idsInReverseOrder();
    const earlier = `${base}456Z`;
    const later = `${base}457Z`;
    const event = (id: string, createdAt: string) => ({ id, workspaceId, source: 'web', eventType: 'custom', name: 'micro', createdAt });

    const response = await api('events/batch', { events: [event(earlierId, earlier), event(laterId, later)] }, keys.ingest);
    const receipts = ((await response.json()) as { receipts: { status: string; createdAt: string }[] }).receipts;
    expect(receipts.map((r) => [r.status, r.createdAt])).toEqual([
      ['accepted', earlier],
      ['accepted', later],
    ]);
    expect(await storedMicros(earlierId)).toBe(micros(earlier));

    const retry = await api('events/batch', { events: [event(earlierId, earlier)] }, keys.ingest);
    expect(((await retry.json()) as { receipts: { status: string; createdAt: string }[] }).receipts[0]).toMatchObject({
      status: 'duplicate',
      createdAt: earlier,
    });

    const single = await fetch(`${server.url}/api/events/${earlierId}`, { headers: { authorization: `Bearer ${readKey}` } });
    expect(((await single.json()) as { createdAt: string }).createdAt).toBe(earlier);

    const first = (await (await api('events/list', { limit: 1 }, readKey)).json()) as { events: { id: string; createdAt: string }[]; nextCursor: string };
    expect(first.events.map((e) => [e.id, e.createdAt])).toEqual([[laterId, later]]);
    const second = (await (await api('events/list', { limit: 1, cursor: first.nextCursor }, readKey)).json()) as {
      events: { id: string; createdAt: string }[];
      nextCursor: string | null;
    };
    expect(second.events.map((e) => [e.id, e.createdAt])).toEqual([[earlierId, earlier]]);
    expect(second.nextCursor).toBeNull();

    const bounded = (await (await api('events/list', { from: later }, readKey)).json()) as { events: { id: string }[] };
    expect(bounded.events.map((e) => e.id)).toEqual([laterId]);
  });

  it('a single event keeps them in its receipt, and nine digits ending in zeros count as six', async () => {
    const workspaceId = await newWorkspace();
    const createdAt = `${recentMillisecond()}789000Z`;
    const response = await api('events', { workspaceId, source: 'web', eventType: 'custom', name: 'nine', createdAt }, keys.ingest);
    expect(response.status).toBe(200);
    const { id, createdAt: answered } = (await response.json()) as { id: string; createdAt: string };
    expect(answered).toBe(createdAt.replace('789000Z', '789Z'));
    expect(await storedMicros(id)).toBe(micros(answered));
  });

  it('finer than a microsecond is refused with 400 naming createdAt, never truncated', async () => {
    const workspaceId = await newWorkspace();
    const createdAt = `${recentMillisecond()}4567Z`;
    const response = await api('events', { workspaceId, source: 'web', eventType: 'custom', name: 'nanos', createdAt }, keys.ingest);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { data: { issues: { path: string; message: string }[] } };
    expect(body.data.issues[0]).toMatchObject({ path: 'createdAt', message: expect.stringContaining('microsecond') });

    const batch = await api('events/batch', { events: [{ workspaceId, source: 'web', eventType: 'custom', name: 'nanos', createdAt }] }, keys.ingest);
    expect(((await batch.json()) as { receipts: unknown[] }).receipts[0]).toMatchObject({ status: 'rejected', path: 'createdAt' });
  });
});

describe('createdAt microseconds on the tRPC face', () => {
  let ingest: TelemetryClient;
  beforeAll(() => {
    ingest = createTelemetryClient({ url: server.url, apiKey: keys.ingest });
  });

  it('are kept through the clock-skew correction and read back by events.get and events.list', async () => {
    const workspaceId = await newWorkspace();
    const reader = createTelemetryClient({ url: server.url, apiKey: await readKeyFor(workspaceId) });
    const base = recentMillisecond();
    const [earlierId, laterId] = idsInReverseOrder();
    const result = await ingest.telemetry.ingestBatch.mutate({
      sentAt: new Date(),
      events: [
        { id: earlierId, workspaceId, source: 'web', eventType: 'custom', name: 'skew', createdAt: `${base}001Z` },
        { id: laterId, workspaceId, source: 'web', eventType: 'custom', name: 'skew', createdAt: `${base}002Z` },
      ],
    });
    const [first, second] = result.receipts as { status: string; createdAt: string }[];
    // The correction moves both by whole milliseconds (the clocks'), never their microseconds.
    expect(first?.createdAt).toMatch(/\.\d{3}001Z$/);
    expect(second?.createdAt).toMatch(/\.\d{3}002Z$/);

    expect((await reader.telemetry.events.get.query({ id: earlierId })).createdAt).toBe(first?.createdAt);
    const page = await reader.telemetry.events.list.query({ limit: 1 });
    expect(page.events.map((e) => [e.id, e.createdAt])).toEqual([[laterId, second?.createdAt]]);
    const next = await reader.telemetry.events.list.query({ limit: 1, cursor: page.nextCursor! });
    expect(next.events.map((e) => [e.id, e.createdAt])).toEqual([[earlierId, first?.createdAt]]);
  });
});

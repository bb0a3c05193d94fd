import { TRPCClientError } from '@trpc/client';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type AppRouter } from '../client/index.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { startTestServer, testConfig, type TestServer, createTestWorkspace } from './support/app.ts';
import { storedEvents } from './support/events.ts';

/**
 * One bad event never fails others: not the other events of its batch, and not the calls of other
 * workspaces that share its group-commit flush. The flush here starts when it holds exactly the
 * two calls' events (INGEST_FLUSH_MAX_EVENTS), so both calls are always in the same flush.
 */
const EVENTS_PER_FLUSH = 4;
// Rejected by a CHECK constraint this file adds: an event that passes validation but that the
// database itself refuses, with a real PostgreSQL error.
const REFUSED_NAME = 'refused-by-the-database';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let server: TestServer;
beforeAll(async () => {
  testDb = await openTestDatabase();
  await maintainPartitions(testDb.db, { daysAhead: 1 });
  await testDb.db.rows(sql.raw(`alter table telemetry.events add constraint test_refused_name check (name <> '${REFUSED_NAME}')`));
  server = await startTestServer(testDb.db, {
    config: testConfig({ INGEST_FLUSH_MAX_EVENTS: String(EVENTS_PER_FLUSH), INGEST_FLUSH_DELAY_MS: '1000' }),
  });
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

/** A typed client with an ingest key bound to a new workspace. */
async function workspaceClient() {
  const workspaceId = await newWorkspace();
  const { key } = await createKeyService({ db: testDb.db }).createKey({ kind: 'ingest', workspaceId });
  return { workspaceId, client: createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${key}` } }) };
}

const event = (name: string, createdAt?: Date) => ({ source: 'web' as const, eventType: 'custom' as const, name, ...(createdAt && { createdAt }) });

describe('one bad event in a shared flush', () => {
  it('rejects an event whose skew-corrected time cannot be stored in its own receipt, and stores its batch neighbours and another workspace’s call from the same flush', async () => {
    const poisoned = await workspaceClient();
    const neighbour = await workspaceClient();
    // The earliest storable time, from a client whose clock runs a minute ahead: corrected for
    // that skew it lies in the year 0, which PostgreSQL refuses.
    const [poisonedResult, neighbourResult] = await Promise.all([
      poisoned.client.telemetry.ingestBatch.mutate({
        sentAt: new Date(Date.now() + 60_000),
        events: [event('before'), event('poison', new Date('0001-01-01T00:00:00.000Z')), event('after')],
      }),
      neighbour.client.telemetry.ingestBatch.mutate({ events: [event('neighbour')] }),
    ]);
    expect(poisonedResult.receipts.map((receipt) => receipt.status)).toEqual(['accepted', 'rejected', 'accepted']);
    expect(poisonedResult.receipts[1]).toMatchObject({ code: 'created_at_out_of_range', path: 'createdAt' });
    expect(neighbourResult.receipts.map((receipt) => receipt.status)).toEqual(['accepted']);
    expect((await storedEvents(testDb.db, poisoned.workspaceId)).map((row) => row.name).sort()).toEqual(['after', 'before']);
    expect((await storedEvents(testDb.db, neighbour.workspaceId)).map((row) => row.name)).toEqual(['neighbour']);
  });

  it('answers a sentAt outside the storable years with 400 at sentAt, and the other workspace’s call is stored', async () => {
    const poisoned = await workspaceClient();
    const neighbour = await workspaceClient();
    const [poisonedResult, neighbourResult] = await Promise.allSettled([
      poisoned.client.telemetry.ingestBatch.mutate({ sentAt: new Date(-8.64e15), events: [event('a', new Date()), event('b', new Date())] }),
      neighbour.client.telemetry.ingestBatch.mutate({ events: [event('neighbour')] }),
    ]);
    expect(poisonedResult.status).toBe('rejected');
    const error = (poisonedResult as PromiseRejectedResult).reason as TRPCClientError<AppRouter>;
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(error.data?.httpStatus).toBe(400);
    expect(error.data?.issues?.[0]?.path).toBe('sentAt');
    expect(neighbourResult).toMatchObject({ status: 'fulfilled', value: { accepted: 1 } });
    expect(await storedEvents(testDb.db, poisoned.workspaceId)).toHaveLength(0);
    expect(await storedEvents(testDb.db, neighbour.workspaceId)).toHaveLength(1);
  });

  it('rejects an event the database refuses in its own receipt, and stores the rest of its batch and another workspace’s call from the same flush', async () => {
    const poisoned = await workspaceClient();
    const neighbour = await workspaceClient();
    const [poisonedResult, neighbourResult] = await Promise.all([
      poisoned.client.telemetry.ingestBatch.mutate({ events: [event('before'), event(REFUSED_NAME), event('after')] }),
      neighbour.client.telemetry.ingestBatch.mutate({ events: [event('neighbour')] }),
    ]);
    expect(poisonedResult.receipts.map((receipt) => receipt.status)).toEqual(['accepted', 'rejected', 'accepted']);
    expect(poisonedResult.receipts[1]).toMatchObject({ index: 1, code: 'invalid_event', path: '' });
    expect(JSON.stringify(poisonedResult)).not.toMatch(/check|constraint|test_refused_name/i);
    expect(neighbourResult).toMatchObject({ accepted: 1, rejected: 0 });
    expect((await storedEvents(testDb.db, poisoned.workspaceId)).map((row) => row.name).sort()).toEqual(['after', 'before']);
    expect((await storedEvents(testDb.db, neighbour.workspaceId)).map((row) => row.name)).toEqual(['neighbour']);
    // The rollups count exactly what was stored.
    const [counted] = await testDb.db.rows<{ n: number | string }>(
      sql`select coalesce(sum(count), 0) as n from telemetry.event_counts_minute where workspace_id in (${poisoned.workspaceId}, ${neighbour.workspaceId})`,
    );
    expect(Number(counted?.n)).toBe(3);
  });

  it('answers a single event the database refuses with 400 on the plain-JSON face, and the other workspace’s calls are stored', async () => {
    const poisoned = await workspaceClient();
    const neighbour = await workspaceClient();
    const { key } = await createKeyService({ db: testDb.db }).createKey({ kind: 'ingest', workspaceId: poisoned.workspaceId });
    const [refused, ...neighbours] = await Promise.all([
      fetch(`${server.url}/api/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(event(REFUSED_NAME)),
      }),
      // Three more events make the flush.
      neighbour.client.telemetry.ingestBatch.mutate({ events: [event('n1'), event('n2'), event('n3')] }),
    ]);
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).not.toMatch(/check|constraint|test_refused_name|stack/i);
    expect(neighbours[0]).toMatchObject({ accepted: 3 });
    expect(await storedEvents(testDb.db, poisoned.workspaceId)).toHaveLength(0);
    expect(await storedEvents(testDb.db, neighbour.workspaceId)).toHaveLength(3);
  });
});

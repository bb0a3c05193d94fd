import { randomUUID } from 'node:crypto';
import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type AppRouter } from '../client/index.ts';
import { openPostgres, type PostgresDatabase } from '../db/database.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, servicesWith, startTestServer, testConfig, type TestKeys, type TestServer, createTestWorkspace } from './support/app.ts';
import { freePort } from './support/child-service.ts';

/**
 * A database that refuses connections (as PostgreSQL stopped with `pg_ctl stop -m immediate`
 * does: nothing listens on its port) is a retryable 503 with Retry-After on every procedure that
 * touches it, never a 500. tests/faults/postgres-outage.fault.ts does the same against a real
 * server that is stopped and started again.
 */
let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let keys: TestKeys;
let refusing: PostgresDatabase;
let allDown: TestServer;
let keysUp: TestServer;
beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  refusing = openPostgres({ url: `postgres://postgres@127.0.0.1:${await freePort()}/telemetry`, connectTimeoutSeconds: 1, maxConnections: 2 });
  const config = testConfig();
  // Every service on the refusing database: the key lookup is the first thing to fail.
  allDown = await startTestServer(refusing, { config });
  // Keys still verified (as when a key is cached), everything else on the refusing database.
  keysUp = await startTestServer(refusing, { config, services: servicesWith(refusing, { keys: createKeyService({ db: testDb.db }) }, config) });
});
afterAll(async () => {
  await allDown?.close();
  await keysUp?.close();
  await refusing?.close();
  await testDb?.drop();
});

async function expectRetryable503(response: Response) {
  expect(response.status).toBe(503);
  expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(JSON.stringify(await response.json())).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Failed query|select |stack/i);
}

const anEvent = { source: 'web', eventType: 'custom', name: 'x' } as const;

describe('a database that refuses connections', () => {
  it('answers an ingest call whose key is not cached with 503 and Retry-After, on the plain-JSON face and the typed client', async () => {
    await expectRetryable503(
      await fetch(`${allDown.url}/api/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}` },
        body: JSON.stringify(anEvent),
      }),
    );
    const client = createTelemetryClient({ url: allDown.url, headers: { authorization: `Bearer ${keys.ingest}` } });
    const error = await client.telemetry.ingestBatch.mutate({ events: [anEvent] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<AppRouter>).data).toMatchObject({ httpStatus: 503, code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: expect.any(Number) });
  });

  it('answers reads with 503 and Retry-After', async () => {
    const workspaceId = await newWorkspace();
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${keys.admin}` };
    await expectRetryable503(await fetch(`${keysUp.url}/api/events/list`, { method: 'POST', headers, body: JSON.stringify({ workspaceId }) }));
    await expectRetryable503(await fetch(`${keysUp.url}/api/events/${randomUUID()}?workspaceId=${workspaceId}`, { headers }));
    const client = createTelemetryClient({ url: keysUp.url, headers: { authorization: `Bearer ${keys.admin}` } });
    const error = await client.telemetry.stats.top
      .query({ workspaceId, from: new Date(Date.now() - 3_600_000), to: new Date(), by: 'name' })
      .catch((caught: unknown) => caught);
    expect((error as TRPCClientError<AppRouter>).data).toMatchObject({ httpStatus: 503, retryAfterSeconds: expect.any(Number) });
  });

  it('answers admin calls with 503 and Retry-After', async () => {
    const headers = { authorization: `Bearer ${keys.admin}` };
    await expectRetryable503(await fetch(`${keysUp.url}/api/admin/erasure/${randomUUID()}`, { headers }));
    await expectRetryable503(await fetch(`${keysUp.url}/api/admin/retention`, { headers }));
  });
});

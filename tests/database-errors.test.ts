import { randomUUID } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlRunner } from '../db/database.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, startTestServer, testConfig, type TestKeys, type TestServer, testServices } from './support/app.ts';

let testDb: TestDatabase;
let keys: TestKeys;
let server: TestServer;

/** The real database, except that every read is answered with a real 57014 raised by the database. */
function cancellingReads(runner: SqlRunner): SqlRunner {
  return {
    ...runner,
    async rows<Row>(_query: SQL): Promise<Row[]> {
      return runner.rows<Row>(sql.raw(`do $$ begin raise exception 'canceling statement due to statement timeout' using errcode = '57014'; end $$`));
    },
  } as SqlRunner;
}

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  const config = testConfig();
  server = await startTestServer(testDb.db, { config, services: testServices(testDb.db, { config, readPool: cancellingReads(testDb.db) }) });
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

describe('a statement the database cancelled', () => {
  it('is answered 503 with Retry-After, like a call that ran out of time, never 500', async () => {
    const response = await fetch(`${server.url}/api/events/${randomUUID()}?workspaceId=${randomUUID()}`, {
      headers: { authorization: `Bearer ${keys.admin}` },
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    const body = await response.text();
    expect(body).toContain('could not answer in time');
    expect(body).not.toContain('statement timeout');
  });
});

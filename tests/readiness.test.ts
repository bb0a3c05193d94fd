import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReadiness } from '../db/readiness.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { startTestServer, type TestServer } from './support/app.ts';

describe('readiness', () => {
  let testDb: TestDatabase;
  let server: TestServer;
  beforeAll(async () => {
    testDb = await openTestDatabase({ migrate: false });
    server = await startTestServer(testDb.db);
  });
  afterAll(async () => {
    await server?.close();
    await testDb?.drop();
  });

  it('is not ready before migrations are applied, and ready after', async () => {
    const before = await fetch(`${server.url}/readyz`);
    expect(before.status).toBe(503);
    expect(before.headers.get('retry-after')).toBe('2');
    expect(await before.json()).toEqual({ status: 'not_ready', reason: 'migrations_pending' });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    await testDb.db.migrate();
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('applies migrations idempotently', async () => {
    await testDb.db.migrate();
    await testDb.db.migrate();
    expect(await checkReadiness(testDb.db)).toEqual({ ready: true });
  });

  it('reports the database unreachable once it is gone', async () => {
    const gone = await openTestDatabase();
    await gone.drop();
    expect(await checkReadiness(gone.db)).toEqual({ ready: false, reason: 'database_unreachable' });
  });
});

import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openPostgres, type PostgresDatabase } from '../db/database.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTcpProxy, type TcpProxy } from './faults/support/tcp-proxy.ts';

const onPostgres = process.env.TEST_DB_KIND === 'postgres';

/**
 * The connection pool after an outage, on real Postgres behind a proxy the test controls. Once,
 * connection attempts refused during an outage left pool slots stuck for good, so the service
 * never served again without a restart.
 * PostgreSQL only: PGlite has no connections to lose.
 */
describe.runIf(onPostgres)('the database connection pool', () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  let db: PostgresDatabase;
  beforeAll(async () => {
    testDb = await openTestDatabase({ migrate: false });
    const target = new URL(testDb.url!);
    proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(testDb.url!);
    viaProxy.port = String(proxy.port);
    db = openPostgres({ url: viaProxy.toString(), maxConnections: 3, connectTimeoutSeconds: 1 });
  });
  afterAll(async () => {
    await db?.close();
    await proxy?.close();
    await testDb?.drop();
  });

  const ping = () => db.rows<{ one: number }>(sql`select 1 as one`);

  it('serves again within seconds once a database that refused connections is back, without a restart', async () => {
    await Promise.all(Array.from({ length: 6 }, ping));
    await proxy.stopListening();
    proxy.cut();
    await vi.waitFor(() => expect(proxy.openConnections()).toBe(0));
    // Every slot tries to reconnect while connections are refused; these wait for the database.
    const waiting = Array.from({ length: 12 }, () =>
      ping().then(
        () => 'answered',
        () => 'failed',
      ),
    );
    // The outage lasts long enough for those reconnects to be refused (a span of the fault, not a wait for an event).
    await new Promise((resolve) => setTimeout(resolve, 500));

    await proxy.listen();
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting'), 10_000));
    const outcomes = await Promise.race([Promise.all(waiting), timeout]);
    expect(outcomes).not.toBe('still waiting');
    expect(await Promise.all(Array.from({ length: 6 }, ping))).toHaveLength(6);
    expect(proxy.openConnections()).toBeLessThanOrEqual(3);
  });
});

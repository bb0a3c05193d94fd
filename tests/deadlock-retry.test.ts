import { randomUUID } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../client/index.ts';
import type { SqlRunner } from '../db/database.ts';
import { createJsonEventWriter, type EventRow } from '../db/event-writers.ts';
import { createGroupCommitter } from '../server/services/events/group-commit.ts';
import { createEventIngestor } from '../server/services/events/ingest.ts';
import { createWorkspaceService } from '../server/services/workspaces/workspaces.ts';
import type { TestDatabase } from './support/database.ts';
import { servicesWith, startTestServer, testConfig, type TestKeys, type TestServer, createTestWorkspace, openTestDatabaseWithKeys } from './support/app.ts';
import { storedEvents } from './support/events.ts';
import { waitUntil } from './faults/support/wait.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let keys: TestKeys;
beforeAll(async () => {
  ({ testDb, keys } = await openTestDatabaseWithKeys());
});
afterAll(async () => {
  await testDb?.drop();
});

/**
 * The real database, except that its first `failures` statements are answered with a real
 * PostgreSQL error of the given SQLSTATE, raised by the database and wrapped by Drizzle exactly
 * as a deadlock victim's would be.
 */
function failingFirst(runner: SqlRunner, sqlState: string, failures: number) {
  let calls = 0;
  return {
    calls: () => calls,
    runner: {
      async rows<Row>(query: SQL): Promise<Row[]> {
        calls += 1;
        if (calls <= failures) {
          await runner.rows(sql.raw(`do $$ begin raise exception 'deadlock detected (test)' using errcode = '${sqlState}'; end $$`));
        }
        return runner.rows<Row>(query);
      },
    } satisfies SqlRunner,
  };
}

/** The HTTP app whose ingest path writes through `runner`. */
async function serverWritingThrough(runner: SqlRunner): Promise<TestServer> {
  const config = testConfig();
  const committer = createGroupCommitter(createJsonEventWriter(runner), { ...config.groupCommit, maxConcurrentFlushes: 1 });
  const events = createEventIngestor({ db: testDb.db, limits: config.limits, committer, workspaces: createWorkspaceService({ db: testDb.db }) });
  return startTestServer(testDb.db, { config, services: servicesWith(testDb.db, { ingestor: events }, config) });
}

describe('a write rolled back by a deadlock', () => {
  it.each([
    ['40P01', 'a deadlock'],
    ['40001', 'a serialization failure'],
  ])('is run again when the database answers %s (%s) through Drizzle’s wrapper, and the caller’s events are stored once', async (sqlState) => {
    const failing = failingFirst(testDb.db, sqlState, 2);
    const server = await serverWritingThrough(failing.runner);
    try {
      const workspaceId = await newWorkspace();
      const client = createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${keys.ingest}` } });
      const result = await client.telemetry.ingestBatch.mutate({
        events: [
          { workspaceId, source: 'web', eventType: 'custom', name: 'a' },
          { workspaceId, source: 'web', eventType: 'custom', name: 'b' },
        ],
      });
      expect(result).toMatchObject({ accepted: 2, rejected: 0 });
      expect(failing.calls()).toBe(3);
      expect((await storedEvents(testDb.db, workspaceId)).map((row) => row.name).sort()).toEqual(['a', 'b']);
      const [counted] = await testDb.db.rows<{ n: number | string }>(
        sql`select coalesce(sum(count), 0) as n from telemetry.event_counts_minute where workspace_id = ${workspaceId}`,
      );
      expect(Number(counted?.n)).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('answers 503 with Retry-After after a few attempts when every attempt deadlocks', async () => {
    const failing = failingFirst(testDb.db, '40P01', Number.POSITIVE_INFINITY);
    const server = await serverWritingThrough(failing.runner);
    try {
      const response = await fetch(`${server.url}/api/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}` },
        body: JSON.stringify({ workspaceId: await newWorkspace(), source: 'web', eventType: 'custom', name: 'x' }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(JSON.stringify(await response.json())).not.toMatch(/deadlock|40P01|stack/i);
      // Bounded: a few attempts, not a loop.
      expect(failing.calls()).toBeLessThanOrEqual(5);
    } finally {
      await server.close();
    }
  });
});

const onPostgres = process.env.TEST_DB_KIND === 'postgres';

/**
 * Erasure subtracts from the rollup rows that concurrent flushes add to. A flush locks them in key
 * order; erasure must too, or an erasure holding a later row and a flush holding an earlier one
 * wait for each other (a deadlock, whose loser is a failed erasure or flush).
 *
 * PostgreSQL only: PGlite runs one statement at a time, so two transactions never interleave there.
 */
describe.runIf(onPostgres)('erasure and ingestion on the same rollup rows', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(testDb.db);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('erasure locks rollup rows in key order, as a flush does: while it waits for a later row it already holds the earlier one', async () => {
    const workspaceId = await newWorkspace();
    const user = randomUUID();
    const minute = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
    const at = (name: string): EventRow => {
      const time = new Date(minute);
      return {
        id: randomUUID(),
        workspaceId,
        userId: user,
        source: 'web',
        eventType: 'custom',
        name,
        targetType: null,
        targetId: null,
        metadata: null,
        createdAt: time,
        receivedAt: time,
      };
    };
    // Written later-key first, so the rows lie in the table against key order.
    const writer = createJsonEventWriter(testDb.db);
    await writer.write([at('zz-later')]);
    await writer.write([at('aa-earlier')]);

    const holder = postgres(testDb.url!, { max: 1, onnotice: () => {} });
    const prober = postgres(testDb.url!, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const lockRow = (sql: postgres.TransactionSql, name: string, nowait: boolean) =>
      sql.unsafe(`select 1 from telemetry.event_counts_minute where workspace_id = $1 and name = $2 for update${nowait ? ' nowait' : ''}`, [workspaceId, name]);
    const holderTx = holder.begin(async (sql) => {
      await lockRow(sql, 'zz-later', false);
      holding();
      await released;
    });
    try {
      await held;
      const admin = createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${keys.admin}` } });
      const erasure = admin.admin.erasure.request.mutate({ userId: user, workspaceId });
      // The erasure is waiting for the row the holder has.
      await waitUntil(
        async () => {
          const [row] = await prober<{ waiting: number }[]>`
          select count(*)::int as waiting from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock' and query like '%with deleted as%'`;
          return (row?.waiting ?? 0) > 0;
        },
        'the erasure to wait for the held rollup row',
        10_000,
      );
      const earlierHeld = await prober
        .begin((sql) => lockRow(sql, 'aa-earlier', true))
        .then(
          () => false,
          (error: { code?: string }) => error.code === '55P03',
        );
      expect(earlierHeld).toBe(true);
      release();
      await holderTx;
      expect((await erasure).deletedCount).toBe(2);
    } finally {
      release();
      await holderTx.catch(() => {});
      await holder.end();
      await prober.end();
    }
  });
});

import { randomUUID } from 'node:crypto';
import postgres, { type ReservedSql, type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../client/index.ts';
import { ensureDailyPartitions, partitionName } from '../db/partitions.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { registerTestWorkspaces } from './support/app.ts';
import { startChildService, type ChildService } from './support/child-service.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';

/**
 * One tenant's heavy reads against the real service (server/main.ts) on PostgreSQL: the reads are
 * real statistics queries held up by a lock on the day partition they read (as a long migration
 * or maintenance would), so they stay busy until cancelled, without any test-only code path.
 */
const onPglite = (process.env.TEST_DB_KIND ?? 'pglite') === 'pglite';
const LOCKED_DAY = new Date('2026-01-10T00:00:00Z');
const PROCEDURE_TIMEOUT_MS = 3000;

describe.skipIf(onPglite)(
  onPglite
    ? 'read deadlines (skipped on PGlite: one in-process connection serves reads and writes alike, and a running statement cannot be cancelled there)'
    : 'read deadlines',
  () => {
    let testDb: TestDatabase;
    let service: ChildService;
    let admin: Sql;
    let locker: ReservedSql | undefined;
    const readWorkspace = randomUUID();
    const ingestWorkspace = randomUUID();
    let readKey: string;
    let ingestKey: string;

    /** Statements of this database waiting for a lock, apart from the locker's own session. */
    const lockWaiters = async () => {
      const [row] = await admin<{ waiting: number }[]>`
        select count(*)::int as waiting from pg_stat_activity
        where datname = current_database() and state = 'active' and wait_event_type = 'Lock' and query like '%telemetry.events%'`;
      return row!.waiting;
    };

    beforeAll(async () => {
      testDb = await openTestDatabase();
      await ensureDailyPartitions(testDb.db, { from: LOCKED_DAY, to: LOCKED_DAY });
      await registerTestWorkspaces(testDb.db, readWorkspace, ingestWorkspace);
      const keys = createKeyService({ db: testDb.db });
      readKey = (await keys.createKey({ kind: 'read', workspaceId: readWorkspace })).key;
      ingestKey = (await keys.createKey({ kind: 'ingest', workspaceId: ingestWorkspace })).key;
      admin = postgres(testDb.url!, { max: 2, onnotice: () => {} });
      // Small pools make the starvation certain: two connections for writes, two for reads.
      service = await startChildService({
        DATABASE_URL: testDb.url!,
        DATABASE_POOL_MAX: '2',
        DATABASE_READ_POOL_MAX: '2',
        PROCEDURE_TIMEOUT_MS: String(PROCEDURE_TIMEOUT_MS),
        LOG_LEVEL: 'warn',
      });
    });

    afterAll(async () => {
      await locker?.unsafe('rollback').catch(() => {});
      locker?.release();
      service?.process.kill('SIGTERM');
      await service?.exited;
      await admin?.end();
      await testDb?.drop();
    });

    it("cancels a tenant's heavy reads at their deadline, while another workspace's ingestion is never refused", async () => {
      locker = await admin.reserve();
      await locker.unsafe('begin');
      await locker.unsafe(`lock table telemetry.${partitionName(LOCKED_DAY)} in access exclusive mode`);

      // Twelve heavy statistics calls (unique users force the raw events of the locked day).
      const reader = createTelemetryClient({ url: service.url, apiKey: readKey, maxBatchItems: 1 });
      const reads = Array.from({ length: 12 }, () =>
        reader.telemetry.stats.timeseries.query({ from: LOCKED_DAY, to: new Date(LOCKED_DAY.getTime() + 86_400_000), bucket: 'hour', uniqueUsers: true }).then(
          () => 'answered',
          (error: { data?: { httpStatus?: number } }) => error.data?.httpStatus,
        ),
      );
      await expect.poll(lockWaiters, { timeout: 10_000, interval: 50 }).toBeGreaterThan(0);

      // Meanwhile another workspace ingests: every call is accepted.
      const ingester = createTelemetryClient({ url: service.url, apiKey: ingestKey, maxBatchItems: 1 });
      const receipts = await Promise.all(
        Array.from({ length: 10 }, (_, i) => ingester.telemetry.ingest.mutate({ source: 'web', eventType: 'ui.interaction', name: `tick-${i}` })),
      );
      expect(receipts.every((receipt) => typeof receipt.id === 'string')).toBe(true);
      // (Counted in the id ledger: a count over the events table would wait for the lock too.)
      const [stored] = await admin<{ count: number }[]>`select count(*)::int as count from telemetry.event_ids where workspace_id = ${ingestWorkspace}`;
      expect(stored!.count).toBe(10);

      // The reads were answered 503 at their deadline, and none of their statements runs on.
      expect(await Promise.all(reads)).toEqual(Array(12).fill(503));
      await expect.poll(lockWaiters, { timeout: 5_000, interval: 50 }).toBe(0);

      // The cancelled reads left the read pool whole: once the lock goes, the same read answers.
      await locker.unsafe('rollback');
      locker.release();
      locker = undefined;
      const answered = await reader.telemetry.stats.timeseries.query({
        from: LOCKED_DAY,
        to: new Date(LOCKED_DAY.getTime() + 86_400_000),
        bucket: 'hour',
        uniqueUsers: true,
      });
      expect(answered.series[0]!.points).toHaveLength(24);
    });
  },
);

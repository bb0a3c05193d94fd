import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Database } from '../db/database.ts';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { ensureDailyPartitions, listPartitions, partitionName } from '../db/partitions.ts';
import { createLogger } from '../server/logger.ts';
import { createErasureService } from '../server/services/erasure/erase-user.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { createRetentionService } from '../server/services/retention/retention.ts';
import { createMetrics, type Metrics } from '../server/metrics.ts';
import type { RetentionReport } from '../server/services/retention/schemas.ts';
import { scheduleRetention } from '../server/services/retention/schedule.ts';
import { createTelemetryClient } from '../client/index.ts';
import { createTestKeys, procedureCaller, registerTestWorkspaces, startTestServer, testConfig, type TestKeys, testServices } from './support/app.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';

const NOW = new Date('2026-06-15T10:30:00Z');
const DAY_MS = 86_400_000;

let testDb: TestDatabase;
let db: Database;
let keys: TestKeys;
beforeAll(async () => {
  testDb = await openTestDatabase();
  db = testDb.db;
  await registerTestWorkspaces(db, A, B, C, L);
});
afterAll(async () => {
  await testDb?.drop();
});
// The job spans the whole database: every test starts from an empty one (same instance).
beforeEach(async () => {
  for (const name of await listPartitions(db)) await db.rows(sql.raw(`drop table telemetry."${name}"`));
  await db.rows(
    sql`truncate telemetry.events_default, telemetry.event_ids, telemetry.event_counts_minute, telemetry.event_counts_hour, telemetry.workspace_retention, telemetry.api_keys`,
  );
  keys = await createTestKeys(db);
});

const A = '0a000000-0000-4000-8000-00000000000a';
const B = '0b000000-0000-4000-8000-00000000000b';
const C = '0c000000-0000-4000-8000-00000000000c';
const L = '0d000000-0000-4000-8000-00000000000d';
const D = '0e000000-0000-4000-8000-00000000000e';

function event(workspaceId: string, createdAt: Date, variant: number): EventRow {
  return {
    id: randomUUID(),
    workspaceId,
    userId: null,
    source: variant % 2 === 0 ? 'web' : 'mobile',
    eventType: 'custom',
    name: `step.${variant % 3}`,
    targetType: null,
    targetId: null,
    metadata: { variant },
    createdAt,
    receivedAt: createdAt,
  };
}

/**
 * Two events per workspace at each time (a minute apart, different names and sources, so several
 * rollup rows each), stored by the service's writer (ledger and rollups included). Daily partitions
 * exist for `partitionDays`; other days land in the default partition.
 */
async function seed(workspaces: readonly string[], times: readonly string[], partitionDays: readonly string[]): Promise<EventRow[]> {
  for (const day of partitionDays) await ensureDailyPartitions(db, { from: new Date(`${day}T00:00:00Z`), to: new Date(`${day}T00:00:00Z`) });
  const rows: EventRow[] = [];
  let variant = 0;
  for (const workspaceId of workspaces) {
    for (const time of times) {
      const at = new Date(time);
      rows.push(event(workspaceId, at, variant++), event(workspaceId, new Date(at.getTime() + 61_000), variant++));
    }
  }
  await createEventWriter(db).write(rows);
  return rows;
}

async function count(query: ReturnType<typeof sql>): Promise<number> {
  const [row] = await db.rows<{ n: number | string }>(query);
  return Number(row?.n ?? 0);
}

const bucket = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI')`);

/** Everything retention may touch, in a comparable form. */
async function snapshot() {
  return {
    partitions: await listPartitions(db),
    events: await db.rows<{ id: string; partition: string }>(
      sql`select id::text as id, tableoid::regclass::text as partition from telemetry.events order by id`,
    ),
    ledger: await db.rows<{ id: string }>(
      sql`select id::text as id, workspace_id::text as workspace, ${bucket('created_at')} as at from telemetry.event_ids order by id`,
    ),
    minutes: await db.rows(
      sql`select workspace_id::text as w, ${bucket('minute')} as b, event_type, name, source, count::int as n from telemetry.event_counts_minute order by 1, 2, 3, 4, 5`,
    ),
    hours: await db.rows(
      sql`select workspace_id::text as w, ${bucket('hour')} as b, event_type, name, source, count::int as n from telemetry.event_counts_hour order by 1, 2, 3, 4, 5`,
    ),
  };
}

/** The rollups as they should be: recomputed from the events that are stored. */
async function recomputedRollups() {
  return {
    minutes: await db.rows(sql`
      select workspace_id::text as w, ${bucket("date_trunc('minute', created_at, 'UTC')")} as b, event_type, name, source, count(*)::int as n
      from telemetry.events group by 1, 2, 3, 4, 5 order by 1, 2, 3, 4, 5`),
    hours: await db.rows(sql`
      select workspace_id::text as w, ${bucket("date_trunc('hour', created_at, 'UTC')")} as b, event_type, name, source, count(*)::int as n
      from telemetry.events group by 1, 2, 3, 4, 5 order by 1, 2, 3, 4, 5`),
  };
}

/** What a report looks like whatever the run: drops times, the dry-run flag and the partitions created. */
function comparable(report: RetentionReport) {
  const { dryRun: _dryRun, startedAt: _startedAt, finishedAt: _finishedAt, partitionsCreated: _created, ...rest } = report;
  return rest;
}

function retentionService(env: Record<string, string> = {}, metrics?: Metrics) {
  return createRetentionService({ db, config: testConfig({ RETENTION_DAYS: '30', ...env }), now: () => NOW, ...(metrics && { metrics }) });
}

async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((candidate) => candidate.name === name);
  const value = metric?.values.find((entry) => Object.entries(labels).every(([key, wanted]) => entry.labels[key] === wanted));
  return Number(value?.value ?? 0);
}

// Default retention 30 days at NOW (2026-06-15T10:30Z): events before 2026-05-16T10:00Z expire, so
// partitions of days ending by 2026-05-16T00:00Z go whole. C keeps 7 days: before 2026-06-08T10:00Z.
const TIMES = [
  '2026-04-20T05:00:00Z', // no partition: in the default partition, expired for everyone
  '2026-05-01T12:00:00Z', // expired partition
  '2026-05-15T23:58:00Z', // expired partition (both events, 23:58 and 23:59:01)
  '2026-05-16T03:00:00Z', // before the default cutoff, but its day is not over: kept for default workspaces
  '2026-05-16T12:00:00Z',
  '2026-06-01T00:30:00Z', // no partition: default partition, not expired for default workspaces
  '2026-06-07T09:58:00Z', // C: before its cutoff
  '2026-06-08T10:00:00Z', // C: exactly at its cutoff: kept
  '2026-06-14T08:00:00Z',
  '2026-06-15T10:00:00Z',
];
const PARTITION_DAYS = ['2026-05-01', '2026-05-15', '2026-05-16', '2026-06-07', '2026-06-08', '2026-06-14', '2026-06-15'];

describe('retention job', () => {
  it('a dry run over several partitions reports what a real run then does, and changes nothing', async () => {
    await seed([A, B, C, D], TIMES, PARTITION_DAYS);
    const metrics = createMetrics({ defaultMetrics: false });
    const retention = retentionService({}, metrics);
    await retention.setOverride({ workspaceId: C, days: 7, updatedByKeyId: null }, null);
    const before = await snapshot();

    const dryRun = await retention.run({ dryRun: true });
    expect(await snapshot()).toEqual(before);
    expect(dryRun.dryRun).toBe(true);
    expect(dryRun.partitionsDropped).toEqual([
      { name: 'events_p20260501', day: '2026-05-01', rows: 8 },
      { name: 'events_p20260515', day: '2026-05-15', rows: 8 },
    ]);
    expect(dryRun).toMatchObject({
      defaultDays: 30,
      longestDays: 30,
      defaultCutoff: new Date('2026-05-16T10:00:00Z'),
      partitionCutoff: new Date('2026-05-16T00:00:00Z'),
      cutoffs: [{ workspaceId: C, days: 7, cutoff: new Date('2026-06-08T10:00:00Z') }],
      archives: [],
      partitionsCreated: [],
      errors: [],
      interrupted: false,
    });
    expect(dryRun.rowsDeleted).toEqual([
      { workspaceId: A, rows: 2 },
      { workspaceId: B, rows: 2 },
      // 04-20 (default partition), 05-16 twice, 06-01 (default partition), 06-07.
      { workspaceId: C, rows: 10 },
      { workspaceId: D, rows: 2 },
    ]);

    const real = await retention.run();
    expect(real.dryRun).toBe(false);
    expect(comparable(real)).toEqual(comparable(dryRun));
  });

  it('drops expired partitions and deletes shorter-retention rows with exactly their ledger ids and rollup rows', async () => {
    const seeded = await seed([A, B, C, D], TIMES, PARTITION_DAYS);
    // Erased events leave zero-count rollup rows behind (on days without any other event): they expire too.
    const erasedUser = randomUUID();
    const erased = [event(A, new Date('2026-05-05T12:00:00Z'), 7), event(C, new Date('2026-06-03T12:00:00Z'), 8)].map((row) => ({
      ...row,
      userId: erasedUser,
    }));
    await createEventWriter(db).write(erased);
    await createErasureService({ db }).eraseUser({ userId: erasedUser, workspaceId: null, requestedByKeyId: randomUUID() }, null);
    expect(await count(sql`select count(*) as n from telemetry.event_counts_minute where count = 0`)).toBe(2);
    const metrics = createMetrics({ defaultMetrics: false });
    const retention = retentionService({}, metrics);
    await retention.setOverride({ workspaceId: C, days: 7, updatedByKeyId: null }, null);
    const before = await snapshot();

    const report = await retention.run();

    const partitionCutoff = new Date('2026-05-16T00:00:00Z').getTime();
    const cCutoff = new Date('2026-06-08T10:00:00Z').getTime();
    const kept = seeded.filter((row) => row.createdAt.getTime() >= (row.workspaceId === C ? cCutoff : partitionCutoff));
    const after = await snapshot();
    expect(after.events.map((row) => row.id)).toEqual(kept.map((row) => row.id).sort());
    // The ledger forgets exactly the removed events' ids; erased events' ids stay (so a late retry
    // of an erased event is still answered duplicate, never stored again).
    expect(after.ledger.map((row) => row.id)).toEqual([...kept, ...erased].map((row) => row.id).sort());
    // Rollups still agree with the events, bucket by bucket (no zero-count leftovers either).
    expect({ minutes: after.minutes, hours: after.hours }).toEqual(await recomputedRollups());

    expect(after.partitions).not.toContain('events_p20260501');
    expect(after.partitions).not.toContain('events_p20260515');
    expect(after.partitions).toContain('events_p20260516');
    // The default partition's unexpired day got its own partition; future days were prepared.
    expect(report.partitionsCreated).toContain('events_p20260601');
    expect(report.partitionsCreated).toContain(partitionName(new Date(NOW.getTime() + 7 * DAY_MS)));
    expect(await count(sql`select count(*) as n from telemetry.events_default`)).toBe(0);

    const removed = seeded.length - kept.length;
    const inPartitions = report.partitionsDropped.reduce((sum, partition) => sum + partition.rows, 0);
    const rowByRow = report.rowsDeleted.reduce((sum, entry) => sum + entry.rows, 0);
    expect(inPartitions + rowByRow).toBe(removed);
    expect(report.ledgerRowsDeleted).toBe(before.ledger.length - after.ledger.length);
    expect(report.ledgerRowsDeleted).toBe(removed);
    expect(report.rollupRowsDeleted).toEqual({ minute: before.minutes.length - after.minutes.length, hour: before.hours.length - after.hours.length });
    expect(report.rollupRowsDeleted.minute).toBeGreaterThan(0);

    // Operators see it in /metrics.
    expect(await metricValue(metrics, 'telemetry_retention_runs_total', { outcome: 'ok' })).toBe(1);
    expect(await metricValue(metrics, 'telemetry_retention_events_expired_total')).toBe(removed);
    expect(await metricValue(metrics, 'telemetry_retention_partitions_dropped_total')).toBe(report.partitionsDropped.length);
    expect(await metricValue(metrics, 'telemetry_retention_last_success_timestamp_seconds')).toBe(report.finishedAt.getTime() / 1000);

    // A second run at the same time finds nothing more to remove.
    const again = await retention.run();
    expect(again.partitionsDropped).toEqual([]);
    expect(again.rowsDeleted).toEqual([]);
    expect(again.ledgerRowsDeleted).toBe(0);
    expect(again.rollupRowsDeleted).toEqual({ minute: 0, hour: 0 });
    expect(await snapshot()).toEqual({ ...after, partitions: await listPartitions(db) });
  });

  it('keeps partitions for the longest override and deletes default-retention rows hour-exactly', async () => {
    // L keeps 60 days, so partitions go only before 2026-04-16T00:00Z; everyone else (default 30
    // days, C 7 days) loses rows one by one before their own cutoff.
    const times = ['2026-04-10T10:00:00Z', '2026-04-16T05:00:00Z', ...TIMES];
    const seeded = await seed([A, C, L, D], times, ['2026-04-10', '2026-04-16', ...PARTITION_DAYS]);
    const retention = retentionService();
    await retention.setOverride({ workspaceId: C, days: 7, updatedByKeyId: null }, null);
    await retention.setOverride({ workspaceId: L, days: 60, updatedByKeyId: null }, null);

    const dryRun = await retention.run({ dryRun: true });
    const report = await retention.run();
    expect(comparable(report)).toEqual(comparable(dryRun));
    expect(report).toMatchObject({ longestDays: 60, partitionCutoff: new Date('2026-04-16T00:00:00Z') });
    expect(report.partitionsDropped.map((partition) => partition.name)).toEqual(['events_p20260410']);

    const cutoffs: Record<string, number> = {
      [L]: new Date('2026-04-16T00:00:00Z').getTime(), // the longest: whole days
      [C]: new Date('2026-06-08T10:00:00Z').getTime(),
      default: new Date('2026-05-16T10:00:00Z').getTime(),
    };
    const kept = seeded.filter((row) => row.createdAt.getTime() >= (cutoffs[row.workspaceId ?? 'default'] ?? cutoffs.default!));
    const after = await snapshot();
    expect(after.events.map((row) => row.id)).toEqual(kept.map((row) => row.id).sort());
    expect(after.ledger.map((row) => row.id)).toEqual(kept.map((row) => row.id).sort());
    expect({ minutes: after.minutes, hours: after.hours }).toEqual(await recomputedRollups());
    // 05-16T03:00 went for A (default, now shorter than the longest); 05-16T12:00 stayed.
    const aTimes = kept.filter((row) => row.workspaceId === A).map((row) => row.createdAt.toISOString());
    expect(aTimes).not.toContain('2026-05-16T03:00:00.000Z');
    expect(aTimes).toContain('2026-05-16T12:00:00.000Z');
  });

  // PostgreSQL only: it needs a second session holding a lock, and PGlite has one session.
  it.runIf(process.env.TEST_DB_KIND === 'postgres')(
    'waits out a long read of telemetry.events in short tries instead of blocking ingestion behind its drop',
    async () => {
      await seed([A], TIMES, PARTITION_DAYS);
      // Another session reads telemetry.events for 3 s: its lock keeps the DROP waiting.
      const other = postgres(testDb.url!, { max: 1, onnotice: () => {} });
      const reading = other.begin(async (tx) => {
        await tx`select count(*) from telemetry.events`;
        await tx`select pg_sleep(3)`;
      });
      let readerDone = false;
      void reading.then(() => (readerDone = true));
      // The reader holds its lock once its sleep is running.
      await vi.waitFor(async () => {
        const [row] = await testDb.db.rows<{ n: number | string }>(
          sql`select count(*) as n from pg_stat_activity where datname = current_database() and state = 'active' and query like '%pg_sleep(3)%' and pid <> pg_backend_pid()`,
        );
        expect(Number(row?.n)).toBe(1);
      });
      const report = await retentionService().run();
      // The drop waited for the reader (in short tries) rather than failing or being reported as an error.
      expect(readerDone).toBe(true);
      await reading;
      await other.end();
      expect(report.errors).toEqual([]);
      expect(report.partitionsDropped.length).toBeGreaterThan(0);
    },
  );

  it('refuses a second run while one is in progress, and runs again once it has finished', async () => {
    const retention = retentionService();
    const [first, second] = await Promise.allSettled([retention.run(), retention.run()]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({ status: 'rejected', reason: { code: 'conflict', reason: 'retention_in_progress' } });
    await expect(retention.run()).resolves.toMatchObject({ dryRun: false });
  });

  it('runs on schedule until stopped, and not at all with a zero interval', async () => {
    const report = await retentionService().run({ dryRun: true });
    const signals: AbortSignal[] = [];
    let release: () => void = () => {};
    const fake = {
      run: (options: { signal?: AbortSignal } = {}) => {
        if (options.signal) signals.push(options.signal);
        // The second run stays in progress until the test stops the schedule.
        return signals.length === 1 ? Promise.resolve(report) : new Promise<RetentionReport>((resolve) => (release = () => resolve(report)));
      },
    };
    // The schedule's timers run on a fake clock: "no further run" is checked without waiting.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const stop = scheduleRetention(fake, { intervalMs: 20, firstRunDelayMs: 1, logger: createLogger('silent') });
      await vi.advanceTimersByTimeAsync(1);
      expect(signals).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(20);
      expect(signals).toHaveLength(2);
      const stopped = stop();
      expect(signals[1]?.aborted).toBe(true);
      release();
      await stopped;
      await vi.advanceTimersByTimeAsync(60);
      expect(signals).toHaveLength(2);
      expect(vi.getTimerCount()).toBe(0);

      const never = { run: vi.fn() };
      await scheduleRetention(never, { intervalMs: 0, firstRunDelayMs: 0, logger: createLogger('silent') })();
      await vi.advanceTimersByTimeAsync(20);
      expect(never.run).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('admin.retention', () => {
  it('sets, lists and clears per-workspace overrides, and a run applies them', async () => {
    const seeded = await seed([A, C], ['2026-06-01T12:00:00Z', '2026-06-14T12:00:00Z'], ['2026-06-01', '2026-06-14']);
    const admin = procedureCaller(db, { apiKey: keys.admin, config: testConfig({ RETENTION_DAYS: '30' }), now: () => NOW });

    const set = await admin.admin.retention.set({ workspaceId: C, days: 7 });
    expect(set).toMatchObject({ workspaceId: C, days: 7, updatedAt: NOW });
    expect(set.updatedByKeyId).toEqual(expect.any(String));
    expect((await admin.admin.retention.set({ workspaceId: C, days: 10 })).days).toBe(10);
    await admin.admin.retention.set({ workspaceId: A, days: 365 });
    expect(await admin.admin.retention.list()).toEqual({
      defaultDays: 30,
      maxDays: 365,
      overrides: [expect.objectContaining({ workspaceId: A, days: 365 }), expect.objectContaining({ workspaceId: C, days: 10 })],
    });
    expect(await admin.admin.retention.clear({ workspaceId: A })).toEqual({ workspaceId: A, cleared: true, days: 30 });
    expect(await admin.admin.retention.clear({ workspaceId: A })).toEqual({ workspaceId: A, cleared: false, days: 30 });

    const dryRun = await admin.admin.retention.run({ dryRun: true });
    expect(dryRun.cutoffs).toEqual([{ workspaceId: C, days: 10, cutoff: new Date('2026-06-05T10:00:00Z') }]);
    expect(await count(sql`select count(*) as n from telemetry.events`)).toBe(seeded.length);
    const report = await admin.admin.retention.run({ dryRun: false });
    expect(report.rowsDeleted).toEqual([{ workspaceId: C, rows: 2 }]);
    const remaining = await db.rows<{ id: string }>(sql`select id::text as id from telemetry.events order by id`);
    expect(remaining.map((row) => row.id)).toEqual(
      seeded
        .filter((row) => row.workspaceId === A || row.createdAt >= new Date('2026-06-05T10:00:00Z'))
        .map((row) => row.id)
        .sort(),
    );
  });

  it('keeps a workspace-bound admin to its own workspace and out of the global job, and other keys out', async () => {
    const service = createKeyService({ db });
    const boundAdmin = (await service.createKey({ kind: 'admin', workspaceId: A })).key;
    const read = (await service.createKey({ kind: 'read', workspaceId: A })).key;
    const config = testConfig({ RETENTION_DAYS: '30' });
    const bound = procedureCaller(db, { apiKey: boundAdmin, config, now: () => NOW });
    const admin = procedureCaller(db, { apiKey: keys.admin, config, now: () => NOW });

    await admin.admin.retention.set({ workspaceId: B, days: 5 });
    expect((await bound.admin.retention.set({ workspaceId: A, days: 14 })).days).toBe(14);
    await expect(bound.admin.retention.set({ workspaceId: B, days: 1 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(bound.admin.retention.clear({ workspaceId: B })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await bound.admin.retention.list()).overrides.map((override) => override.workspaceId)).toEqual([A]);
    await expect(bound.admin.retention.run({ dryRun: true })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await bound.admin.retention.clear({ workspaceId: A })).cleared).toBe(true);
    // B's override is untouched by everything the bound key tried.
    expect((await admin.admin.retention.list()).overrides).toEqual([expect.objectContaining({ workspaceId: B, days: 5 })]);

    for (const key of [read, keys.ingest]) {
      const caller = procedureCaller(db, { apiKey: key, config });
      await expect(caller.admin.retention.list()).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(caller.admin.retention.set({ workspaceId: A, days: 3 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(caller.admin.retention.run({ dryRun: true })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    }
    await expect(admin.admin.retention.set({ workspaceId: A, days: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(admin.admin.retention.set({ workspaceId: A, days: 3651 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(admin.admin.retention.set({ workspaceId: A, days: 1.5 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

describe('a workspace retention is its own (RETENTION_MAX_DAYS)', () => {
  // Default 30 days, at most 60: whole partitions go once their day ended 60 days before NOW.
  const config = testConfig({ RETENTION_DAYS: '30', RETENTION_MAX_DAYS: '60' });
  const MAX_CUTOFF = new Date('2026-04-16T00:00:00Z');

  async function withServer<T>(work: (url: string) => Promise<T>): Promise<T> {
    const server = await startTestServer(db, { config, services: testServices(db, { config, now: () => NOW }) });
    try {
      return await work(server.url);
    } finally {
      await server.close();
    }
  }
  const client = (url: string, apiKey: string) => createTelemetryClient({ url, apiKey });
  const boundAdmin = async (workspaceId: string) => (await createKeyService({ db }).createKey({ kind: 'admin', workspaceId })).key;
  /** An override stored before the maximum existed (or was lowered): the old bound-admin 3650 days. */
  const legacyOverride = (workspaceId: string, days: number) =>
    db.rows(sql`insert into telemetry.workspace_retention (workspace_id, days) values (${workspaceId}::uuid, ${days})`);

  it('answers 404 on workspaceId for an override of a workspace that does not exist, over tRPC and /api, and stores nothing', async () => {
    await withServer(async (url) => {
      const unknown = randomUUID();
      await expect(client(url, keys.admin).admin.retention.set.mutate({ workspaceId: unknown, days: 7 })).rejects.toMatchObject({
        data: { httpStatus: 404, reason: 'unknown_workspace', issues: [{ path: 'workspaceId' }] },
      });
      const response = await fetch(`${url}/api/admin/retention`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ workspaceId: unknown, days: 7 }),
      });
      expect(response.status).toBe(404);
      const body = await response.text();
      expect(body).toContain('workspaceId');
      expect(body).not.toMatch(/foreign key|violates|SQLSTATE|23503/i);
      expect((await client(url, keys.admin).admin.retention.list.query()).overrides).toEqual([]);
    });
  });

  it('refuses any override above the maximum, so a bound admin cannot push the partition cutoff back', async () => {
    await withServer(async (url) => {
      const bound = client(url, await boundAdmin(A));
      const unbound = client(url, keys.admin);
      for (const days of [3650, 61]) {
        await expect(bound.admin.retention.set.mutate({ workspaceId: A, days })).rejects.toMatchObject({
          data: { httpStatus: 400, reason: 'above_retention_maximum', issues: [{ path: 'days' }] },
        });
      }
      // The maximum binds unbound admins too: it is the service's, set by RETENTION_MAX_DAYS.
      await expect(unbound.admin.retention.set.mutate({ workspaceId: B, days: 3650 })).rejects.toMatchObject({ data: { httpStatus: 400 } });
      expect(await bound.admin.retention.list.query()).toEqual({ defaultDays: 30, maxDays: 60, overrides: [] });
      expect(await unbound.admin.retention.run.mutate({ dryRun: true })).toMatchObject({
        maxDays: 60,
        longestDays: 30,
        partitionCutoff: new Date('2026-05-16T00:00:00Z'),
      });

      // Up to the maximum is the workspace's own business.
      expect(await bound.admin.retention.set.mutate({ workspaceId: A, days: 60 })).toMatchObject({ workspaceId: A, days: 60 });
      expect(await unbound.admin.retention.run.mutate({ dryRun: true })).toMatchObject({ longestDays: 60, partitionCutoff: MAX_CUTOFF });

      // An override stored above it applies as the maximum: the cutoff never goes further back.
      await legacyOverride(C, 3650);
      const report = await unbound.admin.retention.run.mutate({ dryRun: true });
      expect(report).toMatchObject({ longestDays: 60, partitionCutoff: MAX_CUTOFF });
      expect(report.cutoffs).toContainEqual({ workspaceId: C, days: 60, requestedDays: 3650, cutoff: new Date('2026-04-16T10:00:00Z') });
    });
  });

  it('expires a short-retention workspace on time while another keeps its longer (allowed) retention', async () => {
    // S keeps 7 days, L the maximum (60), B the default (30); C still has a 3650-day override
    // stored from before the maximum.
    const S = A;
    const times = ['2026-03-01T12:00:00Z', '2026-04-20T12:00:00Z', '2026-06-01T12:00:00Z', '2026-06-14T12:00:00Z'];
    const seeded = await seed([S, L, B, C], times, ['2026-03-01', '2026-04-20', '2026-06-01', '2026-06-14']);
    await legacyOverride(C, 3650);
    await withServer(async (url) => {
      await client(url, await boundAdmin(S)).admin.retention.set.mutate({ workspaceId: S, days: 7 });
      await client(url, await boundAdmin(L)).admin.retention.set.mutate({ workspaceId: L, days: 60 });
      const unbound = client(url, keys.admin);

      const dryRun = await unbound.admin.retention.run.mutate({ dryRun: true });
      expect(dryRun).toMatchObject({ longestDays: 60, partitionCutoff: MAX_CUTOFF });
      expect(dryRun.partitionCutoff.getTime()).toBeGreaterThanOrEqual(NOW.getTime() - 61 * DAY_MS);
      const report = await unbound.admin.retention.run.mutate({ dryRun: false });
      expect(report.partitionsDropped.map((partition) => partition.name)).toEqual(['events_p20260301']);
    });

    const keptSince: Record<string, string> = {
      [S]: '2026-06-08T10:00:00Z', // 7 days: 06-01 went
      [L]: '2026-04-16T00:00:00Z', // 60 days: 04-20 and 06-01 stay
      [B]: '2026-05-16T10:00:00Z', // 30 days: 04-20 went
      [C]: '2026-04-16T00:00:00Z', // 3650 stored, 60 applied: 03-01 went with its partition
    };
    const kept = seeded.filter((row) => row.createdAt >= new Date(keptSince[row.workspaceId!]!));
    const remaining = await db.rows<{ id: string }>(sql`select id::text as id from telemetry.events order by id`);
    expect(remaining.map((row) => row.id)).toEqual(kept.map((row) => row.id).sort());
    const daysKept = (workspaceId: string) =>
      new Set(kept.filter((row) => row.workspaceId === workspaceId).map((row) => row.createdAt.toISOString().slice(0, 10)));
    expect(daysKept(L)).toEqual(new Set(['2026-04-20', '2026-06-01', '2026-06-14']));
    expect(daysKept(S)).toEqual(new Set(['2026-06-14']));
    const { minutes, hours } = await snapshot();
    expect({ minutes, hours }).toEqual(await recomputedRollups());
  });
});

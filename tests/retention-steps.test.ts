import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../db/database.ts';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { ensureDailyPartitions, listPartitions } from '../db/partitions.ts';
import { createLogger } from '../server/logger.ts';
import { expireRowBand } from '../server/services/retention/delete-rows.ts';
import { expirePartition } from '../server/services/retention/drop-partition.ts';
import { planExpiry } from '../server/services/retention/expiry-plan.ts';
import { startExpiryRun } from '../server/services/retention/expiry-run.ts';
import { planRetention } from '../server/services/retention/policies.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';

// Each step of the retention job (server/services/retention/expire-events.ts), run alone.

const NOW = new Date('2026-06-15T10:30:00Z');
const A = '0a000000-0000-4000-8000-00000000000a';
const B = '0b000000-0000-4000-8000-00000000000b';

let testDb: TestDatabase;
let db: Database;
beforeAll(async () => {
  testDb = await openTestDatabase();
  db = testDb.db;
});
afterAll(async () => {
  await testDb?.drop();
});
beforeEach(async () => {
  for (const name of await listPartitions(db)) await db.rows(sql.raw(`drop table telemetry."${name}"`));
  await db.rows(sql`truncate telemetry.events_default, telemetry.event_ids, telemetry.event_counts_minute, telemetry.event_counts_hour`);
});

function event(workspaceId: string, createdAt: string, name = 'x'): EventRow {
  const at = new Date(createdAt);
  return {
    id: randomUUID(),
    workspaceId,
    userId: null,
    source: 'web',
    eventType: 'custom',
    name,
    targetType: null,
    targetId: null,
    metadata: null,
    createdAt: at,
    receivedAt: at,
  };
}

async function seed(partitionDays: readonly string[], rows: readonly EventRow[]) {
  for (const day of partitionDays) await ensureDailyPartitions(db, { from: new Date(`${day}T00:00:00Z`), to: new Date(`${day}T00:00:00Z`) });
  await createEventWriter(db).write(rows);
}

async function count(table: string): Promise<number> {
  const [row] = await db.rows<{ n: number | string }>(sql.raw(`select count(*) as n from telemetry.${table}`));
  return Number(row?.n);
}

function run(options: { dryRun: boolean; defaultDays?: number; overrides?: { workspaceId: string; days: number }[] }) {
  const plan = planRetention({ now: NOW, defaultDays: options.defaultDays ?? 30, maxDays: 365, overrides: options.overrides ?? [] });
  return startExpiryRun({ db, plan, dryRun: options.dryRun, archiveDir: undefined, partitionDaysAhead: 1, logger: createLogger('silent'), pageSize: 100 });
}

describe('retention steps', () => {
  it('plan: expired partitions and default-partition days oldest first, and one target per shorter retention', async () => {
    await seed(
      ['2026-05-01', '2026-05-03'],
      [event(A, '2026-05-03T10:00:00Z'), event(A, '2026-05-01T10:00:00Z'), event(B, '2026-05-02T10:00:00Z'), event(A, '2026-06-14T10:00:00Z')],
    );
    const { plan } = run({ dryRun: true, defaultDays: 10, overrides: [{ workspaceId: B, days: 30 }] }).options;
    const targets = await planExpiry(db, plan);
    expect(targets.expiredDays.map((day) => [day.kind, day.day.toISOString().slice(0, 10)])).toEqual([
      ['partition', '2026-05-01'],
      ['default-partition', '2026-05-02'],
      ['partition', '2026-05-03'],
    ]);
    // B keeps the longest retention; A keeps the shorter default.
    expect(targets.shorterRetentions.map(({ scope, cutoff }) => [scope, cutoff])).toEqual([[{ kind: 'workspace', workspaceId: A }, plan.defaultCutoff]]);
  });

  it('drop partition: a dry run counts its rows, ledger ids and rollup buckets and changes nothing; a real run drops them', async () => {
    await seed(['2026-05-01'], [event(A, '2026-05-01T10:00:00Z', 'a'), event(A, '2026-05-01T10:00:00Z', 'b'), event(B, '2026-05-01T11:00:00Z')]);
    const day = { name: 'events_p20260501', day: new Date('2026-05-01T00:00:00Z') };
    const rollups = { filter: sql`true`, from: null, to: new Date('2026-05-02T00:00:00Z') };

    const dry = run({ dryRun: true });
    await expirePartition(dry, day, rollups);
    const counted = dry.finish();
    expect(counted.partitionsDropped).toEqual([{ name: day.name, day: '2026-05-01', rows: 3 }]);
    expect(counted.ledgerRowsDeleted).toBe(3);
    expect(counted.rollupRowsDeleted).toEqual({ minute: 3, hour: 3 });
    expect(await listPartitions(db)).toEqual([day.name]);

    const real = run({ dryRun: false });
    await expirePartition(real, day, rollups);
    expect(real.finish()).toMatchObject({
      partitionsDropped: counted.partitionsDropped,
      ledgerRowsDeleted: 3,
      rollupRowsDeleted: { minute: 3, hour: 3 },
      errors: [],
    });
    expect(await listPartitions(db)).toEqual([]);
    expect([await count('event_ids'), await count('event_counts_minute'), await count('event_counts_hour')]).toEqual([0, 0, 0]);
  });

  it('delete rows: one day of one workspace goes with its ledger ids and its rollup buckets, other workspaces stay', async () => {
    await seed(['2026-06-01'], [event(A, '2026-06-01T10:00:00Z'), event(A, '2026-06-01T12:00:00Z'), event(B, '2026-06-01T10:00:00Z')]);
    const from = new Date('2026-06-01T00:00:00Z');
    const to = new Date('2026-06-01T11:00:00Z');
    const step = run({ dryRun: false });
    await expireRowBand(step, { kind: 'workspace', workspaceId: A }, { from, to }, { filter: sql`workspace_id = ${A}::uuid`, from, to });
    const report = step.finish();
    expect(report.rowsDeleted).toEqual([{ workspaceId: A, rows: 1 }]);
    expect(report.ledgerRowsDeleted).toBe(1);
    expect(report.rollupRowsDeleted).toEqual({ minute: 1, hour: 1 });
    expect([await count('events'), await count('event_ids'), await count('event_counts_hour')]).toEqual([2, 2, 2]);
  });
});

import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../db/database.ts';
import { DISTRIBUTED_TABLES, REFERENCE_TABLES } from '../db/distribution.ts';
import { claimStatements, createEventWriter, createJsonEventWriter, eventInsertStatements, rollupStatements } from '../db/event-writers.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { createTestWorkspace } from './support/app.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { eventRow, storedEvents } from './support/events.ts';
import { readStatementsOfEveryReadProcedure } from './support/recorded-reads.ts';
import { explainPlan, type RecordedStatement, recordingRunner, taskCounts } from './support/statements.ts';

// Plan shapes on a real Citus cluster (coordinator and two workers, TEST_CITUS=1): the write and
// every workspace-scoped read go to the shards of their workspace, never through the coordinator.

describe.runIf(process.env.TEST_DB_KIND === 'citus')('on a Citus cluster', () => {
  let testDb: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    testDb = await openTestDatabase();
    db = testDb.db;
  });
  afterAll(async () => {
    await testDb?.drop();
  });

  /** The distributed plan of a statement, as EXPLAIN prints it (nothing is run). */
  function planOf(statement: RecordedStatement): Promise<string> {
    if (db.kind !== 'postgres') throw new Error('Citus runs on postgres.js');
    return explainPlan(db, statement);
  }

  it('distributes events, the id ledger and both rollups by workspace, co-located, and copies keys and workspaces to every node', async () => {
    const tables = await db.rows<{ table_name: string; method: string; column_name: string | null; colocation: number }>(
      sql`select logicalrelid::text as table_name, partmethod as method, column_to_column_name(logicalrelid, partkey) as column_name, colocationid as colocation
          from pg_dist_partition where logicalrelid::text like 'telemetry.%' and logicalrelid::text not like 'telemetry.events_p%'`,
    );
    const byName = new Map(tables.map((table) => [table.table_name.replace('telemetry.', ''), table]));
    for (const name of DISTRIBUTED_TABLES) expect(byName.get(name), name).toMatchObject({ method: 'h', column_name: 'workspace_id' });
    expect(new Set(DISTRIBUTED_TABLES.map((name) => byName.get(name)?.colocation)).size).toBe(1);
    for (const name of REFERENCE_TABLES) expect(byName.get(name)?.method, name).toBe('n');
  });

  it('distributes a daily partition created later with its table', async () => {
    await maintainPartitions(db, { daysAhead: 1 });
    const [partition] = await db.rows<{ name: string }>(
      sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'telemetry.events'::regclass and c.relname like 'events_p%' order by c.relname desc limit 1`,
    );
    expect(partition).toBeDefined();
    const [distributed] = await db.rows<{ n: number }>(
      sql`select count(*)::int as n from pg_dist_partition where logicalrelid = ${`telemetry.${partition!.name}`}::regclass`,
    );
    expect(distributed?.n).toBe(1);
  });

  it('writes with the routed form: the claims and rollup upserts of a one-workspace flush run on its shard alone, of several on their shards, never through the coordinator', async () => {
    expect(createEventWriter(db).form).toBe('routed');
    const [first, second] = [await createTestWorkspace(db), await createTestWorkspace(db)];
    const single = [eventRow(first), eventRow(first), eventRow(first, { name: 'y' })];
    // The statements the writer runs, explained (not run); the events go by COPY, which Citus splits
    // by shard as it reads the rows, or (to learn why a COPY failed) by these inserts.
    for (const statement of [...claimStatements(single), ...eventInsertStatements(single), ...rollupStatements(single)]) {
      const plan = await planOf(statement);
      expect(plan, statement.text).not.toMatch(/pull to coordinator|repartition|Subplan/i);
      expect(taskCounts(plan), statement.text).toEqual([1]);
    }
    const spanning = [eventRow(first), eventRow(second)];
    for (const statement of [...claimStatements(spanning), ...eventInsertStatements(spanning), ...rollupStatements(spanning)]) {
      const plan = await planOf(statement);
      expect(plan, statement.text).not.toMatch(/pull to coordinator|repartition|Subplan/i);
      expect(Math.max(...taskCounts(plan)), statement.text).toBeLessThanOrEqual(2);
    }
    const writer = createEventWriter(db);
    await writer.write(single);
    await writer.write(spanning);
    expect(await storedEvents(db, first)).toHaveLength(4);
    expect(await storedEvents(db, second)).toHaveLength(1);
  });

  it('would pull every event through the coordinator with the single-database JSON statement, which is why Citus gets the routed form', async () => {
    const workspaceId = await createTestWorkspace(db);
    const statements: RecordedStatement[] = [];
    await createJsonEventWriter(recordingRunner(statements, db)).write([eventRow(workspaceId)]);
    expect(await planOf(statements[0]!)).toMatch(/pull to coordinator/);
  });

  it('runs every read procedure’s statements on the one shard of the caller’s workspace', async () => {
    const workspaceId = await createTestWorkspace(db);
    const stored = eventRow(workspaceId);
    await createEventWriter(db).write([stored, eventRow(workspaceId, { name: 'LCP', eventType: 'perf.metric', metadata: { value: 2400, unit: 'ms' } })]);
    const statements = await readStatementsOfEveryReadProcedure(db, workspaceId, stored.id, stored.createdAt);
    expect(statements.length).toBeGreaterThan(10);
    for (const statement of statements) {
      const plan = await planOf(statement);
      expect(plan, statement.text).not.toMatch(/pull to coordinator|repartition/i);
      expect(taskCounts(plan).length, statement.text).toBeGreaterThan(0);
      for (const count of taskCounts(plan)) expect(count, `${statement.text}\n${plan}`).toBe(1);
    }
  });
});

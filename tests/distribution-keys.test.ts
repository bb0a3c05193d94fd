import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISTRIBUTED_TABLES, DISTRIBUTION_COLUMN } from '../db/distribution.ts';
import { createEventWriter } from '../db/event-writers.ts';
import { createTestWorkspace } from './support/app.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { eventRow } from './support/events.ts';
import { migrateUpTo } from './support/migrations.ts';
import { readStatementsOfEveryReadProcedure } from './support/recorded-reads.ts';

// Readiness for sharding by workspace (docs/adr/0013-workspace-keys.md), checked on every database
// the suite runs on: what Citus needs of the schema and of the queries, before any cluster.

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await openTestDatabase();
});
afterAll(async () => {
  await testDb?.drop();
});

describe('the sharded tables', () => {
  it('hold the workspace in every primary key and unique index, and never leave it empty', async () => {
    const indexes = await testDb.db.rows<{ table_name: string; index_name: string; columns: string[] | string }>(sql`
      select t.relname as table_name, i.relname as index_name,
             array(select a.attname::text from unnest(x.indkey) as k(attnum) join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum) as columns
      from pg_index x
      join pg_class t on t.oid = x.indrelid
      join pg_class i on i.oid = x.indexrelid
      join pg_namespace n on n.oid = t.relnamespace
      where n.nspname = 'telemetry' and x.indisunique and t.relname = any(${`{${DISTRIBUTED_TABLES.join(',')}}`}::text[])`);
    const columnsOf = (value: string[] | string) => (Array.isArray(value) ? value : value.replace(/[{}]/g, '').split(','));
    // Each table has at least its primary key; every unique index names the distribution column.
    expect(new Set(indexes.map((index) => index.table_name))).toEqual(new Set(DISTRIBUTED_TABLES));
    for (const index of indexes) expect(columnsOf(index.columns), index.index_name).toContain(DISTRIBUTION_COLUMN);

    const nullable = await testDb.db.rows<{ table_name: string }>(sql`
      select table_name from information_schema.columns
      where table_schema = 'telemetry' and column_name = ${DISTRIBUTION_COLUMN} and is_nullable = 'YES'
        and table_name = any(${`{${DISTRIBUTED_TABLES.join(',')}}`}::text[])`);
    expect(nullable).toEqual([]);
  });

  it('are read only with the workspace named: every read procedure’s statement binds workspace_id to the caller’s workspace', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const stored = eventRow(workspaceId);
    await createEventWriter(testDb.db).write([stored, eventRow(workspaceId, { name: 'LCP', eventType: 'perf.metric', metadata: { value: 2400, unit: 'ms' } })]);
    const statements = await readStatementsOfEveryReadProcedure(testDb.db, workspaceId, stored.id, stored.createdAt);
    expect(statements.length).toBeGreaterThan(10);
    for (const { text, params } of statements) {
      const bound = [...text.matchAll(/workspace_id\s*=\s*\$(\d+)/g)].map((match) => params[Number(match[1]) - 1]);
      expect(bound, text).toContain(workspaceId);
    }
  });
});

/** The workspace migration 0011 creates for events stored without one. */
const MOVED_EVENTS_WORKSPACE = '0e0e0e0e-0000-4000-8000-000000000011';

describe('the workspace keys migration', () => {
  it('moves events stored without a workspace, with their ledger rows and rollup counts, into a workspace created for them, and leaves other workspaces as they were', async () => {
    const older = await openTestDatabase({ migrate: false });
    try {
      await migrateUpTo(older.db, '0010_adapter_rejections');
      const kept = randomUUID();
      // A tenant's workspace already has the name the migration would give: it must not receive the events.
      await older.db.rows(sql`insert into telemetry.workspaces (id, name) values (${kept}, 'EVENTS stored without a workspace')`);
      const at = '2026-11-20T10:15:30Z';
      const orphans = [randomUUID(), randomUUID(), randomUUID()];
      const ownId = randomUUID();
      for (const id of orphans) {
        await older.db.rows(sql`insert into telemetry.event_ids (id, workspace_id, created_at) values (${id}, null, ${at})`);
        await older.db.rows(
          sql`insert into telemetry.events (id, workspace_id, source, event_type, name, created_at) values (${id}, null, 'web', 'custom', 'orphan', ${at})`,
        );
      }
      await older.db.rows(sql`insert into telemetry.event_ids (id, workspace_id, created_at) values (${ownId}, ${kept}, ${at})`);
      await older.db.rows(
        sql`insert into telemetry.events (id, workspace_id, source, event_type, name, created_at) values (${ownId}, ${kept}, 'web', 'custom', 'own', ${at})`,
      );
      await older.db.rows(
        sql`insert into telemetry.event_counts_hour (workspace_id, hour, event_type, name, source, count) values (${kept}, '2026-11-20T10:00:00Z', 'custom', 'own', 'web', 1)`,
      );

      await older.db.migrate();

      const [created] = await older.db.rows<{ id: string; name: string }>(sql`select id, name from telemetry.workspaces where id <> ${kept}`);
      expect(created).toEqual({ id: MOVED_EVENTS_WORKSPACE, name: `Events stored without a workspace (${MOVED_EVENTS_WORKSPACE})` });
      const byWorkspace = await older.db.rows<{ workspace_id: string; n: number }>(
        sql`select workspace_id, count(*)::int as n from telemetry.events group by 1 order by 2`,
      );
      expect(byWorkspace).toEqual([
        { workspace_id: kept, n: 1 },
        { workspace_id: created!.id, n: 3 },
      ]);
      const [ledger] = await older.db.rows<{ n: number }>(sql`select count(*)::int as n from telemetry.event_ids where workspace_id = ${created!.id}`);
      expect(ledger?.n).toBe(3);
      const counts = await older.db.rows<{ workspace_id: string; name: string; count: number }>(
        sql`select workspace_id, name, count::int from telemetry.event_counts_hour order by name`,
      );
      expect(counts).toEqual([
        { workspace_id: created!.id, name: 'orphan', count: 3 },
        { workspace_id: kept, name: 'own', count: 1 },
      ]);
      const [minute] = await older.db.rows<{ count: number }>(sql`select count::int from telemetry.event_counts_minute where workspace_id = ${created!.id}`);
      expect(minute?.count).toBe(3);
      // From now on an event without a workspace cannot be stored at all.
      await expect(
        older.db.rows(
          sql`insert into telemetry.events (id, workspace_id, source, event_type, name, created_at) values (${randomUUID()}, null, 'web', 'custom', 'x', now())`,
        ),
      ).rejects.toThrow();
    } finally {
      await older.drop();
    }
  });

  it('creates no workspace when every event already has one', async () => {
    const [found] = await testDb.db.rows<{ n: number }>(sql`select count(*)::int as n from telemetry.workspaces where id = ${MOVED_EVENTS_WORKSPACE}`);
    expect(found?.n).toBe(0);
  });
});

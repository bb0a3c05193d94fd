import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCopyEventWriter, createUnnestEventWriter, createValuesEventWriter } from '../bench/insert-forms.ts';
import { isDataRefusal } from '../db/errors.ts';
import { ROLLUPS } from '../db/rollups.ts';
import { createEventWriter, createJsonEventWriter, createRoutedEventWriter, eventKey, type EventRow, type EventWriter } from '../db/event-writers.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { storedEvents } from './support/events.ts';

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await openTestDatabase();
  await maintainPartitions(testDb.db, { daysAhead: 1 });
});
afterAll(async () => {
  await testDb?.drop();
});

let rawClient: Sql | undefined;
afterAll(async () => {
  await rawClient?.end();
});

/** The service's write form, and on PostgreSQL the forms the benchmark compares it with (bench/insert-forms.ts). */
function writers(): EventWriter[] {
  const db = testDb.db;
  if (db.kind === 'pglite') return [createJsonEventWriter(db)];
  // The array-parameter forms need a client Drizzle has not wrapped.
  rawClient ??= postgres(testDb.url!, { max: 2, onnotice: () => {} });
  return [
    createCopyEventWriter(db.client),
    createUnnestEventWriter(rawClient),
    createValuesEventWriter(rawClient),
    createJsonEventWriter(db),
    // Citus's form keeps the same guarantees on one PostgreSQL too.
    createRoutedEventWriter(db),
  ];
}

function row(workspaceId: string, overrides: Partial<EventRow> = {}): EventRow {
  return {
    id: randomUUID(),
    workspaceId,
    userId: null,
    source: 'web',
    eventType: 'custom',
    name: 'x',
    targetType: null,
    targetId: null,
    metadata: null,
    createdAt: new Date(Math.floor(Date.now() / 1000) * 1000),
    receivedAt: new Date(Math.floor(Date.now() / 1000) * 1000),
    ...overrides,
  };
}

describe('event writers', () => {
  it('uses the single JSON statement, the fastest form measured, on one database, and the routed form on Citus, as configured', () => {
    expect(createEventWriter(testDb.db).form).toBe(testDb.db.distribution === 'citus' ? 'routed' : 'json');
  });

  it('keep every rollup equal to the events it counts, across workspaces and retries, in every insert form', async () => {
    for (const writer of writers()) {
      const [first, second] = [randomUUID(), randomUUID()];
      const at = new Date('2026-11-20T10:59:59.999Z');
      const rows = [first, first, second].flatMap((workspaceId, index) => [
        row(workspaceId, { createdAt: at, name: `n${index % 2}` }),
        row(workspaceId, { createdAt: new Date(at.getTime() + 1), name: 'n0' }),
      ]);
      await writer.write(rows);
      await writer.write([rows[0]!, row(second, { createdAt: at, name: 'n0' })]);
      for (const { table, unit } of ROLLUPS) {
        const [mismatch] = await testDb.db.rows<{ n: number }>(sql`
          with counted as (
            select workspace_id, date_trunc(${sql.raw(`'${unit}'`)}, created_at, 'UTC') as bucket, event_type, name, source, count(*) as n
            from telemetry.events where workspace_id in (${first}, ${second}) group by 1, 2, 3, 4, 5
          ), rolled as (
            select workspace_id, ${sql.raw(unit)} as bucket, event_type, name, source, count as n
            from ${sql.raw(`telemetry.${table}`)} where workspace_id in (${first}, ${second})
          )
          select count(*)::int as n from ((table counted except table rolled) union all (table rolled except table counted)) as differences`);
        expect(mismatch?.n, `${writer.form} ${unit}`).toBe(0);
      }
      expect(await storedEvents(testDb.db, second), writer.form).toHaveLength(3);
    }
  });

  it('store text with tabs, newlines, backslashes and any Unicode exactly as given, in every insert form', async () => {
    for (const writer of writers()) {
      const workspaceId = randomUUID();
      const tricky = 'tab\there\nnew\\line\r\\N \\t “quotes” 🚀 \u2028 end';
      const rows = [
        row(workspaceId, {
          name: tricky,
          targetId: '\\N',
          targetType: '',
          metadata: { text: tricky, nested: { list: [1, 'a\tb', null] } },
          userId: randomUUID(),
        }),
        row(workspaceId, { metadata: {}, name: 'plain' }),
      ];
      const claimed = await writer.write(rows);
      expect([...claimed].sort(), writer.form).toEqual(rows.map(eventKey).sort());
      const stored = await storedEvents(testDb.db, workspaceId);
      for (const written of rows) {
        const found = stored.find((s) => s.id === written.id);
        expect(found, writer.form).toMatchObject({
          name: written.name,
          targetId: written.targetId,
          targetType: written.targetType,
          userId: written.userId,
          metadata: written.metadata,
          createdAt: written.createdAt,
        });
      }
    }
  });

  it('claim only the new ids of a write that mixes them with ids already stored', async () => {
    for (const writer of writers()) {
      const workspaceId = randomUUID();
      const stored = [row(workspaceId), row(workspaceId)];
      await writer.write(stored);
      const fresh = [row(workspaceId), row(workspaceId), row(workspaceId)];
      const claimed = await writer.write([fresh[0]!, stored[0]!, fresh[1]!, stored[1]!, fresh[2]!]);
      expect([...claimed].sort(), writer.form).toEqual(fresh.map(eventKey).sort());
      expect(await storedEvents(testDb.db, workspaceId), writer.form).toHaveLength(5);
    }
  });

  it('routed form: answers the database’s refusal of the COPY (not a hang), stores none of the write, and the next write goes through', async () => {
    if (testDb.db.kind !== 'postgres') return;
    const writer = createRoutedEventWriter(testDb.db);
    const workspaceId = randomUUID();
    // An event the events table holds but the ledger does not: its claim succeeds, its COPY is refused (23505).
    const orphan = row(workspaceId);
    await testDb.db.rows(
      sql`insert into telemetry.events (id, workspace_id, source, event_type, name, created_at) values (${orphan.id}, ${workspaceId}, 'web', 'custom', 'x', ${orphan.createdAt.toISOString()})`,
    );
    const companion = row(workspaceId);
    const refusal = await writer.write([companion, orphan]).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isDataRefusal(refusal)).toBe(true);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
    const [ledger] = await testDb.db.rows<{ n: number }>(sql`select count(*)::int as n from telemetry.event_ids where workspace_id = ${workspaceId}`);
    expect(ledger?.n).toBe(0);
    expect((await writer.write([companion])).size).toBe(1);
  });

  it('claim each id once: a second write of the same ids stores nothing and claims nothing', async () => {
    for (const writer of writers()) {
      const workspaceId = randomUUID();
      const rows = [row(workspaceId), row(workspaceId)];
      expect((await writer.write(rows)).size).toBe(2);
      const retried = rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt.getTime() - 86_400_000) }));
      expect((await writer.write(retried)).size, writer.form).toBe(0);
      expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(2);
    }
  });
});

import { randomUUID } from 'node:crypto';
import { asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../db/database.ts';
import type { EventRow } from '../../db/event-writers.ts';
import { events } from '../../db/schema.ts';

/** An event as the writers take it, created now in `workspaceId`, with a user and small metadata. */
export function eventRow(workspaceId: string, overrides: Partial<EventRow> = {}): EventRow {
  const at = new Date();
  return {
    id: randomUUID(),
    workspaceId,
    userId: randomUUID(),
    source: 'web',
    eventType: 'custom',
    name: 'x',
    targetType: null,
    targetId: null,
    metadata: { value: 1 },
    createdAt: at,
    receivedAt: at,
    ...overrides,
  };
}

/** Every stored event of one workspace, oldest first, read straight from the table. */
export function storedEvents(db: Database, workspaceId: string) {
  return db.orm
    .select({
      id: events.id,
      workspaceId: events.workspaceId,
      userId: events.userId,
      source: events.source,
      eventType: events.eventType,
      name: events.name,
      targetType: events.targetType,
      targetId: events.targetId,
      metadata: events.metadata,
      createdAt: events.createdAt,
      receivedAt: events.receivedAt,
    })
    .from(events)
    .where(eq(events.workspaceId, workspaceId))
    .orderBy(asc(events.createdAt));
}

export async function countEventsWithId(db: Database, id: string): Promise<number> {
  const [row] = await db.rows<{ count: number }>(sql`select count(*)::int as count from telemetry.events where id = ${id}`);
  return Number(row?.count ?? 0);
}

/** The partition holding an event. On Citus the row sits in a shard of it, named `<partition>_<shard id>`: the suffix is dropped. */
export async function partitionOf(db: Database, id: string): Promise<string | undefined> {
  const [row] = await db.rows<{ partition: string }>(
    sql`select regexp_replace(tableoid::regclass::text, '_[0-9]+$', '') as partition from telemetry.events where id = ${id}`,
  );
  return row?.partition;
}

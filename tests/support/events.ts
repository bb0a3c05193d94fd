import { asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../db/database.ts';
import { events } from '../../db/schema.ts';

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

export async function partitionOf(db: Database, id: string): Promise<string | undefined> {
  const [row] = await db.rows<{ partition: string }>(sql`select tableoid::regclass::text as partition from telemetry.events where id = ${id}`);
  return row?.partition;
}

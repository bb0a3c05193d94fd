import { and, eq } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { eventIds, events } from '../../../db/schema.ts';
import { DomainError } from '../../errors.ts';
import type { StoredEvent } from './schemas.ts';

/** Columns a reader gets, selected explicitly so a new column never leaks by accident. */
export const storedEventColumns = {
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
};

export type EventReader = ReturnType<typeof createEventReader>;

export function createEventReader({ db }: { db: Database }) {
  /**
   * One event of one workspace. The ledger gives the event's time, so the lookup touches only the
   * partition that holds it. Another workspace's event is "not found", never "forbidden", so ids
   * cannot be probed.
   */
  async function getEvent(id: string, workspaceId: string): Promise<StoredEvent> {
    // Joined on the ledger's exact created_at (microseconds included), so Postgres prunes the
    // lookup to the one partition that holds the event.
    const [row] = await db.orm
      .select(storedEventColumns)
      .from(eventIds)
      .innerJoin(events, and(eq(events.id, eventIds.id), eq(events.createdAt, eventIds.createdAt)))
      .where(and(eq(eventIds.id, id), eq(eventIds.workspaceId, workspaceId), eq(events.workspaceId, workspaceId)));
    if (!row) throw new DomainError('not_found', 'No event with this id in this workspace');
    return { ...row, source: row.source as StoredEvent['source'], metadata: (row.metadata ?? null) as StoredEvent['metadata'] };
  }

  return { getEvent };
}

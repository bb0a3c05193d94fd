import { sql } from 'drizzle-orm';
import type { SqlRunner } from '../../../db/database.ts';
import { type EventRow, isoTimeOf, storedEvent } from '../../../db/event-writers.ts';
import { DomainError } from '../../errors.ts';
import { fromEpochMicros } from './precise-time.ts';
import type { StoredEvent } from './schemas.ts';

/**
 * Columns a reader gets, named explicitly so a new column never leaks by accident; times as epoch
 * microseconds in text (exact: a float loses them, and a bigint may not fit a JS number).
 */
export const STORED_EVENT_SELECT = sql`e.id, e.workspace_id, e.user_id, e.source, e.event_type, e.name, e.target_type, e.target_id, e.metadata,
  (extract(epoch from e.created_at) * 1000000)::bigint::text as created_micros, (extract(epoch from e.received_at) * 1000000)::bigint::text as received_micros`;

export interface StoredEventRow {
  id: string;
  workspace_id: string;
  user_id: string | null;
  source: string;
  event_type: string;
  name: string;
  target_type: string | null;
  target_id: string | null;
  metadata: Record<string, unknown> | null;
  created_micros: string;
  received_micros: string;
}

/**
 * The one conversion to what readers get, from an event as the write path holds it (live delivery
 * publishes committed rows) or as a read brings it back (`fromStoredEventRow`). Times keep their
 * microseconds: a PreciseDate writes them back in toISOString().
 */
export function toStoredEvent(event: EventRow): StoredEvent {
  // The row's text values were validated on the way in (source is one of SOURCES, metadata JSON).
  return storedEvent(event, isoTimeOf) as StoredEvent;
}

/** A row read with STORED_EVENT_SELECT, as readers get it. */
export function fromStoredEventRow(row: StoredEventRow): StoredEvent {
  return toStoredEvent({
    id: row.id,
    workspaceId: row.workspace_id,
    userId: row.user_id,
    source: row.source,
    eventType: row.event_type,
    name: row.name,
    targetType: row.target_type,
    targetId: row.target_id,
    metadata: row.metadata,
    createdAt: fromEpochMicros(row.created_micros),
    receivedAt: fromEpochMicros(row.received_micros),
  });
}

export type EventReader = ReturnType<typeof createEventReader>;

export function createEventReader({ db }: { db: SqlRunner }) {
  /**
   * One event of one workspace. The ledger gives the event's time, so the lookup touches only the
   * partition that holds it. Another workspace's event is "not found", never "forbidden", so ids
   * cannot be probed.
   */
  async function getEvent(id: string, workspaceId: string): Promise<StoredEvent> {
    // The ledger gives the exact created_at (microseconds included); with it as a value, Postgres
    // prunes the lookup to the one partition that holds the event when it plans the query.
    const [ledger] = await db.rows<{ created_at_text: string }>(sql`
      select created_at::text as created_at_text from telemetry.event_ids where id = ${id} and workspace_id = ${workspaceId}`);
    const [row] = ledger
      ? await db.rows<StoredEventRow>(sql`
          select ${STORED_EVENT_SELECT} from telemetry.events e
          where e.created_at = ${ledger.created_at_text}::timestamptz and e.id = ${id} and e.workspace_id = ${workspaceId}`)
      : [];
    if (!row) throw new DomainError('not_found', 'No event with this id in this workspace');
    return fromStoredEventRow(row);
  }

  return { getEvent };
}

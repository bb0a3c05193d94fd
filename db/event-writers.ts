import { sql as drizzleSql, type SQL } from 'drizzle-orm';
import type { Database, SqlRunner } from './database.ts';
import { retryTransientConflicts } from './errors.ts';
import { ADD_INSERTED_TO_ROLLUPS } from './rollups.ts';

/** One event as stored: ids and times resolved, metadata as a JSON object or null. */
export interface EventRow {
  id: string;
  workspaceId: string | null;
  userId: string | null;
  source: string;
  eventType: string;
  name: string;
  targetType: string | null;
  targetId: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: Date;
  receivedAt: Date;
}

/**
 * Stores events exactly once: claims each id in the `event_ids` ledger and inserts only the
 * events whose claim succeeded, atomically. Answers the ids stored now (a retry of an event that
 * is already stored is not among them). Rows must have distinct ids.
 */
export interface EventWriter {
  /** The insert form, by name: production has one (`json`); the benchmark compares others (bench/insert-forms.ts). */
  readonly form: string;
  write(rows: readonly EventRow[]): Promise<Set<string>>;
}

export const EVENT_COLUMNS = 'id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at';

/**
 * The service's write form: the single JSON statement (claim, insert and every rollup in one round
 * trip), the fastest form `npm run bench` measures once the rollups are written in the same
 * transaction (bench/results), and the one form PGlite runs.
 */
export function createEventWriter(db: Database): EventWriter {
  return createJsonEventWriter(db);
}

/**
 * Any driver: the rows travel as one JSON document, expanded in SQL; one statement claims the ids,
 * inserts the events and adds them to every rollup.
 */
export function createJsonEventWriter(db: SqlRunner): EventWriter {
  return {
    form: 'json',
    async write(rows) {
      if (rows.length === 0) return new Set();
      const json = JSON.stringify(
        rows.map((r) => ({
          id: r.id,
          workspace_id: r.workspaceId,
          user_id: r.userId,
          source: r.source,
          event_type: r.eventType,
          name: r.name,
          target_type: r.targetType,
          target_id: r.targetId,
          metadata: r.metadata,
          created_at: r.createdAt.toISOString(),
          received_at: r.receivedAt.toISOString(),
        })),
      );
      // Concurrent flushes can still deadlock on shared rollup rows; the loser's statement is safe to rerun.
      const result = await retryTransientConflicts(() => db.rows<{ id: string }>(storeJsonEventsStatement(json)));
      return new Set(result.map((row) => row.id));
    },
  };
}

/**
 * One statement that stores a JSON document of events (an array of objects with the column
 * names) exactly once: claims the ids in the ledger, inserts the events whose claim succeeded and
 * adds them to every rollup (db/rollups.ts). Answers the ids stored now. Used by the write
 * path and by the archive loader, so both keep the ledger and rollups the same way.
 */
export function storeJsonEventsStatement(document: string): SQL {
  return drizzleSql`
    with input as (
      select * from jsonb_to_recordset(${document}::jsonb) as x(
        id uuid, workspace_id uuid, user_id uuid, source text, event_type text, name text,
        target_type text, target_id text, metadata jsonb, created_at timestamptz, received_at timestamptz)
    ), claimed as (
      insert into telemetry.event_ids (id, workspace_id, created_at)
      select id, workspace_id, created_at from input
      on conflict (id) do nothing
      returning id
    ), inserted as (
      insert into telemetry.events (${drizzleSql.raw(EVENT_COLUMNS)})
      select i.id, i.workspace_id, i.user_id, i.source, i.event_type, i.name, i.target_type, i.target_id, i.metadata, i.created_at, i.received_at
      from input i join claimed c on c.id = i.id
      returning id, workspace_id, created_at, event_type, name, source
    )${ADD_INSERTED_TO_ROLLUPS}
    select id from inserted`;
}

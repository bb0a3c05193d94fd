import { sql as drizzleSql, type SQL } from 'drizzle-orm';
import type { Database, SqlRunner } from './database.ts';
import { retryTransientConflicts } from './errors.ts';
import { ADD_INSERTED_TO_ROLLUPS } from './rollups.ts';
import { lastIsoTime } from './timestamps.ts';

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
      const { document } = storedEventsJson(rows);
      // Concurrent flushes can still deadlock on shared rollup rows; the loser's statement is safe to rerun.
      const unclaimed = await retryTransientConflicts(() => db.rows<{ id: string }>(storeStoredEventsStatement(document)));
      return claimedIds(rows, unclaimed);
    },
  };
}

/** Rows as JSON text: the document the write statement reads, and each event's own JSON. */
export interface StoredEventsJson {
  /** A JSON array of the events as readers get them (`toStoredEvent` in server/services/events/read.ts). */
  readonly document: string;
  /**
   * The JSON of `rows[index]`: a slice of the document, which costs no copy of the text but keeps
   * the whole document alive as long as it is.
   */
  eventJson(index: number): string;
}

const jsonByRows = new WeakMap<readonly EventRow[], StoredEventsJson>();

/**
 * The rows as JSON, made once per array of rows: the writer sends the document, and live delivery
 * (given the same array once it is committed) can keep each event's slice of it. Kept as one
 * string, the text of a flush is one allocation the garbage collector never copies, instead of a
 * string per event moved on every young-generation collection it survives. Rows must not change
 * once written.
 */
export function storedEventsJson(rows: readonly EventRow[]): StoredEventsJson {
  let json = jsonByRows.get(rows);
  if (!json) {
    json = buildStoredEventsJson(rows);
    jsonByRows.set(rows, json);
  }
  return json;
}

/** One row as JSON, in a string of its own: the same text as its slice of `storedEventsJson`. */
export function storedEventJson(row: EventRow): string {
  return JSON.stringify(storedEvent(row, isoTimeOf));
}

function buildStoredEventsJson(rows: readonly EventRow[]): StoredEventsJson {
  // Rows of one call share their received time (and, sent without a time, their created time).
  const isoTime = lastIsoTime();
  const ends = new Array<number>(rows.length);
  let document = '[';
  for (let index = 0; index < rows.length; index += 1) {
    if (index > 0) document += ',';
    document += JSON.stringify(storedEvent(rows[index]!, isoTime));
    ends[index] = document.length;
  }
  document += ']';
  return {
    document,
    eventJson: (index) => document.slice(index === 0 ? 1 : ends[index - 1]! + 1, ends[index]),
  };
}

/**
 * An event as readers get it (keys in this order, times as ISO 8601): the live stream's JSON, the
 * write statement's document and `toStoredEvent` (server/services/events/read.ts) all come from here.
 */
export function storedEvent(row: EventRow, isoTime: (date: Date) => string) {
  return {
    id: row.id,
    workspaceId: row.workspaceId,
    userId: row.userId,
    source: row.source,
    eventType: row.eventType,
    name: row.name,
    targetType: row.targetType,
    targetId: row.targetId,
    metadata: row.metadata ?? null,
    createdAt: isoTime(row.createdAt),
    receivedAt: isoTime(row.receivedAt),
  };
}

/** ISO 8601, with the microseconds a PreciseDate carries. */
export const isoTimeOf = (date: Date) => date.toISOString();

/** The ids of the rows stored now: every row's but those the statement answered as not claimed (retries). */
function claimedIds(rows: readonly EventRow[], unclaimed: readonly { id: string }[]): Set<string> {
  const claimed = new Set<string>();
  const notClaimed = new Set(unclaimed.map((row) => row.id));
  for (const row of rows) if (!notClaimed.has(row.id)) claimed.add(row.id);
  return claimed;
}

/** The stored events columns from a JSON document of objects keyed by the column names (an archive's lines). */
const COLUMN_KEYED_INPUT = (document: string) => drizzleSql`
  select * from jsonb_to_recordset(${document}::jsonb) as x(
    id uuid, workspace_id uuid, user_id uuid, source text, event_type text, name text,
    target_type text, target_id text, metadata jsonb, created_at timestamptz, received_at timestamptz)`;

/** The same from a JSON document of stored events as readers get them (`storedEventsJson`). */
const STORED_EVENT_INPUT = (document: string) => drizzleSql`
  select id, "workspaceId" as workspace_id, "userId" as user_id, source, "eventType" as event_type, name,
    "targetType" as target_type, "targetId" as target_id, metadata, "createdAt" as created_at, "receivedAt" as received_at
  from jsonb_to_recordset(${document}::jsonb) as x(
    id uuid, "workspaceId" uuid, "userId" uuid, source text, "eventType" text, name text,
    "targetType" text, "targetId" text, metadata jsonb, "createdAt" timestamptz, "receivedAt" timestamptz)`;

/**
 * One statement that stores a JSON document of events (an array of objects with the column
 * names) exactly once: claims the ids in the ledger, inserts the events whose claim succeeded and
 * adds them to every rollup (db/rollups.ts). Answers the ids stored now. Used by the archive
 * loader; the write path runs the same statement on its own document (storeStoredEventsStatement),
 * so both keep the ledger and rollups the same way.
 */
export function storeJsonEventsStatement(document: string): SQL {
  return storeEventsStatement(COLUMN_KEYED_INPUT(document), drizzleSql`select id from inserted`);
}

/**
 * The write path's form of it: reads stored events (`storedEventsJson`) and answers only the ids
 * that were not claimed (the ledger held them already), which in the common case is none, so a
 * large flush gets no id back.
 */
function storeStoredEventsStatement(document: string): SQL {
  return storeEventsStatement(STORED_EVENT_INPUT(document), drizzleSql`select i.id from input i where not exists (select from claimed c where c.id = i.id)`);
}

function storeEventsStatement(input: SQL, answer: SQL): SQL {
  return drizzleSql`
    with input as (${input}
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
    ${answer}`;
}

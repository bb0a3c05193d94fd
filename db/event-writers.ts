import { sql as drizzleSql, type SQL } from 'drizzle-orm';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { toCopyText } from './copy-text.ts';
import type { Database, PostgresDatabase, SqlRunner } from './database.ts';
import { isInternalError, retryTransientConflicts } from './errors.ts';
import { ADD_INSERTED_TO_ROLLUPS, ROLLUPS } from './rollups.ts';
import { lastIsoTime } from './timestamps.ts';

/** One event as stored: ids and times resolved, metadata as a JSON object or null. */
export interface EventRow {
  id: string;
  workspaceId: string;
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
 * What makes a stored event unique: its id within its workspace (docs/adr/0013-workspace-keys.md).
 * The same id in two workspaces is two events. Writers answer, and callers match, by this key.
 */
export function eventKey(row: { workspaceId: string; id: string }): string {
  return `${row.workspaceId}\n${row.id}`;
}

/**
 * Stores events exactly once: claims each (workspace, id) in the `event_ids` ledger and inserts
 * only the events whose claim succeeded, atomically. Answers the keys (`eventKey`) stored now (a
 * retry of an event that is already stored is not among them). Rows must have distinct keys.
 */
export interface EventWriter {
  /** The insert form, by name: production has one (`json`); the benchmark compares others (bench/insert-forms.ts). */
  readonly form: string;
  write(rows: readonly EventRow[]): Promise<Set<string>>;
}

export const EVENT_COLUMNS = 'id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at';

/**
 * The service's write form, chosen by the database's configured distribution (DATABASE_DISTRIBUTED),
 * never by looking at the server. On one database: the single JSON statement (claim, insert and
 * every rollup in one round trip), the fastest form `npm run bench` measures once the rollups are
 * written in the same transaction (bench/results), and the one form PGlite runs. On Citus: the
 * routed form, whose statements go straight to the shards of their workspaces.
 */
export function createEventWriter(db: Database, options: RoutedWriterOptions = {}): EventWriter {
  return db.kind === 'postgres' && db.distribution === 'citus' ? createRoutedEventWriter(db, options) : createJsonEventWriter(db);
}

export interface RoutedWriterOptions {
  /**
   * Longest any statement of a write may run on the coordinator. A worker whose host stops
   * answering leaves the coordinator waiting on an open connection with no error for as long as TCP
   * allows; past this the statement is cancelled, so the write fails and its pool connection comes
   * back instead of being held for ever.
   */
  statementTimeoutMs?: number;
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
      const unclaimed = await retryTransientConflicts(() => db.rows<{ id: string; workspace_id: string }>(storeStoredEventsStatement(document)));
      return claimedKeys(rows, unclaimed);
    },
  };
}

/** Rows per multi-row VALUES statement, so its parameters stay under PostgreSQL's 65,535. */
const CLAIMS_PER_STATEMENT = 20_000;
const EVENTS_PER_STATEMENT = 5_000;
const ROLLUP_ROWS_PER_STATEMENT = 10_000;

/** A statement as text and parameters, for postgres.js's `unsafe` (and for EXPLAIN in tests). */
export interface Statement {
  text: string;
  params: (string | number | null)[];
}

/**
 * Citus: the same guarantees as the JSON statement, in statements Citus sends straight to the
 * shards of their workspaces. On Citus the JSON statement's input is a function's result, so every
 * row of it passes through the coordinator (INSERT ... SELECT, "pull to coordinator"). Here, in one
 * transaction: the ids are claimed with a multi-row VALUES insert into the ledger (Citus splits it
 * by workspace, one task per shard touched); the events whose claim succeeded are COPYed (Citus
 * routes each row to its shard's worker); the rollups are added with multi-row VALUES upserts,
 * counted here in key order, sent together. When a COPY fails with no better reason than an internal
 * error (Citus's report of a worker's error), the write runs again with the events as multi-row
 * VALUES inserts, which report the worker's own error. The transaction
 * keeps a call atomic whichever workspaces it spans (Citus commits across workers with two-phase
 * commit). postgres.js only: Citus is never PGlite.
 */
export function createRoutedEventWriter(db: PostgresDatabase, { statementTimeoutMs }: RoutedWriterOptions = {}): EventWriter {
  const client = db.client;
  const writeOnce = (rows: readonly EventRow[], events: 'copy' | 'values') =>
    client.begin(async (tx) => {
      // The time limit and the claims go out together (postgres.js pipelines them): no round trip of their own.
      const limit = statementTimeoutMs ? [tx.unsafe(`set local statement_timeout = ${Math.floor(statementTimeoutMs)}`).then(() => [])] : [];
      const answers = await Promise.all([
        ...limit,
        ...claimStatements(rows).map(({ text, params }) => tx.unsafe<{ workspace_id: string; id: string }[]>(text, params)),
      ]);
      const claimed = new Set<string>();
      for (const answer of answers) for (const row of answer) claimed.add(eventKey({ workspaceId: row.workspace_id, id: row.id }));
      const stored = claimed.size === rows.length ? rows : rows.filter((row) => claimed.has(eventKey(row)));
      if (stored.length === 0) return claimed;
      if (events === 'copy') {
        // COPY holds the connection until it ends: the rollups follow it, sent together.
        const copy = await tx.unsafe(`copy telemetry.events (${EVENT_COLUMNS}) from stdin`).writable();
        await pipeline(Readable.from([toCopyText(stored)]), copy);
        await Promise.all(rollupStatements(stored).map(({ text, params }) => tx.unsafe(text, params)));
      } else {
        await Promise.all([...eventInsertStatements(stored), ...rollupStatements(stored)].map(({ text, params }) => tx.unsafe(text, params)));
      }
      return claimed;
    }) as Promise<Set<string>>;
  return {
    form: 'routed',
    async write(rows) {
      if (rows.length === 0) return new Set();
      // Concurrent flushes can still deadlock on shared rollup rows; the loser's transaction is safe to rerun.
      try {
        return await retryTransientConflicts(() => writeOnce(rows, 'copy'));
      } catch (error) {
        // Citus reports any error a worker raised during a COPY as an internal error, without the
        // worker's SQLSTATE; the same write as INSERT statements says what it was (a value the
        // database refuses, which group commit then isolates; a worker it cannot reach). The
        // failed transaction left nothing behind.
        if (!isInternalError(error)) throw error;
        return retryTransientConflicts(() => writeOnce(rows, 'values'));
      }
    },
  };
}

/** The routed form's event inserts, when COPY cannot say why it failed: multi-row VALUES. */
export function eventInsertStatements(stored: readonly EventRow[]): Statement[] {
  return inParts(stored, EVENTS_PER_STATEMENT).map((part) => {
    const params: (string | null)[] = [];
    const values = part.map((row) => {
      params.push(
        row.id,
        row.workspaceId,
        row.userId,
        row.source,
        row.eventType,
        row.name,
        row.targetType,
        row.targetId,
        row.metadata === null ? null : JSON.stringify(row.metadata),
        isoTimeOf(row.createdAt),
        isoTimeOf(row.receivedAt),
      );
      const at = params.length;
      return `(${Array.from({ length: 11 }, (_, column) => `$${at - 10 + column}`).join(', ')})`;
    });
    return { text: `insert into telemetry.events (${EVENT_COLUMNS}) values ${values.join(', ')}`, params };
  });
}

/** The routed form's ledger claims: multi-row VALUES, answering the (workspace, id) claimed now. */
export function claimStatements(rows: readonly EventRow[]): Statement[] {
  return inParts(rows, CLAIMS_PER_STATEMENT).map((part) => {
    const params: string[] = [];
    const values = part.map((row) => {
      params.push(row.workspaceId, row.id, isoTimeOf(row.createdAt));
      const at = params.length;
      return `($${at - 2}, $${at - 1}, $${at})`;
    });
    return {
      text: `insert into telemetry.event_ids (workspace_id, id, created_at) values ${values.join(', ')}
        on conflict (workspace_id, id) do nothing returning workspace_id, id`,
      params,
    };
  });
}

/** The routed form's rollup upserts for stored rows: one or more per rollup, rows in key order. */
export function rollupStatements(stored: readonly EventRow[]): Statement[] {
  return ROLLUPS.flatMap(({ table, unit, unitMs }) =>
    inParts(rollupCounts(stored, unitMs), ROLLUP_ROWS_PER_STATEMENT).map((part) => {
      const params: (string | number)[] = [];
      const values = part.map((count) => {
        params.push(count.workspaceId, count.bucket, count.eventType, count.name, count.source, count.count);
        const at = params.length;
        return `($${at - 5}, $${at - 4}, $${at - 3}, $${at - 2}, $${at - 1}, $${at})`;
      });
      return {
        text: `insert into telemetry.${table} as counts (workspace_id, ${unit}, event_type, name, source, count) values ${values.join(', ')}
          on conflict (workspace_id, ${unit}, event_type, name, source) do update set count = counts.count + excluded.count`,
        params,
      };
    }),
  );
}

function inParts<T>(items: readonly T[], size: number): (readonly T[])[] {
  const parts: (readonly T[])[] = [];
  for (let start = 0; start < items.length; start += size) parts.push(items.slice(start, start + size));
  return parts;
}

/** Rollup counts of stored rows for one time unit (UTC), in key order (the order rows are locked in). */
function rollupCounts(rows: readonly EventRow[], unitMs: number) {
  const counts = new Map<string, { workspaceId: string; bucket: string; eventType: string; name: string; source: string; count: number }>();
  for (const row of rows) {
    const bucket = new Date(Math.floor(row.createdAt.getTime() / unitMs) * unitMs).toISOString();
    const key = `${row.workspaceId}\u0000${bucket}\u0000${row.eventType}\u0000${row.name}\u0000${row.source}`;
    const entry = counts.get(key);
    if (entry) entry.count += 1;
    else counts.set(key, { workspaceId: row.workspaceId, bucket, eventType: row.eventType, name: row.name, source: row.source, count: 1 });
  }
  return [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, value]) => value);
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

/** The keys of the rows stored now: every row's but those the statement answered as not claimed (retries). */
function claimedKeys(rows: readonly EventRow[], unclaimed: readonly { id: string; workspace_id: string }[]): Set<string> {
  const claimed = new Set<string>();
  const notClaimed = new Set(unclaimed.map((row) => eventKey({ workspaceId: row.workspace_id, id: row.id })));
  for (const row of rows) {
    const key = eventKey(row);
    if (!notClaimed.has(key)) claimed.add(key);
  }
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
 * adds them to every rollup (db/rollups.ts). Answers the (id, workspace_id) of the events stored now. Used by the archive
 * loader; the write path runs the same statement on its own document (storeStoredEventsStatement),
 * so both keep the ledger and rollups the same way.
 */
export function storeJsonEventsStatement(document: string): SQL {
  return storeEventsStatement(COLUMN_KEYED_INPUT(document), drizzleSql`select id, workspace_id from inserted`);
}

/**
 * The write path's form of it: reads stored events (`storedEventsJson`) and answers only the
 * (id, workspace_id) that were not claimed (the ledger held them already), which in the common case is none, so a
 * large flush gets no id back.
 */
function storeStoredEventsStatement(document: string): SQL {
  return storeEventsStatement(
    STORED_EVENT_INPUT(document),
    drizzleSql`select i.id, i.workspace_id from input i where not exists (select from claimed c where c.workspace_id = i.workspace_id and c.id = i.id)`,
  );
}

function storeEventsStatement(input: SQL, answer: SQL): SQL {
  return drizzleSql`
    with input as (${input}
    ), claimed as (
      insert into telemetry.event_ids (id, workspace_id, created_at)
      select id, workspace_id, created_at from input
      on conflict (workspace_id, id) do nothing
      returning workspace_id, id
    ), inserted as (
      insert into telemetry.events (${drizzleSql.raw(EVENT_COLUMNS)})
      select i.id, i.workspace_id, i.user_id, i.source, i.event_type, i.name, i.target_type, i.target_id, i.metadata, i.created_at, i.received_at
      from input i join claimed c on c.workspace_id = i.workspace_id and c.id = i.id
      returning id, workspace_id, created_at, event_type, name, source
    )${ADD_INSERTED_TO_ROLLUPS}
    ${answer}`;
}

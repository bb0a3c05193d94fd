import { sql as drizzleSql, type SQL } from 'drizzle-orm';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql, TransactionSql } from 'postgres';
import type { Database, SqlRunner } from './database.ts';
import { retryTransientConflicts } from './errors.ts';

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
  readonly form: 'copy' | 'unnest' | 'values' | 'json';
  write(rows: readonly EventRow[]): Promise<Set<string>>;
}

const EVENT_COLUMNS = 'id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at';

/**
 * The fastest form, as measured by `npm run bench` (README, Performance): once the per-minute and
 * per-hour rollups are written in the same transaction, the single JSON statement (claim, insert
 * and both rollups in one round trip) beat COPY plus separate statements, 0.64x against 0.49x of
 * raw COPY's rows/s. It is also the one form PGlite runs.
 */
export function createEventWriter(db: Database): EventWriter {
  return createJsonEventWriter(db);
}

/**
 * postgres.js: claim the ids with one `unnest` insert into the ledger, then `COPY` the claimed
 * events straight into the partitioned table, in one transaction. COPY uses Postgres's multi-row
 * insert path, which an INSERT ... SELECT does not.
 */
export function createCopyEventWriter(client: Sql): EventWriter {
  return {
    form: 'copy',
    async write(rows) {
      if (rows.length === 0) return new Set();
      // Concurrent flushes can still deadlock on shared rollup rows; the loser's transaction is safe to rerun.
      return retryTransientConflicts(
        () =>
          client.begin(async (tx) => {
            const claimed = await claimIds(tx, rows);
            const toCopy = rows.filter((row) => claimed.has(row.id));
            if (toCopy.length > 0) {
              const writable = await tx.unsafe(`copy telemetry.events (${EVENT_COLUMNS}) from stdin`).writable();
              await pipeline(Readable.from([toCopyText(toCopy)]), writable);
              await addToRollups(tx, toCopy);
            }
            return claimed;
          }) as Promise<Set<string>>,
      );
    },
  };
}

/**
 * postgres.js: one statement, all columns passed as arrays and expanded with `unnest`. Needs a client
 * Drizzle has not wrapped (see claimIds); used by the insert-form benchmark.
 */
export function createUnnestEventWriter(client: Sql): EventWriter {
  return {
    form: 'unnest',
    async write(rows) {
      if (rows.length === 0) return new Set();
      const column = <T>(pick: (row: EventRow) => T) => rows.map(pick);
      return claimInsertAndRollUp(client, rows, (tx) => tx`
        with input as (
          select * from unnest(
            ${column((r) => r.id)}::uuid[], ${column((r) => r.workspaceId)}::uuid[], ${column((r) => r.userId)}::uuid[],
            ${column((r) => r.source)}::text[], ${column((r) => r.eventType)}::text[], ${column((r) => r.name)}::text[],
            ${column((r) => r.targetType)}::text[], ${column((r) => r.targetId)}::text[],
            ${column((r) => (r.metadata === null ? null : JSON.stringify(r.metadata)))}::text[]::jsonb[],
            ${column((r) => r.createdAt.toISOString())}::timestamptz[], ${column((r) => r.receivedAt.toISOString())}::timestamptz[]
          ) as x(id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at)
        ), claimed as (
          insert into telemetry.event_ids (id, workspace_id, created_at)
          select id, workspace_id, created_at from input
          on conflict (id) do nothing
          returning id
        )
        insert into telemetry.events (${tx.unsafe(EVENT_COLUMNS)})
        select i.* from input i join claimed c on c.id = i.id
        returning id`);
    },
  };
}

/** postgres.js: one statement with a multi-row VALUES list (11 parameters per event); for the benchmark. */
export function createValuesEventWriter(client: Sql): EventWriter {
  return {
    form: 'values',
    async write(rows) {
      if (rows.length === 0) return new Set();
      const values = rows.map((r) => [
        r.id, r.workspaceId, r.userId, r.source, r.eventType, r.name, r.targetType, r.targetId,
        r.metadata === null ? null : JSON.stringify(r.metadata), r.createdAt.toISOString(), r.receivedAt.toISOString(),
      ]);
      return claimInsertAndRollUp(client, rows, (tx) => tx`
        with input (id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at) as (
          values ${tx(values as never)}
        ), typed as (
          select id::uuid, workspace_id::uuid, user_id::uuid, source, event_type, name, target_type, target_id,
                 metadata::jsonb, created_at::timestamptz, received_at::timestamptz
          from input
        ), claimed as (
          insert into telemetry.event_ids (id, workspace_id, created_at)
          select id, workspace_id, created_at from typed
          on conflict (id) do nothing
          returning id
        )
        insert into telemetry.events (${tx.unsafe(EVENT_COLUMNS)})
        select t.* from typed t join claimed c on c.id = t.id
        returning id`);
    },
  };
}

/**
 * Any driver: the rows travel as one JSON document, expanded in SQL; one statement claims the ids,
 * inserts the events and adds them to both rollups.
 */
export function createJsonEventWriter(db: SqlRunner): EventWriter {
  return {
    form: 'json',
    async write(rows) {
      if (rows.length === 0) return new Set();
      const json = JSON.stringify(
        rows.map((r) => ({
          id: r.id, workspace_id: r.workspaceId, user_id: r.userId, source: r.source, event_type: r.eventType, name: r.name,
          target_type: r.targetType, target_id: r.targetId, metadata: r.metadata, created_at: r.createdAt.toISOString(),
          received_at: r.receivedAt.toISOString(),
        })),
      );
      // Concurrent flushes can still deadlock on shared rollup rows; the loser's statement is safe to rerun.
      const result = await retryTransientConflicts(() => db.rows<{ id: string }>(storeJsonEventsStatement(json)));
      return new Set(result.map((row) => row.id));
    },
  };
}

const ROLLUPS = [
  { table: 'event_counts_minute', column: 'minute', unitMs: 60_000 },
  { table: 'event_counts_hour', column: 'hour', unitMs: 3_600_000 },
] as const;

/**
 * One CTE per rollup adding the `inserted` rows to it, in one fixed order so concurrent flushes
 * lock rows alike: within a rollup in key order (the insert's ORDER BY); across rollups in the
 * order the executor runs unreferenced data-modifying CTEs, which is fixed by their place in the
 * list (ROLLUP_SUBTRACTIONS lists them alike). Built once from constants (the column is also the
 * date_trunc unit).
 */
const ROLLUP_UPSERTS = drizzleSql.raw(
  ROLLUPS.map(
    ({ table, column }) => `, counted_${column} as (
      insert into telemetry.${table} as counts (workspace_id, ${column}, event_type, name, source, count)
      select workspace_id, date_trunc('${column}', created_at, 'UTC'), event_type, name, source, count(*)
      from inserted where workspace_id is not null
      group by 1, 2, 3, 4, 5
      order by 1, 2, 3, 4, 5
      on conflict (workspace_id, ${column}, event_type, name, source) do update set count = counts.count + excluded.count
    )`,
  ).join(''),
);

/**
 * One CTE per rollup subtracting the rows of a `deleted` CTE (workspace_id, created_at,
 * event_type, name, source) from it, for erasure. It locks the rollup rows exactly as a flush
 * does (the same rollups in the same place, each in key order) before updating them, so an
 * erasure and a concurrent flush wait for each other instead of deadlocking. (An UPDATE ... FROM
 * locks rows in whatever order its join yields them.)
 */
export const ROLLUP_SUBTRACTIONS = drizzleSql.raw(
  ROLLUPS.map(
    ({ table, column }) => `, removed_${column} as (
      select workspace_id, date_trunc('${column}', created_at, 'UTC') as at, event_type, name, source, count(*) as n
      from deleted where workspace_id is not null
      group by 1, 2, 3, 4, 5
    ), locked_${column} as (
      select c.workspace_id, c.${column}, c.event_type, c.name, c.source, r.n
      from telemetry.${table} c
      join removed_${column} r on c.workspace_id = r.workspace_id and c.${column} = r.at and c.event_type = r.event_type and c.name = r.name and c.source = r.source
      order by c.workspace_id, c.${column}, c.event_type, c.name, c.source
      for update of c
    ), subtracted_${column} as (
      update telemetry.${table} c set count = c.count - l.n
      from locked_${column} l
      where c.workspace_id = l.workspace_id and c.${column} = l.${column} and c.event_type = l.event_type and c.name = l.name and c.source = l.source
    )`,
  ).join(''),
);

/**
 * One statement that stores a JSON document of events (an array of objects with the column
 * names) exactly once: claims the ids in the ledger, inserts the events whose claim succeeded and
 * adds them to the per-minute and per-hour rollups. Answers the ids stored now. Used by the write
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
    )${ROLLUP_UPSERTS}
    select id from inserted`;
}


/** Counts of the stored rows per time unit, in one fixed order so concurrent flushes lock rows alike. */
function rollupRows(rows: readonly EventRow[], unitMs: number) {
  const counts = new Map<string, { workspace_id: string; at: string; event_type: string; name: string; source: string; count: number }>();
  for (const row of rows) {
    if (!row.workspaceId) continue;
    const at = new Date(Math.floor(row.createdAt.getTime() / unitMs) * unitMs).toISOString();
    const key = `${row.workspaceId}\u0000${at}\u0000${row.eventType}\u0000${row.name}\u0000${row.source}`;
    const entry = counts.get(key);
    if (entry) entry.count += 1;
    else counts.set(key, { workspace_id: row.workspaceId, at, event_type: row.eventType, name: row.name, source: row.source, count: 1 });
  }
  return [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, value]) => value);
}

/** Adds stored rows to the per-minute and per-hour counts, inside the transaction that stored them. */
async function addToRollups(tx: TransactionSql, rows: readonly EventRow[]): Promise<void> {
  for (const rollup of ROLLUPS) {
    const counts = rollupRows(rows, rollup.unitMs);
    if (counts.length === 0) return;
    await tx.unsafe(
      `insert into telemetry.${rollup.table} as counts (workspace_id, ${rollup.column}, event_type, name, source, count)
       select * from jsonb_to_recordset($1::text::jsonb)
         as x(workspace_id uuid, at timestamptz, event_type text, name text, source text, count bigint)
       on conflict (workspace_id, ${rollup.column}, event_type, name, source) do update set count = counts.count + excluded.count`,
      [JSON.stringify(counts)],
    );
  }
}

/** Runs one claim-and-insert statement and the rollup upserts in a transaction; answers the ids stored. */
function claimInsertAndRollUp(
  client: Sql,
  rows: readonly EventRow[],
  claimAndInsert: (tx: TransactionSql) => Promise<readonly { id?: unknown }[]>,
): Promise<Set<string>> {
  return retryTransientConflicts(
    () =>
      client.begin(async (tx) => {
        const stored = new Set((await claimAndInsert(tx)).map((row) => String(row.id)));
        await addToRollups(tx, rows.filter((row) => stored.has(row.id)));
        return stored;
      }) as Promise<Set<string>>,
  );
}

/**
 * Claims ids in the ledger. The ids travel as one JSON document rather than as arrays: the client
 * Drizzle wraps has its own serializers, which postgres.js's array parameters do not survive.
 */
async function claimIds(tx: TransactionSql, rows: readonly EventRow[]): Promise<Set<string>> {
  const claims = JSON.stringify(rows.map((r) => ({ id: r.id, workspace_id: r.workspaceId, created_at: r.createdAt.toISOString() })));
  const claimed = await tx`
    insert into telemetry.event_ids (id, workspace_id, created_at)
    select * from jsonb_to_recordset(${claims}::text::jsonb) as x(id uuid, workspace_id uuid, created_at timestamptz)
    on conflict (id) do nothing
    returning id`;
  return new Set(claimed.map((row) => row.id as string));
}

// ---- COPY text format -----------------------------------------------------------------------

const COPY_SPECIAL = /[\\\t\n\r]/;

/** Escapes a value for COPY's text format: backslash, tab, newline and carriage return. */
function copyField(value: string | null): string {
  if (value === null) return '\\N';
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (char) => (char === '\\' ? '\\\\' : char === '\t' ? '\\t' : char === '\n' ? '\\n' : '\\r'));
}

export function toCopyText(rows: readonly EventRow[]): string {
  let text = '';
  for (const r of rows) {
    text +=
      // Ids are UUIDs, source and event type are validated identifiers: nothing in them to escape.
      `${r.id}\t${r.workspaceId ?? '\\N'}\t${r.userId ?? '\\N'}\t${r.source}\t${r.eventType}\t` +
      `${copyField(r.name)}\t${copyField(r.targetType)}\t${copyField(r.targetId)}\t` +
      `${copyField(r.metadata === null ? null : JSON.stringify(r.metadata))}\t${r.createdAt.toISOString()}\t${r.receivedAt.toISOString()}\n`;
  }
  return text;
}

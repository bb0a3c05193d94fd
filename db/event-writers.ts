import { sql as drizzleSql } from 'drizzle-orm';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql, TransactionSql } from 'postgres';
import type { Database, SqlRunner } from './database.ts';

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

/** The fastest form on each driver, as measured by `npm run bench:insert` (see README). */
export function createEventWriter(db: Database): EventWriter {
  return db.kind === 'postgres' ? createCopyEventWriter(db.client) : createJsonEventWriter(db);
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
      return client.begin(async (tx) => {
        const claimed = await claimIds(tx, rows);
        const toCopy = rows.filter((row) => claimed.has(row.id));
        if (toCopy.length > 0) {
          const writable = await tx.unsafe(`copy telemetry.events (${EVENT_COLUMNS}) from stdin`).writable();
          await pipeline(Readable.from([toCopyText(toCopy)]), writable);
        }
        return claimed;
      }) as Promise<Set<string>>;
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
      const result = await client`
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
        insert into telemetry.events (${client.unsafe(EVENT_COLUMNS)})
        select i.* from input i join claimed c on c.id = i.id
        returning id`;
      return new Set(result.map((row) => row.id as string));
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
      const result = await client`
        with input (id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at) as (
          values ${client(values as never)}
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
        insert into telemetry.events (${client.unsafe(EVENT_COLUMNS)})
        select t.* from typed t join claimed c on c.id = t.id
        returning id`;
      return new Set(result.map((row) => row.id as string));
    },
  };
}

/** Any driver (the PGlite path): the rows travel as one JSON document, expanded in SQL. */
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
      const result = await db.rows<{ id: string }>(drizzleSql`
        with input as (
          select * from jsonb_to_recordset(${json}::jsonb) as x(
            id uuid, workspace_id uuid, user_id uuid, source text, event_type text, name text,
            target_type text, target_id text, metadata jsonb, created_at timestamptz, received_at timestamptz)
        ), claimed as (
          insert into telemetry.event_ids (id, workspace_id, created_at)
          select id, workspace_id, created_at from input
          on conflict (id) do nothing
          returning id
        )
        insert into telemetry.events (${drizzleSql.raw(EVENT_COLUMNS)})
        select i.id, i.workspace_id, i.user_id, i.source, i.event_type, i.name, i.target_type, i.target_id, i.metadata, i.created_at, i.received_at
        from input i join claimed c on c.id = i.id
        returning id`);
      return new Set(result.map((row) => row.id));
    },
  };
}

/**
 * Claims ids in the ledger. The ids travel as one JSON document rather than as arrays: the client
 * Drizzle wraps has its own serializers, which postgres.js's array parameters do not survive.
 */
async function claimIds(tx: TransactionSql, rows: readonly EventRow[]): Promise<Set<string>> {
  const claims = JSON.stringify(rows.map((r) => ({ id: r.id, workspace_id: r.workspaceId, created_at: r.createdAt.toISOString() })));
  const claimed = await tx`
    insert into telemetry.event_ids (id, workspace_id, created_at)
    select * from jsonb_to_recordset(${claims}::jsonb) as x(id uuid, workspace_id uuid, created_at timestamptz)
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

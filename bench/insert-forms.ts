/**
 * The insert forms `npm run bench` compares with the service's one write form (db/event-writers.ts,
 * the single JSON statement): COPY, one `unnest` statement, and a multi-row VALUES list, each
 * claiming ids in the ledger and adding to the rollups in the same transaction, so the comparison
 * is like for like. Benchmark code only; the service never loads it.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql, TransactionSql } from 'postgres';
import { retryTransientConflicts } from '../db/errors.ts';
import { toCopyText } from '../db/copy-text.ts';
import { EVENT_COLUMNS, eventKey, rollupStatements, type EventRow, type EventWriter } from '../db/event-writers.ts';

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
            const toCopy = rows.filter((row) => claimed.has(eventKey(row)));
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
      return claimInsertAndRollUp(
        client,
        rows,
        (tx) => tx`
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
          on conflict (workspace_id, id) do nothing
          returning workspace_id, id
        )
        insert into telemetry.events (${tx.unsafe(EVENT_COLUMNS)})
        select i.* from input i join claimed c on c.workspace_id = i.workspace_id and c.id = i.id
        returning workspace_id, id`,
      );
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
        r.id,
        r.workspaceId,
        r.userId,
        r.source,
        r.eventType,
        r.name,
        r.targetType,
        r.targetId,
        r.metadata === null ? null : JSON.stringify(r.metadata),
        r.createdAt.toISOString(),
        r.receivedAt.toISOString(),
      ]);
      return claimInsertAndRollUp(
        client,
        rows,
        (tx) => tx`
        with input (id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at) as (
          values ${tx(values as never)}
        ), typed as (
          select id::uuid, workspace_id::uuid, user_id::uuid, source, event_type, name, target_type, target_id,
                 metadata::jsonb, created_at::timestamptz, received_at::timestamptz
          from input
        ), claimed as (
          insert into telemetry.event_ids (id, workspace_id, created_at)
          select id, workspace_id, created_at from typed
          on conflict (workspace_id, id) do nothing
          returning workspace_id, id
        )
        insert into telemetry.events (${tx.unsafe(EVENT_COLUMNS)})
        select t.* from typed t join claimed c on c.workspace_id = t.workspace_id and c.id = t.id
        returning workspace_id, id`,
      );
    },
  };
}

/**
 * Adds stored rows to every rollup, inside the transaction that stored them, with the service's
 * routed form's upserts (counted in key order, so concurrent flushes lock rows alike): the forms
 * compared here differ only in how they claim ids and insert events.
 */
async function addToRollups(tx: TransactionSql, rows: readonly EventRow[]): Promise<void> {
  for (const { text, params } of rollupStatements(rows)) await tx.unsafe(text, params);
}

/** Runs one claim-and-insert statement and the rollup upserts in a transaction; answers the keys stored. */
function claimInsertAndRollUp(
  client: Sql,
  rows: readonly EventRow[],
  claimAndInsert: (tx: TransactionSql) => Promise<readonly { id?: unknown; workspace_id?: unknown }[]>,
): Promise<Set<string>> {
  return retryTransientConflicts(
    () =>
      client.begin(async (tx) => {
        const stored = new Set((await claimAndInsert(tx)).map((row) => eventKey({ workspaceId: String(row.workspace_id), id: String(row.id) })));
        await addToRollups(
          tx,
          rows.filter((row) => stored.has(eventKey(row))),
        );
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
    on conflict (workspace_id, id) do nothing
    returning workspace_id, id`;
  return new Set(claimed.map((row) => eventKey({ workspaceId: row.workspace_id as string, id: row.id as string })));
}

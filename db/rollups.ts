import { sql, type SQL } from 'drizzle-orm';

/**
 * The event-count rollups: one table per time unit, keyed (workspace_id, <unit>, event_type, name,
 * source), written in the same statement as the events they count. Every operation on them is
 * built here from this list: adding stored events (the write path and the archive loader),
 * subtracting erased ones, removing buckets with retention, and choosing the table a count reads.
 * A new rollup is one entry here (plus its table in schema.ts and a migration).
 *
 * The order is the lock order: every statement touches the rollups in this order, each in key
 * order, so concurrent flushes, erasures and retention wait for each other instead of deadlocking.
 * `unit` is the table's time column, the date_trunc field, and the rollup's key in reports.
 */
export const ROLLUPS = [
  { unit: 'minute', table: 'event_counts_minute', unitMs: 60_000 },
  { unit: 'hour', table: 'event_counts_hour', unitMs: 3_600_000 },
] as const;

export type Rollup = (typeof ROLLUPS)[number];
export type RollupUnit = Rollup['unit'];

/** The rollup of one unit (for reads that need that unit's key, such as the first recorded hour). */
export function rollupOf(unit: RollupUnit): RollupSource {
  const rollup = ROLLUPS.find((candidate) => candidate.unit === unit)!;
  return { unit, table: sql.raw(`telemetry.${rollup.table}`), bucket: sql.raw(rollup.unit) };
}

/** A rollup to read: its table, and its time column (`bucket`), as SQL identifiers. */
export interface RollupSource {
  unit: RollupUnit;
  table: SQL;
  bucket: SQL;
}

/** `{ minute: value, hour: value }`: one entry per rollup, for per-rollup counts in reports. */
export function perRollup<T>(value: (rollup: Rollup) => T): Record<RollupUnit, T> {
  return Object.fromEntries(ROLLUPS.map((rollup) => [rollup.unit, value(rollup)])) as Record<RollupUnit, T>;
}

// ---- add: the write path and the archive loader ---------------------------------------------

/**
 * CTEs (each starting with a comma) adding the rows of an `inserted` CTE (workspace_id,
 * created_at, event_type, name, source) to every rollup: within a rollup in key order (the
 * insert's ORDER BY); across rollups in the order the executor runs unreferenced data-modifying
 * CTEs, which is fixed by their place in the list. Built once from constants.
 */
export const ADD_INSERTED_TO_ROLLUPS: SQL = sql.raw(
  ROLLUPS.map(
    ({ table, unit }) => `, counted_${unit} as (
      insert into telemetry.${table} as counts (workspace_id, ${unit}, event_type, name, source, count)
      select workspace_id, date_trunc('${unit}', created_at, 'UTC'), event_type, name, source, count(*)
      from inserted
      group by 1, 2, 3, 4, 5
      order by 1, 2, 3, 4, 5
      on conflict (workspace_id, ${unit}, event_type, name, source) do update set count = counts.count + excluded.count
    )`,
  ).join(''),
);

// ---- subtract: erasure ----------------------------------------------------------------------

/**
 * CTEs (each starting with a comma) subtracting the rows of a `deleted` CTE (workspace_id,
 * created_at, event_type, name, source) of one workspace from every rollup. They lock the rollup
 * rows exactly as a flush does (the same rollups in the same place, each in key order, FOR UPDATE)
 * before updating them, so an erasure and a concurrent flush wait for each other instead of
 * deadlocking. (An UPDATE ... FROM locks rows in whatever order its join yields them.) Every CTE
 * names the workspace, so on Citus the whole statement runs on the shard that holds it.
 */
export function subtractDeletedFromRollups(workspaceId: string): SQL {
  return sql.join(
    ROLLUPS.map(({ table, unit }) => {
      const target = sql.raw(`telemetry.${table}`);
      const bucket = sql.raw(unit);
      const [removed, locked, subtracted] = ['removed', 'locked', 'subtracted'].map((step) => sql.raw(`${step}_${unit}`));
      return sql`, ${removed} as (
      select workspace_id, date_trunc(${sql.raw(`'${unit}'`)}, created_at, 'UTC') as at, event_type, name, source, count(*) as n
      from deleted
      group by 1, 2, 3, 4, 5
    ), ${locked} as (
      select c.workspace_id, c.${bucket}, c.event_type, c.name, c.source, r.n
      from ${target} c
      join ${removed} r on c.workspace_id = r.workspace_id and c.${bucket} = r.at and c.event_type = r.event_type and c.name = r.name and c.source = r.source
      where c.workspace_id = ${workspaceId}
      order by c.workspace_id, c.${bucket}, c.event_type, c.name, c.source
      for update of c
    ), ${subtracted} as (
      update ${target} c set count = c.count - l.n
      from ${locked} l
      where c.workspace_id = ${workspaceId} and c.workspace_id = l.workspace_id and c.${bucket} = l.${bucket} and c.event_type = l.event_type and c.name = l.name and c.source = l.source
    )`;
    }),
  );
}

// ---- remove: retention ----------------------------------------------------------------------

/** Rollup buckets of the workspaces `filter` selects, in [from, to); from null: from the beginning. */
export interface RollupRange {
  /** A condition on `workspace_id`. */
  filter: SQL;
  from: Date | null;
  to: Date;
}

/**
 * For one retention statement: CTEs `rollup_<unit>` (comma-separated, to follow `with` or another
 * CTE) that delete every rollup's buckets in `range` (or, in a dry run, select the same rows), and
 * the select-list items `rollup_<unit>` counting them. With no range they remove nothing and count 0.
 */
export function removeRollupRange(range: RollupRange | null, dryRun: boolean): { ctes: SQL; counts: SQL } {
  const ctes = ROLLUPS.map(({ table, unit }) => {
    const name = sql.raw(`rollup_${unit}`);
    if (!range) return sql`${name} as (select 1 where false)`;
    const target = sql.raw(`telemetry.${table}`);
    const bucket = sql.raw(unit);
    const from = range.from ? sql`and ${bucket} >= ${range.from.toISOString()}::timestamptz` : sql``;
    const where = sql`${range.filter} ${from} and ${bucket} < ${range.to.toISOString()}::timestamptz`;
    return dryRun ? sql`${name} as (select 1 from ${target} where ${where})` : sql`${name} as (delete from ${target} where ${where} returning 1)`;
  });
  const counts = ROLLUPS.map(({ unit }) => sql.raw(`(select count(*) from rollup_${unit}) as rollup_${unit}`));
  return { ctes: sql.join(ctes, sql`, `), counts: sql.join(counts, sql`, `) };
}

/** The per-rollup counts `removeRollupRange` selected, from the statement's row. */
export function removedRollupCounts(row: Record<string, unknown>): Record<RollupUnit, number> {
  return perRollup(({ unit }) => Number(row[`rollup_${unit}`] ?? 0));
}

// ---- read: stats ----------------------------------------------------------------------------

/** Coarsest first: the hourly table reads about 60 times fewer rows than the per-minute one when it can answer. */
const COARSEST_FIRST = [...ROLLUPS].sort((a, b) => b.unitMs - a.unitMs);

/**
 * The coarsest rollup whose units add up exactly to [from, to) and to every bucket (each bucket
 * start aligned, and no finer than `bucketMs`, a bucket's nominal length); undefined when the
 * events themselves must be counted. Rollup units are UTC.
 */
export function pickRollup(range: { from: Date; to: Date; bucketMs?: number | undefined; bucketStarts?: readonly Date[] }): RollupSource | undefined {
  const starts = range.bucketStarts ?? [];
  const aligned = (unitMs: number) => (date: Date) => date.getTime() % unitMs === 0;
  const rollup = COARSEST_FIRST.find(
    ({ unitMs }) =>
      (range.bucketMs === undefined || range.bucketMs >= unitMs) && aligned(unitMs)(range.from) && aligned(unitMs)(range.to) && starts.every(aligned(unitMs)),
  );
  return rollup && rollupOf(rollup.unit);
}

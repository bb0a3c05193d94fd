import { sql, type SQL } from 'drizzle-orm';

/**
 * How the service's tables are laid out: on one database (`none`: PGlite, PostgreSQL), or sharded
 * by workspace across a Citus cluster (`citus`, docs/adr/0013-workspace-keys.md). Chosen by
 * configuration (DATABASE_DISTRIBUTED), never detected, so a service pointed at the wrong kind of
 * database fails at start instead of writing in the wrong form.
 */
export type Distribution = 'none' | 'citus';

/** The column every distributed table is sharded by: every read and write names one workspace. */
export const DISTRIBUTION_COLUMN = 'workspace_id';

/**
 * Tables sharded by workspace, co-located (a workspace's events, ledger rows and rollup counts live
 * on the same worker, so the write statement and workspace-scoped reads run on one node). Every
 * unique key of these tables contains DISTRIBUTION_COLUMN (tests/distribution-keys.test.ts). The
 * first is the one the others are co-located with. Daily partitions of `events` created later are
 * distributed with it automatically.
 */
export const DISTRIBUTED_TABLES = ['events', 'event_ids', 'event_counts_minute', 'event_counts_hour'] as const;

/**
 * Small tables every node holds a copy of, so joins and foreign keys with them stay local to a
 * worker: keys and workspaces are read on every request, overrides by the retention job and the
 * rate limiter. Their writes go to every node (two-phase commit), which is fine at their rate.
 */
export const REFERENCE_TABLES = ['workspaces', 'api_keys', 'workspace_retention', 'workspace_rate_limits'] as const;

/**
 * Statements that distribute the tables on a Citus coordinator, in order (reference tables first,
 * since distributed tables may name them). Each is skipped when its table is already distributed
 * (pg_dist_partition), so running them again after every migration is harmless. Tables not named
 * here (erasure requests, adapter rejections) stay on the coordinator; Citus turns those with a
 * foreign key to a reference table into local tables it knows about.
 */
export function citusDistributionStatements(): SQL[] {
  const notYet = (table: string) => sql.raw(`not exists (select from pg_dist_partition where logicalrelid = 'telemetry.${table}'::regclass)`);
  const [first, ...colocated] = DISTRIBUTED_TABLES;
  return [
    ...REFERENCE_TABLES.map((table) => sql`select create_reference_table(${`telemetry.${table}`}) where ${notYet(table)}`),
    sql`select create_distributed_table(${`telemetry.${first}`}, ${DISTRIBUTION_COLUMN}) where ${notYet(first)}`,
    ...colocated.map(
      (table) =>
        sql`select create_distributed_table(${`telemetry.${table}`}, ${DISTRIBUTION_COLUMN}, colocate_with => ${`telemetry.${first}`}) where ${notYet(table)}`,
    ),
  ];
}

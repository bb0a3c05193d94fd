import { sql, type SQL } from 'drizzle-orm';
import type { Database, SqlRunner } from '../../../db/database.ts';
import { listPartitions, partitionDay } from '../../../db/partitions.ts';
import { rollupOf } from '../../../db/rollups.ts';
import { DAY_MS, isoText } from './expiry-run.ts';
import type { RetentionPlan } from './policies.ts';

/** Whose rows a row delete removes: one workspace, or a day of the default partition. */
export type RowScope = { kind: 'workspace'; workspaceId: string } | { kind: 'default-partition' };

export type ExpiredDay = { kind: 'partition'; name: string; day: Date } | { kind: 'default-partition'; day: Date };

/** What a run will expire, read from the database before it removes anything. */
export interface ExpiryTargets {
  /** Selects the rollup rows of every workspace that has events or an override. */
  everyKnownWorkspace: SQL;
  /** Days older than every retention, oldest first. */
  expiredDays: ExpiredDay[];
  /** Workspaces whose retention is shorter than the longest, with their cutoffs. */
  shorterRetentions: { scope: RowScope; cutoff: Date }[];
}

export async function planExpiry(db: Database, plan: RetentionPlan): Promise<ExpiryTargets> {
  const workspaces = await knownWorkspaces(db, plan);
  return {
    everyKnownWorkspace: sql`workspace_id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(workspaces)}::text::jsonb))`,
    expiredDays: await expiredDays(db, plan),
    shorterRetentions: shorterRetentions(plan, workspaces),
  };
}

/** The UTC day of the first row of `scope` in [from, to), or null when there is none. */
export async function nextDayWithRows(db: SqlRunner, scope: RowScope, range: { from: Date; to: Date }): Promise<Date | null> {
  const [first] = await db.rows<{ at: string | null }>(sql`
    select ${isoText('min(created_at)')} as at from telemetry.events
    where ${rowsOf(scope)} and created_at >= ${range.from.toISOString()}::timestamptz and created_at < ${range.to.toISOString()}::timestamptz`);
  if (!first?.at) return null;
  return new Date(Math.floor(new Date(first.at).getTime() / DAY_MS) * DAY_MS);
}

export function rowsOf(scope: RowScope): SQL {
  switch (scope.kind) {
    case 'workspace':
      return sql`workspace_id = ${scope.workspaceId}::uuid`;
    case 'default-partition':
      return sql`true`;
  }
}

/**
 * Every workspace with rollups, plus every workspace with an override. Every stored event has a
 * workspace with rollup rows, and they go together, so this covers every workspace with events.
 * On one database: one index probe per workspace (a loose index scan on the hourly rollup's
 * primary key). Citus plans no recursive query across shards: there each shard groups its own
 * rows, in parallel.
 */
async function knownWorkspaces(db: Database, plan: RetentionPlan): Promise<string[]> {
  const { table } = rollupOf('hour');
  const rows = await db.rows<{ id: string }>(
    db.distribution === 'citus'
      ? sql`select workspace_id::text as id from ${table} group by workspace_id`
      : sql`
    with recursive workspaces as (
      (select workspace_id from ${table} order by workspace_id limit 1)
      union all
      select (select h.workspace_id from ${table} h where h.workspace_id > w.workspace_id order by h.workspace_id limit 1)
      from workspaces w where w.workspace_id is not null
    )
    select workspace_id::text as id from workspaces where workspace_id is not null`,
  );
  return [...new Set([...rows.map((row) => row.id), ...plan.overrides.map((override) => override.workspaceId)])].sort();
}

/** Daily partitions, and days the default partition holds rows for, that end before the partition cutoff; oldest first. */
async function expiredDays(db: Database, plan: RetentionPlan): Promise<ExpiredDay[]> {
  const partitions: ExpiredDay[] = [];
  for (const name of await listPartitions(db)) {
    const day = partitionDay(name);
    if (day && day.getTime() + DAY_MS <= plan.partitionCutoff.getTime()) partitions.push({ kind: 'partition', name, day });
  }
  const defaultDays = await db.rows<{ day: string }>(sql`
    select distinct to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day
    from telemetry.events_default where created_at < ${plan.partitionCutoff.toISOString()}::timestamptz`);
  const loose: ExpiredDay[] = defaultDays.map((row) => ({ kind: 'default-partition', day: new Date(`${row.day}T00:00:00Z`) }));
  return [...partitions, ...loose].sort((a, b) => a.day.getTime() - b.day.getTime());
}

function shorterRetentions(plan: RetentionPlan, workspaces: readonly string[]): { scope: RowScope; cutoff: Date }[] {
  const targets: { scope: RowScope; cutoff: Date }[] = [];
  const overridden = new Set(plan.overrides.map((override) => override.workspaceId));
  for (const override of plan.overrides) {
    if (override.days < plan.longestDays) targets.push({ scope: { kind: 'workspace', workspaceId: override.workspaceId }, cutoff: override.cutoff });
  }
  if (plan.defaultDays < plan.longestDays) {
    for (const workspaceId of workspaces) {
      if (!overridden.has(workspaceId)) targets.push({ scope: { kind: 'workspace', workspaceId }, cutoff: plan.defaultCutoff });
    }
  }
  return targets;
}

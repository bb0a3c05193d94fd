import { sql, type SQL } from 'drizzle-orm';
import path from 'node:path';
import type { Database, SqlRunner } from '../../../db/database.ts';
import { isLockNotAvailable } from '../../../db/errors.ts';
import { dropDailyPartition, listPartitions, partitionDay } from '../../../db/partitions.ts';
import type { Logger } from '../../logger.ts';
import { maintainPartitions } from '../../partition-maintenance.ts';
import { discardArchive, verifyArchive, writeArchive, type ArchiveDescription, type ArchiveLine, type WrittenArchive } from './archive.ts';
import type { RetentionPlan } from './policies.ts';
import type { ArchiveSummary, RetentionReport } from './schemas.ts';

const DAY_MS = 86_400_000;
const EVENTS = sql.raw('telemetry.events');
const DEFAULT_PARTITION = sql.raw('telemetry.events_default');
const LEDGER = sql.raw('telemetry.event_ids');
const MINUTE_COUNTS = sql.raw('telemetry.event_counts_minute');
const HOUR_COUNTS = sql.raw('telemetry.event_counts_hour');

/** An ISO-8601 UTC string with microseconds, whatever the session's time zone: nothing is rounded. */
const isoText = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);

/** One stored event as one JSON line, with the stored column names; metadata keeps Postgres's exact numbers. */
const ARCHIVE_LINE = sql`jsonb_build_object(
  'id', id, 'workspace_id', workspace_id, 'user_id', user_id, 'source', source, 'event_type', event_type, 'name', name,
  'target_type', target_type, 'target_id', target_id, 'metadata', metadata,
  'created_at', ${isoText('created_at')}, 'received_at', ${isoText('received_at')})::text`;

export interface ExpireOptions {
  db: Database;
  plan: RetentionPlan;
  dryRun: boolean;
  archiveDir: string | undefined;
  partitionDaysAhead: number;
  logger: Logger;
  /** Stops the run between two steps (service shutdown); the report says `interrupted`. */
  signal?: AbortSignal | undefined;
  /** Called after an archive is written, before it is verified and its rows deleted; a throw keeps the rows. */
  onArchiveWritten?: ((archive: WrittenArchive) => Promise<void>) | undefined;
  /** Rows per archive read (keyset pages). */
  pageSize: number;
}

/** Whose rows a row delete removes: one workspace, events without one, or a day of the default partition. */
type RowScope = { kind: 'workspace'; workspaceId: string } | { kind: 'no-workspace' } | { kind: 'default-partition' };

interface Counts {
  rows: number;
  ledger: number;
  minutes: number;
  hours: number;
  perWorkspace: { workspaceId: string | null; rows: number }[];
}

// While a DROP waits for its exclusive lock, every read and write of telemetry.events queues behind
// it: wait briefly, step aside, and try again a few times, rather than stall ingestion for long.
const DROP_LOCK_TIMEOUT = '1s';
const DROP_ATTEMPTS = 5;
const DROP_RETRY_PAUSE_MS = 2000;

/**
 * Runs `work` (a whole drop transaction) again, after a pause, when it could not get its lock in
 * time; the last failure is thrown. (Retrying only the DROP under a savepoint would save the work
 * before it, but a failed statement poisons the transaction on the drivers we use.)
 */
async function withLockRetries<T>(work: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (!isLockNotAvailable(error) || attempt >= DROP_ATTEMPTS || signal?.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, DROP_RETRY_PAUSE_MS));
    }
  }
}

class RowsChangedError extends Error {
  override name = 'RowsChangedError';
}

/**
 * The retention job's work, in this order:
 * 1. days older than every retention: each expiring daily partition is dropped whole (with its ledger
 *    ids and rollup buckets, in one transaction), and rows the default partition holds for such
 *    days are deleted the same way;
 * 2. workspaces whose retention is shorter than the longest: their rows before their cutoff are
 *    deleted day by day, each day in one statement with its ledger ids and rollup buckets;
 * 3. future partitions are prepared (real runs only).
 * With an archive directory, each day's rows are archived and verified before they go; a day whose
 * archive fails stays in place and is reported. In a dry run the same statements count instead of
 * delete, so the report matches what a real run would do.
 */
export async function expireEvents(options: ExpireOptions): Promise<RetentionReport> {
  const { db, plan, dryRun } = options;
  const startedAt = new Date();
  const runStamp = startedAt.toISOString().replace(/[-:.]/g, '');
  /** The id digest of each archive written by this run, for the check before its rows go. */
  const archivedIds = new Map<WrittenArchive, string>();
  const report: RetentionReport = {
    dryRun,
    now: plan.now,
    startedAt,
    finishedAt: startedAt,
    defaultDays: plan.defaultDays,
    maxDays: plan.maxDays,
    defaultCutoff: plan.defaultCutoff,
    longestDays: plan.longestDays,
    partitionCutoff: plan.partitionCutoff,
    cutoffs: plan.overrides.map(({ workspaceId, days, cutoff, requestedDays }) => ({ workspaceId, days, cutoff, ...(requestedDays !== undefined && { requestedDays }) })),
    partitionsDropped: [],
    rowsDeleted: [],
    ledgerRowsDeleted: 0,
    rollupRowsDeleted: { minute: 0, hour: 0 },
    archives: [],
    partitionsCreated: [],
    errors: [],
    interrupted: false,
  };
  const rowsByWorkspace = new Map<string | null, number>();
  const tally = (counts: Counts) => {
    report.ledgerRowsDeleted += counts.ledger;
    report.rollupRowsDeleted.minute += counts.minutes;
    report.rollupRowsDeleted.hour += counts.hours;
    for (const { workspaceId, rows } of counts.perWorkspace) rowsByWorkspace.set(workspaceId, (rowsByWorkspace.get(workspaceId) ?? 0) + rows);
  };
  const stopped = () => {
    if (options.signal?.aborted) report.interrupted = true;
    return report.interrupted;
  };

  const workspaces = await knownWorkspaces(db, plan);
  const everyKnownWorkspace = sql`workspace_id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(workspaces)}::text::jsonb))`;

  // 1. Days older than every retention, oldest first. `globalFrontier` is where the rollups of all
  // workspaces have been cleared up to: each step also clears the buckets between the previous
  // step and its day (gaps whose events went earlier), so the steps never count a bucket twice.
  const units = await expiredDays(db, plan);
  let globalFrontier: Date | null = null;
  for (const unit of units) {
    if (stopped()) break;
    const dayStart = unit.day;
    const dayEnd = new Date(dayStart.getTime() + DAY_MS);
    const rollups = { filter: everyKnownWorkspace, from: globalFrontier, to: dayEnd };
    if (unit.kind === 'partition') await expirePartition(unit.name, dayStart, rollups);
    else await expireRowBand({ kind: 'default-partition' }, { from: dayStart, to: dayEnd }, rollups);
    // Past this day either way: a day left in place (its archive failed) keeps its own buckets.
    globalFrontier = dayEnd;
  }
  if (!stopped() && (globalFrontier === null || globalFrontier < plan.partitionCutoff)) {
    tally(await clearRollups({ filter: everyKnownWorkspace, from: globalFrontier, to: plan.partitionCutoff }));
  }

  // 2. Shorter retentions, from the partition cutoff up to each one's own cutoff.
  for (const target of shorterRetentions(plan, workspaces)) {
    if (stopped()) break;
    const rowFilter = rowsOf(target.scope);
    const rollupFilter = target.scope.kind === 'workspace' ? sql`workspace_id = ${target.scope.workspaceId}::uuid` : null;
    let frontier = plan.partitionCutoff;
    while (frontier < target.cutoff && !stopped()) {
      const [first] = await db.rows<{ at: string | null }>(sql`
        select ${isoText('min(created_at)')} as at from telemetry.events
        where ${rowFilter} and created_at >= ${frontier.toISOString()}::timestamptz and created_at < ${target.cutoff.toISOString()}::timestamptz`);
      if (!first?.at) break;
      const dayStart = new Date(Math.floor(new Date(first.at).getTime() / DAY_MS) * DAY_MS);
      const to = new Date(Math.min(dayStart.getTime() + DAY_MS, target.cutoff.getTime()));
      await expireRowBand(target.scope, { from: frontier, to, day: dayStart }, rollupFilter && { filter: rollupFilter, from: frontier, to });
      frontier = to;
    }
    if (rollupFilter && frontier < target.cutoff && !stopped()) {
      tally(await clearRollups({ filter: rollupFilter, from: frontier, to: target.cutoff }));
    }
  }

  // 3. Future partitions, and a partition for any unexpired day the default partition still holds.
  if (!dryRun && !stopped()) {
    report.partitionsCreated = await maintainPartitions(db, { daysAhead: options.partitionDaysAhead, now: plan.now });
  }

  report.rowsDeleted = [...rowsByWorkspace.entries()]
    .map(([workspaceId, rows]) => ({ workspaceId, rows }))
    .sort((a, b) => (a.workspaceId ?? '').localeCompare(b.workspaceId ?? ''));
  report.finishedAt = new Date();
  return report;

  // ---- steps ---------------------------------------------------------------------------------

  /**
   * Archives the rows `where` selects from `table` (when an archive directory is set and this is a
   * real run) and verifies the file against its manifest. 'failed' means: reported, leave the rows.
   */
  async function archiveOrReport(target: string, description: ArchiveDescription, baseName: string, table: SQL, where: SQL): Promise<WrittenArchive | undefined | 'failed'> {
    if (!options.archiveDir || dryRun) return undefined;
    let archive: WrittenArchive | undefined;
    try {
      const digest = { sum: 0n };
      archive = await writeArchive({
        directory: path.join(options.archiveDir, description.day),
        baseName,
        description,
        pages: archivePages(table, where, digest),
        archivedAt: new Date(),
      });
      archivedIds.set(archive, digest.sum.toString());
      await options.onArchiveWritten?.(archive);
      await verifyArchive(archive.manifestPath);
      return archive;
    } catch (error) {
      const message = `archive failed, rows left in place: ${(error as Error).message}`;
      options.logger.warn('retention archive failed', { target, error });
      report.errors.push({ target, message });
      if (archive) await discardArchive(archive).catch(() => {});
      return 'failed';
    }
  }

  /** Keyset pages in (created_at, id) order, so no page holds more than `pageSize` events in memory. */
  async function* archivePages(table: SQL, where: SQL, digest: { sum: bigint }): AsyncGenerator<ArchiveLine[]> {
    let after = sql``;
    for (;;) {
      const rows = await db.rows<{ line: string; created_at: string; id: string; id_hash: string }>(sql`
        select ${ARCHIVE_LINE} as line, ${isoText('created_at')} as created_at, id::text as id, ${ID_HASH}::text as id_hash
        from ${table} where ${where} ${after}
        order by created_at, id
        limit ${options.pageSize}`);
      for (const row of rows) digest.sum += BigInt(row.id_hash);
      if (rows.length > 0) yield rows.map((row) => ({ line: row.line, createdAt: row.created_at }));
      const last = rows.at(-1);
      if (!last || rows.length < options.pageSize) return;
      after = sql`and (created_at, id) > (${last.created_at}::timestamptz, ${last.id}::uuid)`;
    }
  }

  /**
   * Archives (optionally) and drops one expired partition, with its ledger ids and the rollup
   * buckets up to its day's end. A partition whose archive failed, or that changed or stayed busy,
   * is left for the next run and reported.
   */
  async function expirePartition(name: string, dayStart: Date, rollups: RollupRange): Promise<void> {
    const table = sql.raw(`telemetry."${name}"`);
    const dayEnd = new Date(dayStart.getTime() + DAY_MS);
    const archive = await archiveOrReport(
      name,
      { kind: 'partition', partition: name, day: dayLabel(dayStart), range: { from: dayStart.toISOString(), to: dayEnd.toISOString() } },
      `${name}.${runStamp}`,
      table,
      sql`true`,
    );
    if (archive === 'failed') return;
    try {
      const counts = await withLockRetries(() => db.transaction(async (tx) => {
        // Dropping a partition needs an exclusive lock on telemetry.events, which queues every read
        // and write behind it: give up quickly rather than stall ingestion behind a long query.
        if (!dryRun) await tx.rows(sql.raw(`set local lock_timeout = '${DROP_LOCK_TIMEOUT}'`));
        // With an archive, no write may slip in between counting (against the archive) and dropping.
        if (!dryRun && archive) await tx.rows(sql`lock table ${table} in share mode`);
        const [row] = await tx.rows<CountRow>(sql`
          with ledger as (${removeRows(LEDGER, sql`id in (select id from ${table})`)}),
               minutes as (${removeRollups(MINUTE_COUNTS, 'minute', rollups)}),
               hours as (${removeRollups(HOUR_COUNTS, 'hour', rollups)})
          select (select count(*) from ${table}) as rows, (select count(*) from ledger) as ledger,
                 (select count(*) from minutes) as minutes, (select count(*) from hours) as hours, '[]' as per_workspace,
                 (select ${ID_DIGEST} from ${table}) as id_digest`);
        const result = toCounts(row);
        assertArchived(archive, result.rows, row?.id_digest);
        if (!dryRun) await dropDailyPartition(tx, name);
        return result;
      }), options.signal);
      report.partitionsDropped.push({ name, day: dayLabel(dayStart), rows: counts.rows });
      tally({ ...counts, perWorkspace: [] });
      if (archive) report.archives.push(summarize(archive));
    } catch (error) {
      // Rows not deleted: their archive goes too, so every manifest on disk describes deleted rows.
      if (archive) await discardArchive(archive).catch(() => {});
      if (error instanceof RowsChangedError) {
        report.errors.push({ target: name, message: error.message });
      } else if (isLockNotAvailable(error)) {
        report.errors.push({ target: name, message: `telemetry.events stayed busy (${DROP_ATTEMPTS} waits of ${DROP_LOCK_TIMEOUT}); left in place for the next run` });
      } else {
        throw error;
      }
    }
  }

  /**
   * Deletes (or counts) one day's rows of a scope in one statement, with their ledger ids and the
   * scope's rollup buckets in the same range. A day whose archive failed, or that changed while it
   * was archived, is left in place and reported.
   */
  async function expireRowBand(scope: RowScope, range: { from: Date; to: Date; day?: Date }, rollups: RollupRange | null): Promise<void> {
    const day = range.day ?? range.from;
    const where = sql`${rowsOf(scope)} and created_at >= ${range.from.toISOString()}::timestamptz and created_at < ${range.to.toISOString()}::timestamptz`;
    const table = scope.kind === 'default-partition' ? DEFAULT_PARTITION : EVENTS;
    const target = `${scope.kind === 'workspace' ? `workspace ${scope.workspaceId}` : scope.kind === 'no-workspace' ? 'events without workspace' : 'default partition'} on ${dayLabel(day)}`;
    const archive = await archiveOrReport(
      target,
      {
        kind: 'rows',
        partition: null,
        day: dayLabel(day),
        ...(scope.kind !== 'default-partition' && { workspaceId: scope.kind === 'workspace' ? scope.workspaceId : null }),
        range: { from: range.from.toISOString(), to: range.to.toISOString() },
      },
      `events-${scope.kind === 'workspace' ? scope.workspaceId : scope.kind}.${runStamp}`,
      table,
      where,
    );
    if (archive === 'failed') return;
    try {
      const counts = await db.transaction(async (tx) => {
        const [row] = await tx.rows<CountRow>(sql`
          with doomed as (${removeRows(table, where, sql`id, workspace_id`)}),
               ledger as (${removeRows(LEDGER, sql`id in (select id from doomed)`)}),
               minutes as (${rollups ? removeRollups(MINUTE_COUNTS, 'minute', rollups) : sql`select 1 where false`}),
               hours as (${rollups ? removeRollups(HOUR_COUNTS, 'hour', rollups) : sql`select 1 where false`}),
               per_workspace as (select workspace_id, count(*) as rows from doomed group by workspace_id)
          select (select count(*) from doomed) as rows, (select count(*) from ledger) as ledger,
                 (select count(*) from minutes) as minutes, (select count(*) from hours) as hours,
                 (select coalesce(json_agg(json_build_object('workspaceId', workspace_id, 'rows', rows)), '[]'::json)::text from per_workspace) as per_workspace,
                 (select ${ID_DIGEST} from doomed) as id_digest`);
        const result = toCounts(row);
        assertArchived(archive, result.rows, row?.id_digest);
        return result;
      });
      tally(counts);
      if (archive) report.archives.push(summarize(archive));
    } catch (error) {
      // Rows not deleted: their archive goes too, so every manifest on disk describes deleted rows.
      if (archive) await discardArchive(archive).catch(() => {});
      if (!(error instanceof RowsChangedError) || !archive) throw error;
      report.errors.push({ target, message: error.message });
    }
  }

  /** Rollup buckets whose events went earlier (or never existed: erased), in one statement. */
  async function clearRollups(rollups: RollupRange): Promise<Counts> {
    const [row] = await db.rows<CountRow>(sql`
      with minutes as (${removeRollups(MINUTE_COUNTS, 'minute', rollups)}),
           hours as (${removeRollups(HOUR_COUNTS, 'hour', rollups)})
      select 0 as rows, 0 as ledger, (select count(*) from minutes) as minutes, (select count(*) from hours) as hours, '[]' as per_workspace`);
    return toCounts(row);
  }

  /**
   * The rows about to go must be exactly the archived ones: same count and same ids (a digest of
   * them), so a row that arrived while archiving cannot be deleted unarchived even when another
   * went at the same time (an erasure) and the count still matches.
   */
  function assertArchived(archive: WrittenArchive | undefined, rows: number, idDigest: string | undefined) {
    if (!archive) return;
    if (archive.manifest.rows !== rows) {
      throw new RowsChangedError(`rows changed while archiving (archived ${archive.manifest.rows}, now ${rows}); left in place for the next run`);
    }
    if (idDigest !== undefined && archivedIds.get(archive) !== BigInt(idDigest).toString()) {
      throw new RowsChangedError('rows changed while archiving (same count, other events); left in place for the next run');
    }
  }

  // An archive enters the report once its rows are gone.
  function summarize(archive: WrittenArchive): ArchiveSummary {
    return {
      manifest: archive.manifestPath,
      file: archive.filePath,
      day: archive.manifest.day,
      partition: archive.manifest.partition,
      ...(archive.manifest.workspaceId !== undefined && { workspaceId: archive.manifest.workspaceId }),
      rows: archive.manifest.rows,
      sha256: archive.manifest.sha256,
    };
  }

  /** A delete in a real run; the same rows counted by a select in a dry run. */
  function removeRows(table: SQL, where: SQL, returning: SQL = sql`1`): SQL {
    return dryRun ? sql`select ${returning} from ${table} where ${where}` : sql`delete from ${table} where ${where} returning ${returning}`;
  }

  function removeRollups(table: SQL, column: 'minute' | 'hour', rollups: RollupRange): SQL {
    const bucket = sql.raw(column);
    const from = rollups.from ? sql`and ${bucket} >= ${rollups.from.toISOString()}::timestamptz` : sql``;
    return removeRows(table, sql`${rollups.filter} ${from} and ${bucket} < ${rollups.to.toISOString()}::timestamptz`);
  }
}

/** Rollup buckets of the workspaces `filter` selects, in [from, to); from null: from the beginning. */
interface RollupRange {
  filter: SQL;
  from: Date | null;
  to: Date;
}

type CountRow = { rows: Numeric; ledger: Numeric; minutes: Numeric; hours: Numeric; per_workspace: string; id_digest?: string };

// A 64-bit hash of an event id, and their sum over a set of rows: equal sums, equal id sets (but
// for a collision no one will meet). Computed by Postgres both when archiving and when deleting.
const ID_HASH = sql`hashtextextended(id::text, 0)`;
const ID_DIGEST = sql`coalesce(sum(${ID_HASH}), 0)::text`;
// count(*) is a bigint: postgres.js answers a string, PGlite a number.
type Numeric = number | string | bigint;

function toCounts(row: CountRow | undefined): Counts {
  if (!row) throw new Error('The retention statement answered no row');
  return {
    rows: Number(row.rows),
    ledger: Number(row.ledger),
    minutes: Number(row.minutes),
    hours: Number(row.hours),
    perWorkspace: (JSON.parse(row.per_workspace) as { workspaceId: string | null; rows: number }[]).map((entry) => ({ workspaceId: entry.workspaceId, rows: Number(entry.rows) })),
  };
}

function rowsOf(scope: RowScope): SQL {
  switch (scope.kind) {
    case 'workspace':
      return sql`workspace_id = ${scope.workspaceId}::uuid`;
    case 'no-workspace':
      return sql`workspace_id is null`;
    case 'default-partition':
      return sql`true`;
  }
}

function dayLabel(day: Date): string {
  return day.toISOString().slice(0, 10);
}

/**
 * Every workspace with rollups, found with one index probe per workspace (a loose index scan on the
 * hourly rollup's primary key), plus every workspace with an override. Every stored event with a
 * workspace has rollup rows, and they go together, so this covers every workspace with events.
 */
async function knownWorkspaces(db: SqlRunner, plan: RetentionPlan): Promise<string[]> {
  const rows = await db.rows<{ id: string }>(sql`
    with recursive workspaces as (
      (select workspace_id from telemetry.event_counts_hour order by workspace_id limit 1)
      union all
      select (select h.workspace_id from telemetry.event_counts_hour h where h.workspace_id > w.workspace_id order by h.workspace_id limit 1)
      from workspaces w where w.workspace_id is not null
    )
    select workspace_id::text as id from workspaces where workspace_id is not null`);
  return [...new Set([...rows.map((row) => row.id), ...plan.overrides.map((override) => override.workspaceId)])].sort();
}

type ExpiredDay = { kind: 'partition'; name: string; day: Date } | { kind: 'default-partition'; day: Date };

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

/** Workspaces (and events without one) whose retention is shorter than the longest, with their cutoffs. */
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
    // Events without a workspace keep the default retention.
    targets.push({ scope: { kind: 'no-workspace' }, cutoff: plan.defaultCutoff });
  }
  return targets;
}

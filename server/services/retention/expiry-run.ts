import { sql, type SQL } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { perRollup, removedRollupCounts, type RollupUnit } from '../../../db/rollups.ts';
import type { Logger } from '../../logger.ts';
import type { WrittenArchive } from './archive.ts';
import type { RetentionPlan } from './policies.ts';
import type { RetentionReport } from './schemas.ts';

export const DAY_MS = 86_400_000;

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

/** What one step removed (in a dry run: would remove). */
export interface Counts {
  rows: number;
  ledger: number;
  rollups: Record<RollupUnit, number>;
  perWorkspace: { workspaceId: string | null; rows: number }[];
}

export type ExpiryRun = ReturnType<typeof startExpiryRun>;

/**
 * One run of the retention job: its options and the report its steps add to. Every step takes it,
 * so a step can be run (and tested) alone against a run of its own.
 */
export function startExpiryRun(options: ExpireOptions) {
  const { plan, dryRun } = options;
  const startedAt = new Date();
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
    cutoffs: plan.overrides.map(({ workspaceId, days, cutoff, requestedDays }) => ({
      workspaceId,
      days,
      cutoff,
      ...(requestedDays !== undefined && { requestedDays }),
    })),
    partitionsDropped: [],
    rowsDeleted: [],
    ledgerRowsDeleted: 0,
    rollupRowsDeleted: perRollup(() => 0),
    archives: [],
    partitionsCreated: [],
    errors: [],
    interrupted: false,
  };
  const rowsByWorkspace = new Map<string | null, number>();

  return {
    db: options.db,
    dryRun,
    options,
    report,
    /** Names this run's archive files apart from other runs' of the same day. */
    stamp: startedAt.toISOString().replace(/[-:.]/g, ''),

    /** True once the service asked the run to stop (checked between steps); the report says so. */
    stopped(): boolean {
      if (options.signal?.aborted) report.interrupted = true;
      return report.interrupted;
    },

    tally(counts: Counts): void {
      report.ledgerRowsDeleted += counts.ledger;
      for (const unit of Object.keys(counts.rollups) as RollupUnit[]) report.rollupRowsDeleted[unit] += counts.rollups[unit];
      for (const { workspaceId, rows } of counts.perWorkspace) rowsByWorkspace.set(workspaceId, (rowsByWorkspace.get(workspaceId) ?? 0) + rows);
    },

    /** An archive enters the report once its rows are gone. */
    archived(archive: WrittenArchive): void {
      report.archives.push({
        manifest: archive.manifestPath,
        file: archive.filePath,
        day: archive.manifest.day,
        partition: archive.manifest.partition,
        ...(archive.manifest.workspaceId !== undefined && { workspaceId: archive.manifest.workspaceId }),
        rows: archive.manifest.rows,
        sha256: archive.manifest.sha256,
      });
    },

    /** A target left in place, with why; the next run tries it again. */
    leftInPlace(target: string, message: string): void {
      report.errors.push({ target, message });
    },

    finish(): RetentionReport {
      report.rowsDeleted = [...rowsByWorkspace.entries()]
        .map(([workspaceId, rows]) => ({ workspaceId, rows }))
        .sort((a, b) => (a.workspaceId ?? '').localeCompare(b.workspaceId ?? ''));
      report.finishedAt = new Date();
      return report;
    },
  };
}

// ---- SQL shared by the steps ----------------------------------------------------------------

/** An ISO-8601 UTC string with microseconds, whatever the session's time zone: nothing is rounded. */
export const isoText = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);

/** A delete in a real run; the same rows counted by a select in a dry run. */
export function removeRows(run: ExpiryRun, table: SQL, where: SQL, returning: SQL = sql`1`): SQL {
  return run.dryRun ? sql`select ${returning} from ${table} where ${where}` : sql`delete from ${table} where ${where} returning ${returning}`;
}

// count(*) is a bigint: postgres.js answers a string, PGlite a number.
type Numeric = number | string | bigint;

/** The row a removal statement answers: its counts, the rollups' `rollup_<unit>` among them. */
export type CountRow = { rows: Numeric; ledger: Numeric; per_workspace: string; id_digest?: string } & Record<string, unknown>;

export function toCounts(row: CountRow | undefined): Counts {
  if (!row) throw new Error('The retention statement answered no row');
  return {
    rows: Number(row.rows),
    ledger: Number(row.ledger),
    rollups: removedRollupCounts(row),
    perWorkspace: (JSON.parse(row.per_workspace) as { workspaceId: string | null; rows: number }[]).map((entry) => ({
      workspaceId: entry.workspaceId,
      rows: Number(entry.rows),
    })),
  };
}

export function dayLabel(day: Date): string {
  return day.toISOString().slice(0, 10);
}

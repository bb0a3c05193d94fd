import type { Database } from '../../../db/database.ts';
import type { Config } from '../../config.ts';
import { createLogger, type Logger } from '../../logger.ts';
import type { WrittenArchive } from './archive.ts';
import { expireEvents } from './expire-events.ts';
import { withRetentionLock } from './lock.ts';
import { createRetentionPolicies, planRetention } from './policies.ts';
import type { RetentionReport } from './schemas.ts';
import { DomainError } from '../../errors.ts';
import type { Metrics } from '../../metrics.ts';

export type RetentionService = ReturnType<typeof createRetentionService>;

export interface RetentionDeps {
  db: Database;
  config: Pick<Config, 'retention' | 'partitionDaysAhead'>;
  logger?: Logger;
  /** The clock cutoffs are computed from; tests pin it. */
  now?: () => Date;
  /** Called after each archive is written, before it is verified and its rows deleted; a throw keeps the rows. */
  onArchiveWritten?: (archive: WrittenArchive) => Promise<void>;
  /** Events per archive read; bounds the memory a run needs. */
  archivePageSize?: number;
  /** Where real runs are counted (scheduled, admin and CLI alike). */
  metrics?: Metrics;
}

/**
 * Retention: per-workspace overrides of the default retention, and the job that removes expired
 * events (whole partitions, or rows for shorter retentions) with their ledger ids and rollups,
 * archiving them first when an archive directory is configured.
 */
export function createRetentionService({
  db,
  config,
  logger = createLogger('silent'),
  now = () => new Date(),
  onArchiveWritten,
  archivePageSize = 5000,
  metrics,
}: RetentionDeps) {
  const policies = createRetentionPolicies({ db, defaultDays: config.retention.defaultDays, maxDays: config.retention.maxDays, now });

  /**
   * Runs the job once. A real run holds a lock shared by all instances and fails with `conflict`
   * if another run holds it; a dry run changes nothing, so it needs no lock. The job spans every
   * workspace: an admin key bound to one (`scope`) may not run it.
   */
  async function run(options: { dryRun?: boolean; signal?: AbortSignal; scope?: string | null } = {}): Promise<RetentionReport> {
    if (options.scope) throw new DomainError('forbidden', 'The retention job spans every workspace: it needs an admin key not bound to one');
    const dryRun = options.dryRun ?? false;
    const work = async () => {
      const { overrides } = await policies.listPolicies(null);
      const plan = planRetention({ now: now(), defaultDays: config.retention.defaultDays, maxDays: config.retention.maxDays, overrides });
      for (const override of plan.overrides) {
        if (override.requestedDays !== undefined) {
          const { workspaceId, requestedDays } = override;
          logger.warn('retention override above RETENTION_MAX_DAYS: applied as the maximum', { workspaceId, requestedDays, maxDays: plan.maxDays });
        }
      }
      return expireEvents({
        db,
        plan,
        dryRun,
        archiveDir: config.retention.archiveDir,
        partitionDaysAhead: config.partitionDaysAhead,
        logger,
        signal: options.signal,
        onArchiveWritten,
        pageSize: archivePageSize,
      });
    };
    if (dryRun) return work();
    try {
      const report = await withRetentionLock(db, work);
      if (metrics) recordRun(metrics, report);
      return report;
    } catch (error) {
      metrics?.retentionRuns.inc({ outcome: error instanceof DomainError && error.code === 'conflict' ? 'skipped' : 'failed' });
      throw error;
    }
  }

  return { ...policies, run };
}

function recordRun(metrics: Metrics, report: RetentionReport) {
  const outcome = report.interrupted ? 'interrupted' : report.errors.length > 0 ? 'partial' : 'ok';
  metrics.retentionRuns.inc({ outcome });
  const partitionRows = report.partitionsDropped.reduce((sum, partition) => sum + partition.rows, 0);
  const deletedRows = report.rowsDeleted.reduce((sum, entry) => sum + entry.rows, 0);
  metrics.retentionEventsExpired.inc(partitionRows + deletedRows);
  metrics.retentionPartitionsDropped.inc(report.partitionsDropped.length);
  metrics.retentionArchiveErrors.inc(report.errors.length);
  if (outcome === 'ok') metrics.retentionLastSuccess.set(report.finishedAt.getTime() / 1000);
}

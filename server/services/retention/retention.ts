import type { Database } from '../../../db/database.ts';
import type { Config } from '../../config.ts';
import { createLogger, type Logger } from '../../logger.ts';
import type { WrittenArchive } from './archive.ts';
import { expireEvents } from './expire-events.ts';
import { withRetentionLock } from './lock.ts';
import { createRetentionPolicies, planRetention } from './policies.ts';
import type { RetentionReport } from './schemas.ts';

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
}

/**
 * Retention: per-workspace overrides of the default retention, and the job that removes expired
 * events (whole partitions, or rows for shorter retentions) with their ledger ids and rollups,
 * archiving them first when an archive directory is configured.
 */
export function createRetentionService({ db, config, logger = createLogger('silent'), now = () => new Date(), onArchiveWritten, archivePageSize = 5000 }: RetentionDeps) {
  const policies = createRetentionPolicies({ db, defaultDays: config.retention.defaultDays, now });

  /**
   * Runs the job once. A real run holds a lock shared by all instances and fails with `conflict`
   * if another run holds it; a dry run changes nothing, so it needs no lock.
   */
  async function run(options: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<RetentionReport> {
    const dryRun = options.dryRun ?? false;
    const work = async () => {
      const { overrides } = await policies.listPolicies(null);
      const plan = planRetention({ now: now(), defaultDays: config.retention.defaultDays, overrides });
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
    return dryRun ? work() : withRetentionLock(db, work);
  }

  return { ...policies, run };
}

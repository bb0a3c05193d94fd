import type { Database } from '../db/database.ts';
import { adoptDefaultPartitionRows, ensureDailyPartitions } from '../db/partitions.ts';
import type { Logger } from './logger.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * Keeps daily partitions ready: yesterday through `daysAhead` days ahead, plus a partition for any
 * day that has rows in the default partition (late or backfilled events).
 */
export async function maintainPartitions(db: Database, options: { daysAhead: number; now?: Date }): Promise<string[]> {
  const now = options.now ?? new Date();
  const created = await ensureDailyPartitions(db, {
    from: new Date(now.getTime() - DAY_MS),
    to: new Date(now.getTime() + options.daysAhead * DAY_MS),
  });
  return [...created, ...(await adoptDefaultPartitionRows(db))];
}

/** Runs partition maintenance every hour until stopped; failures are logged and retried next hour. */
export function schedulePartitionMaintenance(db: Database, options: { daysAhead: number; logger: Logger; intervalMs?: number }): () => void {
  const timer = setInterval(() => {
    maintainPartitions(db, options)
      .then((created) => {
        if (created.length > 0) options.logger.info('partitions created', { partitions: created });
      })
      .catch((error: unknown) => options.logger.error('partition maintenance failed', { error }));
  }, options.intervalMs ?? HOUR_MS);
  timer.unref();
  return () => clearInterval(timer);
}

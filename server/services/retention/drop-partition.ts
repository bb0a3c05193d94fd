import { sql } from 'drizzle-orm';
import { isLockNotAvailable } from '../../../db/errors.ts';
import { dropDailyPartition } from '../../../db/partitions.ts';
import { removeRollupRange, type RollupRange } from '../../../db/rollups.ts';
import { discardArchive } from './archive.ts';
import { archiveRows, assertArchived, ID_DIGEST, RowsChangedError } from './expiry-archive.ts';
import { DAY_MS, dayLabel, removeRows, toCounts, type CountRow, type ExpiryRun } from './expiry-run.ts';

// While a DROP waits for its exclusive lock, every read and write of telemetry.events queues behind
// it: wait briefly, step aside, and try again a few times, rather than stall ingestion for long.
const DROP_LOCK_TIMEOUT = '1s';
const DROP_ATTEMPTS = 5;
const DROP_RETRY_PAUSE_MS = 2000;

/**
 * Archives (optionally) and drops one expired daily partition, with its ledger ids and the rollup
 * buckets of `rollups`, in one transaction. A partition whose archive failed, or that changed or
 * stayed busy, is left for the next run and reported.
 */
export async function expirePartition(run: ExpiryRun, partition: { name: string; day: Date }, rollups: RollupRange): Promise<void> {
  const { name, day } = partition;
  const table = sql.raw(`telemetry."${name}"`);
  const dayEnd = new Date(day.getTime() + DAY_MS);
  const outcome = await archiveRows(run, {
    target: name,
    description: { kind: 'partition', partition: name, day: dayLabel(day), range: { from: day.toISOString(), to: dayEnd.toISOString() } },
    baseName: `${name}.${run.stamp}`,
    table,
    where: sql`true`,
  });
  if (outcome.status === 'failed') return;
  const archived = outcome.status === 'archived' ? outcome : undefined;
  try {
    const counts = await withLockRetries(
      () =>
        run.db.transaction(async (tx) => {
          // Dropping a partition needs an exclusive lock on telemetry.events, which queues every read
          // and write behind it: give up quickly rather than stall ingestion behind a long query.
          if (!run.dryRun) await tx.rows(sql.raw(`set local lock_timeout = '${DROP_LOCK_TIMEOUT}'`));
          // With an archive, no write may slip in between counting (against the archive) and dropping.
          if (!run.dryRun && archived) await tx.rows(sql`lock table ${table} in share mode`);
          const removal = removeRollupRange(rollups, run.dryRun);
          const [row] = await tx.rows<CountRow>(sql`
            with ledger as (${removeRows(run, sql.raw('telemetry.event_ids'), sql`(workspace_id, id) in (select workspace_id, id from ${table})`)}),
                 ${removal.ctes}
            select (select count(*) from ${table}) as rows, (select count(*) from ledger) as ledger,
                   ${removal.counts}, '[]' as per_workspace,
                   (select ${ID_DIGEST} from ${table}) as id_digest`);
          const counts = toCounts(row);
          assertArchived(archived, counts.rows, row?.id_digest);
          if (!run.dryRun) await dropDailyPartition(tx, name);
          return counts;
        }),
      run.options.signal,
    );
    run.report.partitionsDropped.push({ name, day: dayLabel(day), rows: counts.rows });
    run.tally({ ...counts, perWorkspace: [] });
    if (archived) run.archived(archived.archive);
  } catch (error) {
    // Rows not deleted: their archive goes too, so every manifest on disk describes deleted rows.
    if (archived) await discardArchive(archived.archive).catch(() => {});
    if (error instanceof RowsChangedError) {
      run.leftInPlace(name, error.message);
    } else if (isLockNotAvailable(error)) {
      run.leftInPlace(name, `telemetry.events stayed busy (${DROP_ATTEMPTS} waits of ${DROP_LOCK_TIMEOUT}); left in place for the next run`);
    } else {
      throw error;
    }
  }
}

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

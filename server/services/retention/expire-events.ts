import { sql } from 'drizzle-orm';
import { maintainPartitions } from '../../partition-maintenance.ts';
import { clearRollups, expireRowBand } from './delete-rows.ts';
import { expirePartition } from './drop-partition.ts';
import { nextDayWithRows, planExpiry, type ExpiryTargets, type RowScope } from './expiry-plan.ts';
import { DAY_MS, startExpiryRun, type ExpireOptions, type ExpiryRun } from './expiry-run.ts';
import type { RetentionReport } from './schemas.ts';

export type { ExpireOptions } from './expiry-run.ts';

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
 *
 * Each step is its own module: plan (expiry-plan.ts), archive (expiry-archive.ts), drop a
 * partition (drop-partition.ts), delete rows (delete-rows.ts), and the report (expiry-run.ts).
 */
export async function expireEvents(options: ExpireOptions): Promise<RetentionReport> {
  const run = startExpiryRun(options);
  const targets = await planExpiry(options.db, options.plan);
  await expireDaysPastEveryRetention(run, targets);
  for (const target of targets.shorterRetentions) {
    if (run.stopped()) break;
    await expireShorterRetention(run, target);
  }
  // Future partitions, and a partition for any unexpired day the default partition still holds.
  if (!run.dryRun && !run.stopped()) {
    run.report.partitionsCreated = await maintainPartitions(options.db, { daysAhead: options.partitionDaysAhead, now: options.plan.now });
  }
  return run.finish();
}

/**
 * Step 1: days older than every retention, oldest first. `frontier` is where the rollups of all
 * workspaces have been cleared up to: each day also clears the buckets between the previous day
 * and its own (gaps whose events went earlier), so no bucket is counted twice.
 */
async function expireDaysPastEveryRetention(run: ExpiryRun, targets: ExpiryTargets): Promise<void> {
  const { partitionCutoff } = run.options.plan;
  let frontier: Date | null = null;
  for (const expired of targets.expiredDays) {
    if (run.stopped()) break;
    const dayEnd = new Date(expired.day.getTime() + DAY_MS);
    const rollups = { filter: targets.everyKnownWorkspace, from: frontier, to: dayEnd };
    if (expired.kind === 'partition') await expirePartition(run, expired, rollups);
    else await expireRowBand(run, { kind: 'default-partition' }, { from: expired.day, to: dayEnd }, rollups);
    // Past this day either way: a day left in place (its archive failed) keeps its own buckets.
    frontier = dayEnd;
  }
  if (!run.stopped() && (frontier === null || frontier < partitionCutoff)) {
    run.tally(await clearRollups(run, { filter: targets.everyKnownWorkspace, from: frontier, to: partitionCutoff }));
  }
}

/** Step 2: one shorter retention, from the partition cutoff up to its own cutoff, a day at a time. */
async function expireShorterRetention(run: ExpiryRun, target: { scope: RowScope; cutoff: Date }): Promise<void> {
  const { scope, cutoff } = target;
  const rollupFilter = scope.kind === 'workspace' ? sql`workspace_id = ${scope.workspaceId}::uuid` : null;
  let frontier = run.options.plan.partitionCutoff;
  while (frontier < cutoff && !run.stopped()) {
    const day = await nextDayWithRows(run.db, scope, { from: frontier, to: cutoff });
    if (!day) break;
    const to = new Date(Math.min(day.getTime() + DAY_MS, cutoff.getTime()));
    await expireRowBand(run, scope, { from: frontier, to, day }, rollupFilter && { filter: rollupFilter, from: frontier, to });
    frontier = to;
  }
  if (rollupFilter && frontier < cutoff && !run.stopped()) {
    run.tally(await clearRollups(run, { filter: rollupFilter, from: frontier, to: cutoff }));
  }
}

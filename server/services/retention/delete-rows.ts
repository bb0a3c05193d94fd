import { sql } from 'drizzle-orm';
import { removeRollupRange, type RollupRange } from '../../../db/rollups.ts';
import { discardArchive } from './archive.ts';
import { archiveRows, assertArchived, ID_DIGEST, RowsChangedError } from './expiry-archive.ts';
import { rowsOf, type RowScope } from './expiry-plan.ts';
import { dayLabel, removeRows, toCounts, type CountRow, type Counts, type ExpiryRun } from './expiry-run.ts';

/**
 * Deletes (or counts) one day's rows of a scope in one statement, with their ledger ids and the
 * rollup buckets of `rollups` (none when null). A day whose archive failed, or that changed while
 * it was archived, is left in place and reported.
 */
export async function expireRowBand(run: ExpiryRun, scope: RowScope, range: { from: Date; to: Date; day?: Date }, rollups: RollupRange | null): Promise<void> {
  const day = range.day ?? range.from;
  const where = sql`${rowsOf(scope)} and created_at >= ${range.from.toISOString()}::timestamptz and created_at < ${range.to.toISOString()}::timestamptz`;
  const table = sql.raw(scope.kind === 'default-partition' ? 'telemetry.events_default' : 'telemetry.events');
  const target = `${scope.kind === 'workspace' ? `workspace ${scope.workspaceId}` : 'default partition'} on ${dayLabel(day)}`;
  const outcome = await archiveRows(run, {
    target,
    description: {
      kind: 'rows',
      partition: null,
      day: dayLabel(day),
      ...(scope.kind !== 'default-partition' && { workspaceId: scope.kind === 'workspace' ? scope.workspaceId : null }),
      range: { from: range.from.toISOString(), to: range.to.toISOString() },
    },
    baseName: `events-${scope.kind === 'workspace' ? scope.workspaceId : scope.kind}.${run.stamp}`,
    table,
    where,
  });
  if (outcome.status === 'failed') return;
  const archived = outcome.status === 'archived' ? outcome : undefined;
  try {
    const counts = await run.db.transaction(async (tx) => {
      const removal = removeRollupRange(rollups, run.dryRun);
      const [row] = await tx.rows<CountRow>(sql`
        with doomed as (${removeRows(run, table, where, sql`id, workspace_id`)}),
             ledger as (${removeRows(run, sql.raw('telemetry.event_ids'), sql`(workspace_id, id) in (select workspace_id, id from doomed)`)}),
             ${removal.ctes},
             per_workspace as (select workspace_id, count(*) as rows from doomed group by workspace_id)
        select (select count(*) from doomed) as rows, (select count(*) from ledger) as ledger,
               ${removal.counts},
               (select coalesce(json_agg(json_build_object('workspaceId', workspace_id, 'rows', rows)), '[]'::json)::text from per_workspace) as per_workspace,
               (select ${ID_DIGEST} from doomed) as id_digest`);
      const counts = toCounts(row);
      assertArchived(archived, counts.rows, row?.id_digest);
      return counts;
    });
    run.tally(counts);
    if (archived) run.archived(archived.archive);
  } catch (error) {
    // Rows not deleted: their archive goes too, so every manifest on disk describes deleted rows.
    if (archived) await discardArchive(archived.archive).catch(() => {});
    if (!(error instanceof RowsChangedError) || !archived) throw error;
    run.leftInPlace(target, error.message);
  }
}

/** Removes (or counts) rollup buckets whose events went earlier (or never existed: erased), in one statement. */
export async function clearRollups(run: ExpiryRun, rollups: RollupRange): Promise<Counts> {
  const removal = removeRollupRange(rollups, run.dryRun);
  const [row] = await run.db.rows<CountRow>(sql`
    with ${removal.ctes}
    select 0 as rows, 0 as ledger, ${removal.counts}, '[]' as per_workspace`);
  return toCounts(row);
}

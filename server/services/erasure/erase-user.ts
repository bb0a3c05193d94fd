import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { retryTransientConflicts } from '../../../db/errors.ts';
import { subtractDeletedFromRollups } from '../../../db/rollups.ts';
import { DomainError } from '../../errors.ts';
import type { ErasureReceipt } from './schemas.ts';

export type ErasureService = ReturnType<typeof createErasureService>;

/**
 * GDPR erasure: deletes every stored event of a user (all partitions), subtracts them from the
 * rollups, and records who asked and how many rows went, all in one transaction. The id ledger
 * keeps the erased ids (ids carry no personal data), so a client retrying an erased event is
 * answered `duplicate` and the event does not come back. Events of that user arriving later are
 * stored as usual.
 */
export function createErasureService({ db }: { db: Database }) {
  /**
   * `scope`: the calling admin key's workspace (null: unbound). A bound key erases in its own
   * workspace only (the default there); an unbound one in the workspace named, or in all.
   */
  async function eraseUser(
    request: { userId: string; workspaceId?: string | null | undefined; requestedByKeyId: string },
    scope: string | null,
  ): Promise<ErasureReceipt> {
    const input = { ...request, workspaceId: request.workspaceId ?? scope };
    if (scope && input.workspaceId !== scope) throw new DomainError('forbidden', 'This admin key manages only its own workspace');
    const requestId = randomUUID();
    const requestedAt = new Date();
    // Rollup rows are locked in the flush's order, so a deadlock with ingestion should not happen;
    // if one does (or another conflict), the whole transaction is safe to run again.
    const deletedCount = await retryTransientConflicts(() =>
      db.transaction(async (tx) => {
        // One statement per workspace, each naming it (on Citus each runs on its workspace's shard),
        // all in this transaction. No index leads from user_id: erasure is rare, and a scan of the
        // events (of one workspace, or to find the user's workspaces) is its whole cost.
        const workspaceIds = input.workspaceId
          ? [input.workspaceId]
          : (
              await tx.rows<{ workspace_id: string }>(
                sql`select workspace_id from telemetry.events where user_id = ${input.userId} group by workspace_id order by workspace_id`,
              )
            ).map((row) => row.workspace_id);
        let deleted = 0;
        for (const workspaceId of workspaceIds) {
          const [row] = await tx.rows<{ deleted: number | string }>(sql`
          with deleted as (
            delete from telemetry.events where workspace_id = ${workspaceId} and user_id = ${input.userId}
            returning workspace_id, created_at, event_type, name, source
          )${subtractDeletedFromRollups(workspaceId)}
          select count(*) as deleted from deleted`);
          deleted += Number(row?.deleted ?? 0);
        }
        await tx.rows(sql`
        insert into telemetry.erasure_requests (id, user_id, workspace_id, requested_by_key_id, requested_at, completed_at, deleted_count)
        values (${requestId}, ${input.userId}, ${input.workspaceId}, ${input.requestedByKeyId}, ${requestedAt.toISOString()}::timestamptz, now(), ${deleted})`);
        return deleted;
      }),
    );
    return status(requestId, null).then((receipt) => ({ ...receipt, deletedCount }));
  }

  /** A past request; a workspace-bound admin (`scope`) sees its own workspace's requests only. */
  async function status(requestId: string, scope: string | null): Promise<ErasureReceipt> {
    const [row] = await db.rows<{
      id: string;
      user_id: string;
      workspace_id: string | null;
      deleted_count: number | string;
      requested_ms: number | string;
      completed_ms: number | string;
    }>(sql`
      select id, user_id, workspace_id, deleted_count,
             (extract(epoch from requested_at) * 1000)::float8 as requested_ms, (extract(epoch from completed_at) * 1000)::float8 as completed_ms
      from telemetry.erasure_requests where id = ${requestId} ${scope ? sql`and workspace_id = ${scope}` : sql``}`);
    if (!row) throw new DomainError('not_found', 'No erasure request with this id');
    return {
      requestId: row.id,
      userId: row.user_id,
      workspaceId: row.workspace_id,
      deletedCount: Number(row.deleted_count),
      requestedAt: new Date(Number(row.requested_ms)),
      completedAt: new Date(Number(row.completed_ms)),
    };
  }

  return { eraseUser, status };
}

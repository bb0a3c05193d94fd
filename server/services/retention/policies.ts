import { asc, eq } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { workspaceRetention } from '../../../db/schema.ts';
import { DomainError } from '../../errors.ts';
import { inExistingWorkspace } from '../workspaces/workspaces.ts';
import type { ClearedRetention, RetentionOverride, RetentionPolicies } from './schemas.ts';

/** A workspace-bound admin key manages the retention of its own workspace only. */
function assertInScope(scope: string | null, workspaceId: string) {
  if (scope && workspaceId !== scope) throw new DomainError('forbidden', 'This admin key manages only its own workspace');
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * Per-workspace retention overrides of existing workspaces, stored in telemetry.workspace_retention,
 * each at most `maxDays` (RETENTION_MAX_DAYS): whole partitions go once they are older than the
 * longest retention in effect, so the maximum keeps one workspace's override from holding every
 * workspace's partitions.
 */
export function createRetentionPolicies({ db, defaultDays, maxDays, now }: { db: Database; defaultDays: number; maxDays: number; now: () => Date }) {
  const columns = {
    workspaceId: workspaceRetention.workspaceId,
    days: workspaceRetention.days,
    updatedAt: workspaceRetention.updatedAt,
    updatedByKeyId: workspaceRetention.updatedByKeyId,
  };

  /** `scope`: the calling admin key's workspace (null: unbound, or the service itself). */
  async function setOverride(input: { workspaceId: string; days: number; updatedByKeyId: string | null }, scope: string | null): Promise<RetentionOverride> {
    assertInScope(scope, input.workspaceId);
    if (input.days > maxDays) {
      throw new DomainError('invalid_input', `days ${input.days} is above the longest retention this service allows (${maxDays} days, RETENTION_MAX_DAYS)`, {
        path: 'days',
        reason: 'above_retention_maximum',
      });
    }
    const values = { workspaceId: input.workspaceId, days: input.days, updatedAt: now(), updatedByKeyId: input.updatedByKeyId };
    const [row] = await inExistingWorkspace(() =>
      db.orm
        .insert(workspaceRetention)
        .values(values)
        .onConflictDoUpdate({
          target: workspaceRetention.workspaceId,
          set: { days: values.days, updatedAt: values.updatedAt, updatedByKeyId: values.updatedByKeyId },
        })
        .returning(columns),
    );
    if (!row) throw new Error('The retention override was not stored');
    return row;
  }

  async function clearOverride(workspaceId: string, scope: string | null): Promise<ClearedRetention> {
    assertInScope(scope, workspaceId);
    const removed = await db.orm
      .delete(workspaceRetention)
      .where(eq(workspaceRetention.workspaceId, workspaceId))
      .returning({ workspaceId: workspaceRetention.workspaceId });
    return { workspaceId, cleared: removed.length > 0, days: defaultDays };
  }

  /** The default and the overrides; `scope` limits a workspace-bound admin to its own workspace. */
  async function listPolicies(scope: string | null): Promise<RetentionPolicies> {
    const query = db.orm.select(columns).from(workspaceRetention);
    const overrides = await (scope ? query.where(eq(workspaceRetention.workspaceId, scope)) : query).orderBy(asc(workspaceRetention.workspaceId));
    return { defaultDays, maxDays, overrides };
  }

  return { setOverride, clearOverride, listPolicies };
}

export interface RetentionPlan {
  now: Date;
  defaultDays: number;
  maxDays: number;
  defaultCutoff: Date;
  longestDays: number;
  /** Daily partitions whose day ends at or before this are dropped whole (a UTC midnight). */
  partitionCutoff: Date;
  /** `days` is what applies; `requestedDays` the stored override when it is above `maxDays`. */
  overrides: { workspaceId: string; days: number; cutoff: Date; requestedDays?: number }[];
}

/**
 * When events expire. A workspace keeps `days` days: its cutoff is `now - days`, rounded down to the
 * hour, so every per-minute and per-hour rollup bucket lies wholly before or after it and the
 * rollups stay exact when the events before it go. Whole partitions go once their day has ended
 * before the longest retention in effect (rounded down to UTC midnight): no workspace needs them.
 * An override stored above `maxDays` (before the maximum was lowered) applies as `maxDays`, so the
 * partition cutoff is never older than `maxDays`.
 */
export function planRetention(input: {
  now: Date;
  defaultDays: number;
  maxDays: number;
  overrides: readonly { workspaceId: string; days: number }[];
}): RetentionPlan {
  const cutoff = (days: number) => new Date(Math.floor((input.now.getTime() - days * DAY_MS) / HOUR_MS) * HOUR_MS);
  const overrides = input.overrides.map(({ workspaceId, days }) => {
    const applied = Math.min(days, input.maxDays);
    return { workspaceId, days: applied, cutoff: cutoff(applied), ...(applied < days && { requestedDays: days }) };
  });
  const longestDays = Math.max(input.defaultDays, ...overrides.map((override) => override.days));
  return {
    now: input.now,
    defaultDays: input.defaultDays,
    maxDays: input.maxDays,
    defaultCutoff: cutoff(input.defaultDays),
    longestDays,
    partitionCutoff: new Date(Math.floor((input.now.getTime() - longestDays * DAY_MS) / DAY_MS) * DAY_MS),
    overrides,
  };
}

import { and, asc, eq } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { workspaceRateLimits } from '../../../db/schema.ts';
import { DomainError } from '../../errors.ts';
import type { KeyKind, RateLimitPolicy } from '../keys/schemas.ts';
import { inExistingWorkspace } from '../workspaces/workspaces.ts';
import type { SharedBudget } from './rate-limiter.ts';
import type { ClearedWorkspaceLimits, WorkspaceLimit, WorkspaceLimits } from './schemas.ts';

export type WorkspaceLimitService = ReturnType<typeof createWorkspaceLimits>;

type Ceilings = Partial<Record<KeyKind, RateLimitPolicy>>;

export interface WorkspaceLimitOptions {
  db: Database;
  /** The ceiling of workspaces without an override (RATE_LIMIT_WORKSPACE_*). */
  defaults: Record<KeyKind, RateLimitPolicy>;
  /**
   * How long an instance trusts a workspace's ceilings without asking the database again: a change
   * applies at once on the instance that made it, and within this on the others.
   */
  cacheTtlMs?: number;
  now?: () => number;
}

const MAX_CACHED_WORKSPACES = 10_000;

/** Ceilings bound what every key of a workspace can do, so an admin key bound to one may not move them. */
function assertUnbound(scope: string | null) {
  if (scope) {
    throw new DomainError('forbidden', "Only an admin key not bound to a workspace may change a workspace's rate ceiling", {
      reason: 'workspace_ceiling_unbound_only',
    });
  }
}

/**
 * Per-workspace rate ceilings: every key of one kind bound to a workspace spends from one shared
 * budget as well as its own, so minting more keys, or keys with higher limits, never gives a
 * workspace more than its ceiling. Overrides are stored in telemetry.workspace_rate_limits, for existing
 * workspaces only.
 */
export function createWorkspaceLimits({ db, defaults, cacheTtlMs = 10_000, now = Date.now }: WorkspaceLimitOptions) {
  // Overrides by workspace (an empty object: none), or the lookup in flight, so a burst of calls
  // of one workspace asks the database once.
  const cache = new Map<string, { ceilings: Promise<Ceilings>; expiresAt: number }>();

  const columns = {
    workspaceId: workspaceRateLimits.workspaceId,
    kind: workspaceRateLimits.kind,
    eventsPerSecond: workspaceRateLimits.eventsPerSecond,
    burst: workspaceRateLimits.burst,
    updatedAt: workspaceRateLimits.updatedAt,
    updatedByKeyId: workspaceRateLimits.updatedByKeyId,
  };
  type Row = { workspaceId: string; kind: KeyKind; eventsPerSecond: number; burst: number; updatedAt: Date; updatedByKeyId: string | null };
  const toLimit = ({ eventsPerSecond, burst, ...row }: Row): WorkspaceLimit => ({ ...row, rateLimit: { eventsPerSecond, burst } });

  async function load(workspaceId: string): Promise<Ceilings> {
    const rows = await db.orm
      .select({ kind: workspaceRateLimits.kind, eventsPerSecond: workspaceRateLimits.eventsPerSecond, burst: workspaceRateLimits.burst })
      .from(workspaceRateLimits)
      .where(eq(workspaceRateLimits.workspaceId, workspaceId));
    return Object.fromEntries(rows.map((row) => [row.kind, { eventsPerSecond: row.eventsPerSecond, burst: row.burst }]));
  }

  /** The ceiling in effect for keys of `kind` bound to `workspaceId`. */
  async function ceilingFor(workspaceId: string, kind: KeyKind): Promise<RateLimitPolicy> {
    let entry = cache.get(workspaceId);
    if (!entry || entry.expiresAt <= now()) {
      if (cache.size >= MAX_CACHED_WORKSPACES) cache.clear();
      const ceilings = load(workspaceId);
      entry = { ceilings, expiresAt: now() + cacheTtlMs };
      cache.set(workspaceId, entry);
      // A failed lookup is not remembered: the next call asks again.
      ceilings.catch(() => {
        if (cache.get(workspaceId)?.ceilings === ceilings) cache.delete(workspaceId);
      });
    }
    return (await entry.ceilings)[kind] ?? defaults[kind];
  }

  /** The shared budget a bound key spends from besides its own (see RateLimiter.consume). */
  async function budgetFor(workspaceId: string, kind: KeyKind): Promise<SharedBudget> {
    return { subject: `workspace:${workspaceId}:${kind}`, policy: await ceilingFor(workspaceId, kind) };
  }

  /**
   * A workspace-bound admin may not give a key a limit above its workspace's ceiling: the ceiling
   * would cap it anyway, and a key that looks larger than it can be only misleads.
   */
  async function assertWithinCeiling(workspaceId: string, kind: KeyKind, rateLimit: RateLimitPolicy): Promise<void> {
    const ceiling = await ceilingFor(workspaceId, kind);
    for (const field of ['eventsPerSecond', 'burst'] as const) {
      if (rateLimit[field] > ceiling[field]) {
        throw new DomainError(
          'forbidden',
          `rateLimit.${field} ${rateLimit[field]} is above this workspace's ceiling for ${kind} keys (${ceiling.eventsPerSecond}/s, burst ${ceiling.burst}); only an admin key not bound to a workspace can raise the ceiling`,
          { path: `rateLimit.${field}`, reason: 'above_workspace_ceiling' },
        );
      }
    }
  }

  /** `scope`: the calling admin key's workspace (null: unbound); only unbound keys may set ceilings. */
  async function setCeiling(
    input: { workspaceId: string; kind: KeyKind; rateLimit: RateLimitPolicy; updatedByKeyId: string | null },
    scope: string | null,
  ): Promise<WorkspaceLimit> {
    assertUnbound(scope);
    const values = {
      workspaceId: input.workspaceId,
      kind: input.kind,
      eventsPerSecond: input.rateLimit.eventsPerSecond,
      burst: input.rateLimit.burst,
      updatedAt: new Date(now()),
      updatedByKeyId: input.updatedByKeyId,
    };
    const [row] = await inExistingWorkspace(() =>
      db.orm
        .insert(workspaceRateLimits)
        .values(values)
        .onConflictDoUpdate({
          target: [workspaceRateLimits.workspaceId, workspaceRateLimits.kind],
          set: { eventsPerSecond: values.eventsPerSecond, burst: values.burst, updatedAt: values.updatedAt, updatedByKeyId: values.updatedByKeyId },
        })
        .returning(columns),
    );
    cache.delete(input.workspaceId);
    if (!row) throw new Error('The workspace ceiling was not stored');
    return toLimit(row);
  }

  async function clearCeiling(input: { workspaceId: string; kind?: KeyKind | undefined }, scope: string | null): Promise<ClearedWorkspaceLimits> {
    assertUnbound(scope);
    const { workspaceId, kind } = input;
    const removed = await db.orm
      .delete(workspaceRateLimits)
      .where(
        kind ? and(eq(workspaceRateLimits.workspaceId, workspaceId), eq(workspaceRateLimits.kind, kind)) : eq(workspaceRateLimits.workspaceId, workspaceId),
      )
      .returning({ kind: workspaceRateLimits.kind });
    cache.delete(workspaceId);
    return { workspaceId, cleared: removed.map((row) => row.kind).sort() };
  }

  /** The defaults and the overrides; `scope` limits a workspace-bound admin to its own workspace. */
  async function listCeilings(scope: string | null): Promise<WorkspaceLimits> {
    const query = db.orm.select(columns).from(workspaceRateLimits);
    const rows = await (scope ? query.where(eq(workspaceRateLimits.workspaceId, scope)) : query).orderBy(
      asc(workspaceRateLimits.workspaceId),
      asc(workspaceRateLimits.kind),
    );
    return { defaults, overrides: rows.map(toLimit) };
  }

  return { ceilingFor, budgetFor, assertWithinCeiling, setCeiling, clearCeiling, listCeilings };
}

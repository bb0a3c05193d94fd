import { and, desc, eq, lt, sql } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { adapterRejectionCounts, adapterRejections } from '../../../db/schema.ts';
import { clipText } from '../../ingest-adapters/metadata-budget.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics.ts';
import {
  type AdapterName,
  type AdapterRejection,
  type AdapterRejectionReason,
  type AdapterRejections,
  type AdapterRejectionsInput,
  MAX_KEPT_REJECTIONS,
} from './schemas.ts';

export type AdapterRejectionLedger = ReturnType<typeof createAdapterRejectionLedger>;

/** One refused record (or request) as an adapter reports it. */
export interface RefusalReport {
  reason: AdapterRejectionReason;
  message: string;
  path: string;
  recordIndex: number | null;
}

export interface LedgerOptions {
  db: Database;
  metrics: Metrics;
  logger: Logger;
  now?: () => Date;
  /** How often what was reported is written (a flush also runs before every read and at shutdown). */
  flushIntervalMs?: number;
}

/** Refusals of one request kept with their message; the others of that request are only counted. */
const MAX_SAMPLES_PER_REQUEST = 10;
/** Workspaces whose refusals wait for one flush; past it, a flush is started at once. */
const MAX_PENDING_WORKSPACES = 1_000;
const MAX_MESSAGE_CHARS = 500;
const MAX_PATH_CHARS = 200;

interface PendingWorkspace {
  counts: Map<string, { adapter: AdapterName; reason: AdapterRejectionReason; refused: number; lastAt: Date }>;
  samples: Array<typeof adapterRejections.$inferInsert>;
}

/**
 * Counts and keeps what adapters refused, per workspace: foreign SDKs drop refusals without a
 * word, so this is where a team sees them. Reports are gathered in memory and written together
 * (one flush at a time, at most every `flushIntervalMs`), so a tenant sending nothing but bad
 * records costs the database a bounded number of statements however fast it sends: counts are
 * summed, and only the last `MAX_KEPT_REJECTIONS` samples of each workspace are kept.
 */
export function createAdapterRejectionLedger({ db, metrics, logger, now = () => new Date(), flushIntervalMs = 1_000 }: LedgerOptions) {
  let pending = new Map<string, PendingWorkspace>();
  let flushing: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function report(input: { workspaceId: string; adapter: AdapterName; requestId: string | null; refusals: readonly RefusalReport[] }): void {
    if (input.refusals.length === 0) return;
    const at = now();
    let workspace = pending.get(input.workspaceId);
    if (!workspace) {
      workspace = { counts: new Map(), samples: [] };
      pending.set(input.workspaceId, workspace);
    }
    for (const refusal of input.refusals) {
      metrics.adapterRejections.inc({ adapter: input.adapter, reason: refusal.reason });
      const countKey = `${input.adapter}\n${refusal.reason}`;
      const count = workspace.counts.get(countKey);
      if (count) {
        count.refused += 1;
        count.lastAt = at;
      } else {
        workspace.counts.set(countKey, { adapter: input.adapter, reason: refusal.reason, refused: 1, lastAt: at });
      }
    }
    for (const refusal of input.refusals.slice(0, MAX_SAMPLES_PER_REQUEST)) {
      workspace.samples.push({
        workspaceId: input.workspaceId,
        adapter: input.adapter,
        reason: refusal.reason,
        message: clipText(refusal.message, MAX_MESSAGE_CHARS),
        path: clipText(refusal.path, MAX_PATH_CHARS),
        recordIndex: refusal.recordIndex,
        requestId: input.requestId,
        at,
      });
    }
    // Only the newest can be kept anyway: older samples waiting for the same flush are let go.
    if (workspace.samples.length > MAX_KEPT_REJECTIONS) workspace.samples.splice(0, workspace.samples.length - MAX_KEPT_REJECTIONS);
    if (pending.size >= MAX_PENDING_WORKSPACES) void flush();
    else timer ??= setTimeout(() => void flush(), flushIntervalMs).unref();
  }

  /** Writes everything reported so far; resolves once it is stored (or failed, which is logged). */
  async function flush(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = undefined;
    // One flush at a time: a second waits for the first, then writes what arrived meanwhile.
    while (flushing) await flushing;
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    flushing = write(batch)
      .catch((error: unknown) => logger.warn('adapter refusals could not be recorded; /metrics still counts them', { workspaces: batch.size, error }))
      .finally(() => {
        flushing = undefined;
      });
    await flushing;
  }

  async function write(batch: Map<string, PendingWorkspace>): Promise<void> {
    const counts = [...batch].flatMap(([workspaceId, workspace]) => [...workspace.counts.values()].map((count) => ({ workspaceId, ...count })));
    // One order for every flush, so two instances' upserts never wait on each other in a cycle.
    counts.sort((a, b) => (a.workspaceId + a.adapter + a.reason).localeCompare(b.workspaceId + b.adapter + b.reason));
    await db.orm
      .insert(adapterRejectionCounts)
      .values(counts)
      .onConflictDoUpdate({
        target: [adapterRejectionCounts.workspaceId, adapterRejectionCounts.adapter, adapterRejectionCounts.reason],
        set: {
          refused: sql`${adapterRejectionCounts.refused} + excluded.refused`,
          lastAt: sql`greatest(${adapterRejectionCounts.lastAt}, excluded.last_at)`,
        },
      });
    const samples = [...batch.values()].flatMap((workspace) => workspace.samples);
    if (samples.length > 0) await db.orm.insert(adapterRejections).values(samples);
    for (const workspaceId of batch.keys()) await trim(workspaceId);
  }

  /** Keeps the newest MAX_KEPT_REJECTIONS samples of a workspace (an index range, not a scan). */
  async function trim(workspaceId: string): Promise<void> {
    const [oldestKept] = await db.orm
      .select({ id: adapterRejections.id })
      .from(adapterRejections)
      .where(eq(adapterRejections.workspaceId, workspaceId))
      .orderBy(desc(adapterRejections.id))
      .offset(MAX_KEPT_REJECTIONS - 1)
      .limit(1);
    if (!oldestKept) return;
    await db.orm.delete(adapterRejections).where(and(eq(adapterRejections.workspaceId, workspaceId), lt(adapterRejections.id, oldestKept.id)));
  }

  /** A workspace's totals and latest refusals, including those reported on this instance and not yet written. */
  async function read(workspaceId: string, { limit }: AdapterRejectionsInput): Promise<AdapterRejections> {
    await flush();
    const counts = await db.orm
      .select({
        adapter: adapterRejectionCounts.adapter,
        reason: adapterRejectionCounts.reason,
        refused: adapterRejectionCounts.refused,
        lastAt: adapterRejectionCounts.lastAt,
      })
      .from(adapterRejectionCounts)
      .where(eq(adapterRejectionCounts.workspaceId, workspaceId))
      .orderBy(desc(adapterRejectionCounts.lastAt));
    const recent = await db.orm
      .select({
        at: adapterRejections.at,
        adapter: adapterRejections.adapter,
        reason: adapterRejections.reason,
        message: adapterRejections.message,
        path: adapterRejections.path,
        recordIndex: adapterRejections.recordIndex,
        requestId: adapterRejections.requestId,
      })
      .from(adapterRejections)
      .where(eq(adapterRejections.workspaceId, workspaceId))
      .orderBy(desc(adapterRejections.id))
      .limit(limit);
    // The columns hold only what report() wrote, which the schemas' enums typed.
    return { counts: counts as AdapterRejections['counts'], recent: recent as AdapterRejection[] };
  }

  return { report, flush, read };
}

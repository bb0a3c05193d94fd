import { sql } from 'drizzle-orm';
import type { Database, SqlRunner } from '../../db/database.ts';
import { createReadRouting, readTimeouts, readsUntil } from '../../db/read-routing.ts';
import { sqlState } from '../../db/errors.ts';
import { createEventWriter } from '../../db/event-writers.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Services } from '../trpc/context.ts';
import { createGroupCommitter } from './events/group-commit.ts';
import { createEventIngestor } from './events/ingest.ts';
import { createEventReader } from './events/read.ts';
import { createEventQueries } from './stats/queries.ts';
import { createStatsService } from './stats/stats.ts';
import { createTimeZoneCatalog } from './stats/time-zones.ts';
import { createKeyService } from './keys/keys.ts';
import { createErasureService } from './erasure/erase-user.ts';
import { createRetentionService } from './retention/retention.ts';
import type { RateLimiter } from './limits/rate-limiter.ts';
import { createWorkspaceLimits } from './limits/workspace-limits.ts';
import type { EventBus } from './live/bus.ts';
import { createLiveStreams } from './live/live-streams.ts';
import { createAdapterRejectionLedger } from './rejections/rejections.ts';
import { createStreamTickets } from './live/stream-tickets.ts';
import type { SharedStreamSlots } from './live/stream-slots.ts';
import { createWorkspaceService } from './workspaces/workspaces.ts';

/**
 * What the services are built from. Which parts (Redis or memory, replica or not) is decided by
 * the composition root (server/composition.ts), not here.
 */
export interface ServiceDeps {
  db: Database;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** Rate-limit budgets: in memory, or in Redis to share them between instances. */
  rateLimiter: RateLimiter;
  /** Carries committed events to live streams: this process's memory, or Redis to span instances. */
  bus: EventBus;
  /** Live stream slots shared by every instance (Redis); without it each instance counts its own. */
  streamSlots?: SharedStreamSlots | undefined;
  /** A streaming replica for reads (events.list/get, statistics); writes and keys stay on `db`. */
  readReplica?: SqlRunner | undefined;
  /**
   * The primary's connections for reads, apart from `db`'s, so a storm of heavy reads can slow
   * reads but never take the connections ingestion needs. Without it reads share `db`.
   */
  readPool?: SqlRunner | undefined;
  /** The server clock; tests pin it. */
  now?: (() => Date) | undefined;
}

/** What start-up and shutdown need besides the verbs procedures call. */
export interface ServiceLifecycle {
  /** Follows key revocations made on any instance (caches drop them, their streams end); resolves to a stop. */
  followRevocations(): Promise<() => Promise<void>>;
  /** Ends every open live stream: its client reconnects, and resumes, elsewhere. */
  endLiveStreams(): void;
  /** Ends live streams, commits every accepted event, then closes the rate limiter and the live bus. */
  close(): Promise<void>;
}

export function createServices({ db, config, logger, metrics, rateLimiter, bus, streamSlots, readReplica, readPool, now }: ServiceDeps): {
  services: Services;
  lifecycle: ServiceLifecycle;
} {
  const reads = createReadRouting({
    primary: readPool ?? db,
    ...(readReplica && { replica: readReplica }),
    replicaTimeoutMs: readTimeouts(config.procedureTimeoutMs).replicaAnswerMs,
    onBypass: (error) => logger.warn('read replica unavailable; reading from the primary for a few seconds', { error }),
  });
  const timeZones = createTimeZoneCatalog({ db: reads });
  /** The read verbs over `runner`: built once for callers without a deadline, and per call with one (cheap closures). */
  const readVerbs = (runner: SqlRunner) => {
    const queries = createEventQueries({ db: runner, timeZones, ...(now && { now }) });
    return { eventReader: { ...createEventReader({ db: runner }), listEvents: queries.listEvents }, stats: createStatsService(queries) };
  };
  // Revoking or rotating a key ends its open live streams: here at once, elsewhere on the revocation notice.
  const workspaceLimits = createWorkspaceLimits({ db, defaults: config.workspaceRateLimits });
  const workspaces = createWorkspaceService({ db });
  const keys = createKeyService({ db, onRevoked: (keyId) => live.endStreamsOfKey(keyId), ceilings: workspaceLimits });
  const live = createLiveStreams({
    bus,
    options: {
      maxStreamsPerKey: config.live.maxStreamsPerKey,
      maxDurationMs: config.live.maxDurationMs,
      subscriberBuffer: config.live.subscriberBuffer,
      subscriberBufferBytes: config.live.subscriberBufferBytes,
      maxResumeBytes: config.live.maxResumeBytes,
    },
    metrics,
    logger,
    ...(streamSlots && { sharedSlots: streamSlots }),
    activeKeyIds: keys.activeKeyIds,
    keyCheckIntervalMs: config.live.keyCheckIntervalMs,
  });
  const committer = createGroupCommitter(
    // On Citus a statement waiting on a silent worker is cancelled once group commit stops waiting
    // for it (twice the write deadline), so it cannot keep its connection.
    createEventWriter(db, { statementTimeoutMs: 2 * config.ingestWriteTimeoutMs }),
    {
      ...config.groupCommit,
      writeTimeoutMs: config.ingestWriteTimeoutMs,
      probe: async () => {
        await db.rows(sql`select 1`);
      },
      // Validation should have refused whatever the database refuses: each one is worth a look. Not
      // the error itself: a failed statement's text carries the whole flush, other tenants' events too.
      onRefused: (rows, error) =>
        logger.warn('the database refused events; they were answered as rejected', {
          events: rows.length,
          eventIds: rows.slice(0, 5).map((row) => row.id),
          workspaceIds: [...new Set(rows.map((row) => row.workspaceId))].slice(0, 5),
          sqlState: sqlState(error),
        }),
      // PGlite runs one query at a time: more flushes would only queue inside it (the loader caps them at the pool).
      maxConcurrentFlushes: db.kind === 'pglite' ? 1 : config.groupCommit.maxConcurrentFlushes,
    },
    metrics,
    live.publishCommitted,
  );
  const adapterRejections = createAdapterRejectionLedger({ db, metrics, logger, ...(now && { now }) });
  const services: Services = {
    ingestor: createEventIngestor({ db, limits: config.limits, committer, workspaces, metrics, ...(now && { now }) }),
    ...readVerbs(reads),
    readsUntil: (signal) => readVerbs(readsUntil(reads, signal)),
    keys,
    workspaces,
    erasure: createErasureService({ db }),
    retention: createRetentionService({ db, config, logger, metrics, ...(now && { now }) }),
    rateLimiter,
    workspaceLimits,
    live,
    streamTickets: createStreamTickets({ db, ttlMs: config.live.ticketTtlMs }),
    adapterRejections,
    metrics,
  };
  const lifecycle: ServiceLifecycle = {
    followRevocations: keys.followRevocations,
    endLiveStreams: () => live.endAll(),
    async close() {
      live.endAll();
      // Everything accepted is committed before the database closes.
      await committer.drain();
      await adapterRejections.flush();
      await rateLimiter.close();
      await live.close();
    },
  };
  return { services, lifecycle };
}

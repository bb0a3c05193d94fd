import { Redis } from 'ioredis';
import { openDatabase, openPostgres, type Database, type SqlRunner } from '../db/database.ts';
import { readTimeouts } from '../db/read-routing.ts';
import { createApp, type App } from './app.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { maintainPartitions, schedulePartitionMaintenance } from './partition-maintenance.ts';
import { createServices, type ServiceDeps, type ServiceLifecycle } from './services/index.ts';
import { scheduleRetention } from './services/retention/schedule.ts';
import { createRateLimiter } from './services/limits/rate-limiter.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createMemoryBus } from './services/live/bus.ts';
import { createRedisBus } from './services/live/redis-bus.ts';
import { createRedisStreamSlots } from './services/live/stream-slots.ts';
import type { Services } from './trpc/context.ts';

/**
 * The composition root: the one place that decides what the service is built from (PGlite or
 * PostgreSQL, a read replica, Redis or memory for rate limits and live streams) and in what order
 * it starts and stops. Everything below it takes what it needs as arguments.
 */

export interface RunningService {
  app: App;
  db: Database;
  /**
   * Starts a graceful shutdown: new requests are turned away (503, connection closed), open live
   * streams end (their clients reconnect and resume elsewhere), so the HTTP server can close.
   */
  beginShutdown(): void;
  /** Refuses new writes, commits what was accepted, stops background work, closes connections. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where a generated bootstrap admin key is shown (once). Defaults to stderr. */
  announceGeneratedAdminKey?: (key: string) => void;
}

/** Opens the database, applies migrations, prepares partitions and keys, and builds the HTTP app. */
export async function startService(config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningService> {
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    distribution: config.databaseDistribution,
    pgliteDir: config.pgliteDir,
    maxConnections: config.databasePoolMax,
    connectTimeoutSeconds: config.databaseConnectTimeoutSeconds,
  });
  // Reads may go to a streaming replica; it is never migrated (it replays the primary).
  const readReplica = config.databaseReadUrl
    ? openPostgres({
        url: config.databaseReadUrl,
        maxConnections: config.databasePoolMax,
        connectTimeoutSeconds: config.databaseConnectTimeoutSeconds,
        // A read the router gave up on (it runs again on the primary) must not keep running here.
        statementTimeoutMs: readTimeouts(config.procedureTimeoutMs).replicaStatementMs,
      })
    : undefined;
  // Reads get connections of their own on the primary, so heavy reads can never take the ones
  // ingestion needs. Their statements are cancelled at the call's deadline; the pool's
  // statement_timeout, a second later, stops any whose cancel request was lost. PGlite has one
  // connection for everything (see docs).
  const readPool = config.databaseUrl
    ? openPostgres({
        url: config.databaseUrl,
        maxConnections: config.databaseReadPoolMax,
        connectTimeoutSeconds: config.databaseConnectTimeoutSeconds,
        statementTimeoutMs: readTimeouts(config.procedureTimeoutMs).readPoolStatementMs,
      })
    : undefined;
  const redis = config.redisUrl ? connectRedis(config.redisUrl, logger) : undefined;
  const close = async () => {
    redis?.disconnect();
    await readReplica?.close().catch(() => {});
    await readPool?.close().catch(() => {});
    await db.close().catch(() => {});
  };

  try {
    await db.migrate();
    const created = await maintainPartitions(db, { daysAhead: config.partitionDaysAhead });
    logger.info('database ready', { kind: db.kind, partitionsCreated: created.length });
  } catch (error) {
    await close();
    throw error;
  }

  const { services, lifecycle } = wireServices({ db, config, logger, metrics: createMetrics(), redis, readReplica, readPool });
  const stopFollowingRevocations = await lifecycle.followRevocations();
  const { generated } = await services.keys.ensureAdminKey(config.adminKey);
  if (generated) {
    const announce = options.announceGeneratedAdminKey ?? ((key: string) => process.stderr.write(bootstrapMessage(key)));
    announce(generated);
  }

  const stopMaintenance = schedulePartitionMaintenance(db, { daysAhead: config.partitionDaysAhead, logger });
  const stopRetention = scheduleRetention(services.retention, { intervalMs: config.retention.intervalMs, logger });
  let draining = false;
  const app = createApp({ db, config, logger, services, isDraining: () => draining });
  return {
    app,
    db,
    beginShutdown() {
      draining = true;
      lifecycle.endLiveStreams();
    },
    async close() {
      stopMaintenance();
      // Interrupts a retention run between two steps and waits for it: it must not outlive the database.
      await stopRetention();
      await stopFollowingRevocations().catch(() => {});
      // Commits everything accepted before the database closes.
      await lifecycle.close();
      await close();
    },
  };
}

export interface WiringDeps extends Pick<ServiceDeps, 'db' | 'config' | 'now'> {
  logger: Logger;
  metrics: Metrics;
  /** Shares rate limits, live stream slots and (LIVE_BUS=redis) the live bus between instances. */
  redis?: Redis | undefined;
  readReplica?: SqlRunner | undefined;
  readPool?: SqlRunner | undefined;
  /** Parts used instead of the ones decided here (tests: a limiter, a bus or stream slots of their own). */
  replace?: Partial<Pick<ServiceDeps, 'rateLimiter' | 'bus' | 'streamSlots'>>;
}

/**
 * The services for `config`: with Redis, rate limits and live stream slots are shared through it
 * (and the live bus too when LIVE_BUS=redis); without it, each process keeps its own in memory.
 */
export function wireServices({ db, config, logger, metrics, redis, readReplica, readPool, now, replace = {} }: WiringDeps): {
  services: Services;
  lifecycle: ServiceLifecycle;
} {
  const bus =
    replace.bus ??
    (config.live.bus === 'redis' && redis
      ? createRedisBus({ redis, stream: config.live.redisStream, maxEvents: config.live.replayEvents, maxBytes: config.live.replayBytes, logger })
      : createMemoryBus({ maxEvents: config.live.replayEvents, maxBytes: config.live.replayBytes }));
  return createServices({
    db,
    config,
    logger,
    metrics,
    rateLimiter: replace.rateLimiter ?? createRateLimiter({ logger, ...(redis && { redis }) }),
    bus,
    streamSlots: replace.streamSlots ?? (redis ? createRedisStreamSlots({ redis }) : undefined),
    readReplica,
    readPool,
    now,
  });
}

function connectRedis(url: string, logger: Logger): Redis {
  // No offline queue: while Redis is down a command fails at once and the rate limiter answers
  // from memory, instead of requests waiting for a reconnect.
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: false });
  redis.on('error', () => {}); // reported by the rate limiter's own listener; avoid unhandled-error noise
  logger.info('connecting to Redis for shared rate limits and the live bus');
  return redis;
}

function bootstrapMessage(key: string): string {
  return [
    '',
    'No admin key existed, so one was generated. It is shown only now; store it safely:',
    '',
    `    ${key}`,
    '',
    'Create a workspace with it (admin.workspaces.create), then ingest and read keys in that workspace (admin.keys.create),',
    'or set TELEMETRY_ADMIN_KEY to choose your own.',
    '',
  ].join('\n');
}

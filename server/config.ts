import { z } from 'zod';
import type { KeyKind, RateLimitPolicy } from './services/keys/schemas.ts';

const DAY_MS = 86_400_000;
/** Unless RETENTION_MAX_DAYS says otherwise: a year (or RETENTION_DAYS, if longer). */
const DEFAULT_RETENTION_MAX_DAYS = 365;

const EnvironmentSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .trim()
    .optional()
    .transform((value) => (value ? value : undefined))
    .refine((value) => value === undefined || /^postgres(ql)?:\/\//.test(value), 'must start with postgres:// or postgresql://'),
  DATABASE_READ_URL: z
    .string()
    .trim()
    .optional()
    .transform((value) => (value ? value : undefined))
    .refine((value) => value === undefined || /^postgres(ql)?:\/\//.test(value), 'must start with postgres:// or postgresql://'),
  PGLITE_DIR: z.string().min(1).default('./.data'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(10),
  DATABASE_READ_POOL_MAX: z.coerce.number().int().min(1).max(500).default(5),
  DATABASE_CONNECT_TIMEOUT_S: z.coerce.number().int().min(1).max(120).default(5),
  INGEST_WRITE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  PROCEDURE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(15_000),
  READY_CHECK_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2000),
  MAX_BATCH_EVENTS: z.coerce.number().int().min(1).max(10_000).default(1000),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  MAX_EVENT_AGE_DAYS: z.coerce.number().min(0).max(3650).default(30),
  MAX_FUTURE_SKEW_S: z.coerce.number().min(0).max(30 * 86_400).default(600),
  PARTITION_DAYS_AHEAD: z.coerce.number().int().min(1).max(90).default(7),
  RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  RETENTION_MAX_DAYS: z.coerce.number().int().min(1).max(3650).optional(),
  RETENTION_INTERVAL_MINUTES: z.coerce.number().int().min(0).max(10_080).default(60),
  ARCHIVE_DIR: z.string().trim().optional().transform((value) => (value ? value : undefined)),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  TELEMETRY_ADMIN_KEY: z.string().trim().optional().transform((value) => (value ? value : undefined))
    .refine((value) => value === undefined || (value.length >= 24 && value.length <= 512 && /^\S+$/.test(value)), 'must be 24-512 characters without spaces'),
  REDIS_URL: z.string().trim().optional().transform((value) => (value ? value : undefined))
    .refine((value) => value === undefined || /^rediss?:\/\//.test(value), 'must start with redis:// or rediss://'),
  RATE_LIMIT_INGEST_EPS: z.coerce.number().int().min(1).default(2000),
  RATE_LIMIT_INGEST_BURST: z.coerce.number().int().min(0).default(10_000),
  RATE_LIMIT_READ_EPS: z.coerce.number().int().min(1).default(50),
  RATE_LIMIT_READ_BURST: z.coerce.number().int().min(0).default(200),
  RATE_LIMIT_ADMIN_EPS: z.coerce.number().int().min(1).default(20),
  RATE_LIMIT_ADMIN_BURST: z.coerce.number().int().min(0).default(100),
  RATE_LIMIT_WORKSPACE_INGEST_EPS: z.coerce.number().int().min(1).max(1_000_000).default(5000),
  RATE_LIMIT_WORKSPACE_INGEST_BURST: z.coerce.number().int().min(0).max(10_000_000).default(25_000),
  RATE_LIMIT_WORKSPACE_READ_EPS: z.coerce.number().int().min(1).max(1_000_000).default(100),
  RATE_LIMIT_WORKSPACE_READ_BURST: z.coerce.number().int().min(0).max(10_000_000).default(400),
  RATE_LIMIT_WORKSPACE_ADMIN_EPS: z.coerce.number().int().min(1).max(1_000_000).default(40),
  RATE_LIMIT_WORKSPACE_ADMIN_BURST: z.coerce.number().int().min(0).max(10_000_000).default(200),
  MAX_TRPC_BATCH_CALLS: z.coerce.number().int().min(1).max(1000).default(50),
  CORS_ORIGINS: z.string().trim().default('*'),
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  INGEST_FLUSH_MAX_EVENTS: z.coerce.number().int().min(1).max(100_000).default(2000),
  INGEST_FLUSH_DELAY_MS: z.coerce.number().min(0).max(1000).default(2),
  INGEST_CONCURRENT_FLUSHES: z.coerce.number().int().min(1).max(64).default(4),
  INGEST_QUEUE_MAX_EVENTS: z.coerce.number().int().min(1).max(10_000_000).default(50_000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(20_000),
  LIVE_BUS: z.enum(['auto', 'memory', 'redis']).default('auto'),
  LIVE_REDIS_STREAM: z.string().trim().min(1).max(200).default('telemetry:events'),
  LIVE_REPLAY_EVENTS: z.coerce.number().int().min(100).max(10_000_000).optional(),
  LIVE_MAX_STREAMS_PER_KEY: z.coerce.number().int().min(1).max(10_000).default(5),
  LIVE_MAX_DURATION_S: z.coerce.number().int().min(1).max(86_400).default(3600),
  LIVE_SUBSCRIBER_BUFFER: z.coerce.number().int().min(10).max(1_000_000).default(10_000),
  // Byte bounds of live streams: at least 1 MiB, well above one event (metadata is at most 32 KB).
  LIVE_REPLAY_BYTES: z.coerce.number().int().min(1024 * 1024).max(64 * 1024 ** 3).optional(),
  LIVE_SUBSCRIBER_BUFFER_BYTES: z.coerce.number().int().min(1024 * 1024).max(1024 ** 3).default(16 * 1024 * 1024),
  LIVE_REPLAY_MAX_RESUME_BYTES: z.coerce.number().int().min(1024 * 1024).max(64 * 1024 ** 3).default(32 * 1024 * 1024),
  LIVE_KEY_CHECK_S: z.coerce.number().int().min(1).max(3600).default(30),
  LIVE_TICKET_TTL_S: z.coerce.number().int().min(5).max(600).default(60),
});

export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** A streaming replica for read procedures (lists, statistics, live replay excepted); unset: the primary. */
  databaseReadUrl: string | undefined;
  pgliteDir: string;
  databasePoolMax: number;
  /** Connections of the pool that reads (events.list/get, statistics) use, apart from writes (PostgreSQL only). */
  databaseReadPoolMax: number;
  databaseConnectTimeoutSeconds: number;
  /** Longest wait for a group-commit write before its callers get a retryable 503 (the outcome is then unknown; retries dedupe). */
  ingestWriteTimeoutMs: number;
  /** Longest a query or mutation may take before the caller gets a retryable 503 (live streams excepted). */
  procedureTimeoutMs: number;
  /** Longest /readyz database check; slower counts as unreachable. */
  readyCheckTimeoutMs: number;
  limits: {
    maxBatchEvents: number;
    maxBodyBytes: number;
    maxEventAgeMs: number;
    maxFutureSkewMs: number;
  };
  partitionDaysAhead: number;
  retention: {
    /** Days events are kept in workspaces without their own override (admin.retention.set). */
    defaultDays: number;
    /** The longest retention any workspace gets (overrides above it are refused, stored ones clamped): partitions older than it are always dropped. */
    maxDays: number;
    /** How often the service runs the retention job; 0: never (run `npm run retention` instead). */
    intervalMs: number;
    /** Where expiring events are archived (gzipped NDJSON) before they are deleted; unset: no archive. */
    archiveDir: string | undefined;
  };
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  adminKey: string | undefined;
  redisUrl: string | undefined;
  /** Default rate limits per key kind; a key's own limit overrides its kind's. */
  rateLimits: Record<KeyKind, RateLimitPolicy>;
  /**
   * Default ceiling per workspace and key kind: all keys of that kind bound to one workspace share
   * this budget, whatever their own limits (an unbound admin overrides it per workspace).
   */
  workspaceRateLimits: Record<KeyKind, RateLimitPolicy>;
  maxTrpcBatchCalls: number;
  /** `*` or the exact origins allowed to call from a browser. */
  corsOrigins: '*' | string[];
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  groupCommit: {
    maxFlushEvents: number;
    maxDelayMs: number;
    maxConcurrentFlushes: number;
    maxQueuedEvents: number;
  };
  shutdownTimeoutMs: number;
  live: {
    /** Where committed events are published: Redis Streams when `redis`, this process only when `memory`. */
    bus: 'memory' | 'redis';
    redisStream: string;
    /** Most events kept for reconnecting subscribers (the window is also bounded by `replayBytes`). */
    replayEvents: number;
    maxStreamsPerKey: number;
    maxDurationMs: number;
    /** Events one slow subscriber may have waiting before its stream is ended (it resumes with lastEventId). */
    subscriberBuffer: number;
    /** Bytes of the replay window (events as JSON text): in this process's heap for `memory`, in Redis for `redis`. */
    replayBytes: number;
    /** The subscriber buffer's bound in bytes. */
    subscriberBufferBytes: number;
    /** Most bytes of the window one resume reads back; the rest of a longer gap is skipped. */
    maxResumeBytes: number;
    /** How often open streams' keys are checked against the database, behind the revocation notices. */
    keyCheckIntervalMs: number;
    /** How long a stream ticket (telemetry.liveTicket) opens live streams after it is minted. */
    ticketTtlMs: number;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration from environment variables; throws a readable ConfigError on a bad value. */
export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  const result = EnvironmentSchema.safeParse(environment);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const env = result.data;
  if (env.RETENTION_MAX_DAYS !== undefined && env.RETENTION_MAX_DAYS < env.RETENTION_DAYS) {
    throw new ConfigError(`Invalid configuration:\n  RETENTION_MAX_DAYS: must be at least RETENTION_DAYS (${env.RETENTION_DAYS})`);
  }
  const liveBus = env.LIVE_BUS === 'auto' ? (env.REDIS_URL ? 'redis' : 'memory') : env.LIVE_BUS;
  return {
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    databaseReadUrl: env.DATABASE_READ_URL,
    pgliteDir: env.PGLITE_DIR,
    databasePoolMax: env.DATABASE_POOL_MAX,
    databaseReadPoolMax: env.DATABASE_READ_POOL_MAX,
    databaseConnectTimeoutSeconds: env.DATABASE_CONNECT_TIMEOUT_S,
    ingestWriteTimeoutMs: env.INGEST_WRITE_TIMEOUT_MS,
    readyCheckTimeoutMs: env.READY_CHECK_TIMEOUT_MS,
    procedureTimeoutMs: env.PROCEDURE_TIMEOUT_MS,
    limits: {
      maxBatchEvents: env.MAX_BATCH_EVENTS,
      maxBodyBytes: env.MAX_BODY_BYTES,
      maxEventAgeMs: env.MAX_EVENT_AGE_DAYS * DAY_MS,
      maxFutureSkewMs: env.MAX_FUTURE_SKEW_S * 1000,
    },
    partitionDaysAhead: env.PARTITION_DAYS_AHEAD,
    retention: {
      defaultDays: env.RETENTION_DAYS,
      maxDays: env.RETENTION_MAX_DAYS ?? Math.max(env.RETENTION_DAYS, DEFAULT_RETENTION_MAX_DAYS),
      intervalMs: env.RETENTION_INTERVAL_MINUTES * 60_000,
      archiveDir: env.ARCHIVE_DIR,
    },
    logLevel: env.LOG_LEVEL,
    adminKey: env.TELEMETRY_ADMIN_KEY,
    redisUrl: env.REDIS_URL,
    rateLimits: {
      ingest: { eventsPerSecond: env.RATE_LIMIT_INGEST_EPS, burst: env.RATE_LIMIT_INGEST_BURST },
      read: { eventsPerSecond: env.RATE_LIMIT_READ_EPS, burst: env.RATE_LIMIT_READ_BURST },
      admin: { eventsPerSecond: env.RATE_LIMIT_ADMIN_EPS, burst: env.RATE_LIMIT_ADMIN_BURST },
    },
    workspaceRateLimits: {
      ingest: { eventsPerSecond: env.RATE_LIMIT_WORKSPACE_INGEST_EPS, burst: env.RATE_LIMIT_WORKSPACE_INGEST_BURST },
      read: { eventsPerSecond: env.RATE_LIMIT_WORKSPACE_READ_EPS, burst: env.RATE_LIMIT_WORKSPACE_READ_BURST },
      admin: { eventsPerSecond: env.RATE_LIMIT_WORKSPACE_ADMIN_EPS, burst: env.RATE_LIMIT_WORKSPACE_ADMIN_BURST },
    },
    maxTrpcBatchCalls: env.MAX_TRPC_BATCH_CALLS,
    corsOrigins: env.CORS_ORIGINS === '*' ? '*' : env.CORS_ORIGINS.split(',').map((origin) => origin.trim()).filter(Boolean),
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    headersTimeoutMs: env.HEADERS_TIMEOUT_MS,
    groupCommit: {
      maxFlushEvents: env.INGEST_FLUSH_MAX_EVENTS,
      maxDelayMs: env.INGEST_FLUSH_DELAY_MS,
      maxConcurrentFlushes: env.INGEST_CONCURRENT_FLUSHES,
      maxQueuedEvents: env.INGEST_QUEUE_MAX_EVENTS,
    },
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    live: {
      bus: liveBus,
      redisStream: env.LIVE_REDIS_STREAM,
      // Redis keeps the window outside the process; in memory it costs the service's own heap.
      replayEvents: env.LIVE_REPLAY_EVENTS ?? (liveBus === 'redis' ? 100_000 : 10_000),
      maxStreamsPerKey: env.LIVE_MAX_STREAMS_PER_KEY,
      maxDurationMs: env.LIVE_MAX_DURATION_S * 1000,
      subscriberBuffer: env.LIVE_SUBSCRIBER_BUFFER,
      replayBytes: env.LIVE_REPLAY_BYTES ?? (liveBus === 'redis' ? 256 * 1024 * 1024 : 64 * 1024 * 1024),
      subscriberBufferBytes: env.LIVE_SUBSCRIBER_BUFFER_BYTES,
      maxResumeBytes: env.LIVE_REPLAY_MAX_RESUME_BYTES,
      keyCheckIntervalMs: env.LIVE_KEY_CHECK_S * 1000,
      ticketTtlMs: env.LIVE_TICKET_TTL_S * 1000,
    },
  };
}

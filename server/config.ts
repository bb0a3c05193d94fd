import { z } from 'zod';
import type { KeyKind, RateLimitPolicy } from './services/keys/schemas.ts';

// Every environment variable is declared once below: its type, bounds, default and a one-line
// description. The loader, the `Config` type and docs/configuration.md (`npm run docs:config`)
// all derive from these declarations.

declare module 'zod/v4/core' {
  interface GlobalMeta {
    /** For a variable without a fixed default: what leaving it unset means (the docs show it). */
    whenUnset?: string | undefined;
  }
}

const DAY_MS = 86_400_000;
const MiB = 1024 * 1024;
/** Unless RETENTION_MAX_DAYS says otherwise: a year (or RETENTION_DAYS, if longer). */
const DEFAULT_RETENTION_MAX_DAYS = 365;

/** Optional text: unset and empty (or blank) both mean unset. */
const optionalText = () =>
  z
    .string()
    .trim()
    .optional()
    .transform((value) => (value ? value : undefined));
const optionalUrl = (scheme: RegExp, message: string) => optionalText().refine((value) => value === undefined || scheme.test(value), message);

/** What an operator sets for a deployment: where it listens, its database, keys, Redis, retention. */
const SETTINGS = {
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000).describe('HTTP port'),
  HOST: z.string().min(1).default('0.0.0.0').describe('interface to listen on'),
  DATABASE_URL: optionalUrl(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://').describe(
    '`postgres://user:pass@host:5432/db`; unset or empty uses embedded PGlite',
  ),
  DATABASE_READ_URL: optionalUrl(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://').describe(
    '`postgres://` URL of a streaming replica for read procedures (lists, statistics); needs `DATABASE_URL`, where writes stay; bypassed for a few seconds when it does not answer',
  ),
  DATABASE_DISTRIBUTED: z
    .enum(['none', 'citus'])
    .default('none')
    .describe(
      '`citus`: `DATABASE_URL` is a Citus coordinator; migrations shard the tables by workspace and writes go one statement per workspace (docs/scaling.md)',
    ),
  PGLITE_DIR: z.string().min(1).default('./.data').describe('PGlite data directory (when `DATABASE_URL` is unset)'),
  TELEMETRY_ADMIN_KEY: optionalText()
    .refine((value) => value === undefined || (value.length >= 24 && value.length <= 512 && /^\S+$/.test(value)), 'must be 24-512 characters without spaces')
    .describe('admin key registered at start-up, 24-512 characters without spaces (else one is generated once)'),
  REDIS_URL: optionalUrl(/^rediss?:\/\//, 'must start with redis:// or rediss://').describe(
    '`redis://host:6379`: share rate-limit budgets and the live stream between instances',
  ),
  LIVE_BUS: z
    .enum(['auto', 'memory', 'redis'])
    .default('auto')
    .describe('where live events are published: `memory` (this process), `redis` (needs `REDIS_URL`); `auto`: `redis` when `REDIS_URL` is set'),
  LIVE_REDIS_STREAM: z.string().trim().min(1).max(200).default('telemetry:events').describe('the Redis stream live events are published to'),
  CORS_ORIGINS: z.string().trim().default('*').describe('`*` or comma-separated origins allowed to call from a browser'),
  LOG_LEVEL: z
    .enum(['debug', 'info', 'warn', 'error', 'silent'])
    .default('info')
    .describe('least severity logged; logs are JSON lines (errors on stderr, the rest on stdout)'),
  RETENTION_DAYS: z.coerce
    .number()
    .int()
    .min(1)
    .max(3650)
    .default(90)
    .describe('days events are kept, unless their workspace has its own retention (`admin.retention.set`)'),
  RETENTION_MAX_DAYS: z.coerce
    .number()
    .int()
    .min(1)
    .max(3650)
    .optional()
    .describe('longest retention any workspace may have (at least `RETENTION_DAYS`); partitions older than it always drop whole')
    .meta({ whenUnset: `\`${DEFAULT_RETENTION_MAX_DAYS}\` (or \`RETENTION_DAYS\` if longer)` }),
  RETENTION_INTERVAL_MINUTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_080)
    .default(60)
    .describe('how often the service runs the retention job; `0`: never (run `npm run retention`)'),
  ARCHIVE_DIR: optionalText().describe('archive expiring events here (gzipped NDJSON and a manifest) before they are deleted; unset: no archive'),
};

/** What an operator may tune: pools, timeouts, buffers, limits. The defaults suit one instance with a few cores. */
const TUNABLES = {
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(10).describe('Postgres connections per instance for writes, key lookups and admin'),
  DATABASE_READ_POOL_MAX: z.coerce
    .number()
    .int()
    .min(1)
    .max(500)
    .default(5)
    .describe(
      "Postgres connections per instance for reads (lists, statistics), apart from ingestion's; their `statement_timeout` is `PROCEDURE_TIMEOUT_MS` + 1 s",
    ),
  DATABASE_CONNECT_TIMEOUT_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(120)
    .default(5)
    .describe('give up connecting after this long (an outage is a fast 503, not a hang)'),
  INGEST_WRITE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(10_000)
    .describe('a group-commit write not committed by then answers its callers 503 (their retries dedupe)'),
  PROCEDURE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(15_000)
    .describe('deadline of every query and mutation (live streams and operator jobs excepted); past it a retryable 503, and its read statements are cancelled'),
  READY_CHECK_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2000).describe('`/readyz` counts a database slower than this as unreachable'),
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000).describe('a request must be fully received within this time'),
  HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000).describe('request headers must arrive within this time'),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(20_000).describe('longest graceful shutdown before exiting anyway'),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * MiB)
    .default(MiB)
    .describe('largest request body, also once decompressed'),
  MAX_INFLIGHT_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 ** 3)
    .default(32 * MiB)
    .describe(
      'request bodies held at once, counted by their `Content-Length` (or `MAX_BODY_BYTES` when chunked or compressed) until their answer; past it a request is answered 503 with `Retry-After`. At least `MAX_BODY_BYTES`',
    ),
  NODE_HEAP_LIMIT_MB: z.coerce
    .number()
    .int()
    .min(64)
    .max(1024 * 1024)
    .optional()
    .describe(
      "V8 old-space limit `npm start` gives Node (`--max-old-space-size`); a `--max-old-space-size` already in `NODE_OPTIONS` wins. V8 collects sooner under a lower limit, so the service's peak memory follows this",
    )
    .meta({ whenUnset: 'computed from `MAX_INFLIGHT_BODY_BYTES` and the in-memory replay window (`LIVE_REPLAY_BYTES`), with room to spare' }),
  MAX_BATCH_EVENTS: z.coerce.number().int().min(1).max(10_000).default(1000).describe('most events in one batch'),
  INGEST_LEAN_HANDLER: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true')
    .describe(
      '`telemetry.ingest`/`ingestBatch` (on `/trpc` and `/api`) answered by the lean handler, which calls the same router without the generic adapters; `false` sends them through the adapters',
    ),
  MAX_TRPC_BATCH_CALLS: z.coerce.number().int().min(1).max(1000).default(50).describe('most procedure calls in one batched tRPC request'),
  MAX_EVENT_AGE_DAYS: z.coerce.number().min(0).max(3650).default(30).describe('oldest accepted `createdAt`, in days before now'),
  MAX_FUTURE_SKEW_S: z.coerce
    .number()
    .min(0)
    .max(30 * 86_400)
    .default(600)
    .describe('furthest accepted `createdAt` in the future, in seconds'),
  PARTITION_DAYS_AHEAD: z.coerce.number().int().min(1).max(90).default(7).describe('daily partitions prepared ahead of time'),
  INGEST_FLUSH_MAX_EVENTS: z.coerce.number().int().min(1).max(100_000).default(2000).describe('most events per group-commit flush'),
  INGEST_FLUSH_DELAY_MS: z.coerce.number().min(0).max(1000).default(2).describe('how long the first queued event waits for company'),
  INGEST_CONCURRENT_FLUSHES: z.coerce.number().int().min(1).max(64).default(4).describe('flushes at once (capped by `DATABASE_POOL_MAX`; 1 on PGlite)'),
  INGEST_QUEUE_MAX_EVENTS: z.coerce.number().int().min(1).max(10_000_000).default(50_000).describe('events waiting before calls are refused with 503'),
  RATE_LIMIT_INGEST_EPS: z.coerce.number().int().min(1).default(2000).describe('default budget of one ingest key: events per second'),
  RATE_LIMIT_INGEST_BURST: z.coerce.number().int().min(0).default(10_000).describe('default budget of one ingest key: burst (events)'),
  RATE_LIMIT_READ_EPS: z.coerce.number().int().min(1).default(50).describe('default budget of one read key: calls per second'),
  RATE_LIMIT_READ_BURST: z.coerce.number().int().min(0).default(200).describe('default budget of one read key: burst (calls)'),
  RATE_LIMIT_ADMIN_EPS: z.coerce.number().int().min(1).default(20).describe('default budget of one admin key: calls per second'),
  RATE_LIMIT_ADMIN_BURST: z.coerce.number().int().min(0).default(100).describe('default budget of one admin key: burst (calls)'),
  RATE_LIMIT_WORKSPACE_INGEST_EPS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(5000)
    .describe('default ceiling shared by all ingest keys of one workspace: events per second'),
  RATE_LIMIT_WORKSPACE_INGEST_BURST: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .default(25_000)
    .describe('default ceiling shared by all ingest keys of one workspace: burst (events)'),
  RATE_LIMIT_WORKSPACE_READ_EPS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(100)
    .describe('default ceiling shared by all read keys of one workspace: calls per second'),
  RATE_LIMIT_WORKSPACE_READ_BURST: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .default(400)
    .describe('default ceiling shared by all read keys of one workspace: burst (calls)'),
  RATE_LIMIT_WORKSPACE_ADMIN_EPS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(40)
    .describe('default ceiling shared by all bound admin keys of one workspace: calls per second'),
  RATE_LIMIT_WORKSPACE_ADMIN_BURST: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .default(200)
    .describe('default ceiling shared by all bound admin keys of one workspace: burst (calls)'),
  LIVE_REPLAY_EVENTS: z.coerce
    .number()
    .int()
    .min(100)
    .max(10_000_000)
    .optional()
    .describe('newest events kept for resuming live streams')
    .meta({ whenUnset: '`10000` in memory, `100000` on Redis' }),
  // Byte bounds of live streams: at least 1 MiB, well above one event (metadata is at most 32 KB).
  LIVE_REPLAY_BYTES: z.coerce
    .number()
    .int()
    .min(MiB)
    .max(64 * 1024 ** 3)
    .optional()
    .describe('bytes the replay window may hold, events as JSON text (the oldest go first); in the heap for `memory`, in Redis for `redis`')
    .meta({ whenUnset: '64 MiB in memory, 256 MiB on Redis' }),
  LIVE_REPLAY_MAX_RESUME_BYTES: z.coerce
    .number()
    .int()
    .min(MiB)
    .max(64 * 1024 ** 3)
    .default(32 * MiB)
    .describe('most of the window one resume reads back; past it the stream goes on live'),
  LIVE_MAX_STREAMS_PER_KEY: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(5)
    .describe('concurrent live streams per key (across instances with Redis, else per instance)'),
  LIVE_MAX_DURATION_S: z.coerce.number().int().min(1).max(86_400).default(3600).describe('longest life of one stream before the client reconnects'),
  LIVE_SUBSCRIBER_BUFFER: z.coerce
    .number()
    .int()
    .min(10)
    .max(1_000_000)
    .default(10_000)
    .describe('events waiting for one slow subscriber before its stream is cut (it resumes with `lastEventId`)'),
  LIVE_SUBSCRIBER_BUFFER_BYTES: z.coerce
    .number()
    .int()
    .min(MiB)
    .max(1024 ** 3)
    .default(16 * MiB)
    .describe('bytes waiting for one slow subscriber before its stream is cut'),
  LIVE_KEY_CHECK_S: z.coerce
    .number()
    .int()
    .min(1)
    .max(3600)
    .default(30)
    .describe("how often open streams' keys are checked against the database again (behind the revocation notice)"),
  LIVE_TICKET_TTL_S: z.coerce
    .number()
    .int()
    .min(5)
    .max(600)
    .default(60)
    .describe('how long a stream ticket (`telemetry.liveTicket`) opens live streams after it is minted'),
};

/** Old space the service holds whatever its load: code, pools, caches, metrics (idle, the heap is about 40 MB). */
const HEAP_BASE_BYTES = 128 * MiB;
/**
 * Heap one byte of request body may cost while its call runs: the text, the parsed objects, the rows
 * and their statement JSON, the receipts. Ingest calls wait for their commit, so queued events
 * belong to bodies still counted as in flight (but for calls answered 503 after
 * INGEST_WRITE_TIMEOUT_MS, whose events may still wait, bounded by INGEST_QUEUE_MAX_EVENTS: the
 * headroom below is for them too).
 */
const HEAP_PER_BODY_BYTE = 4;
/** Heap one byte of the in-memory replay window costs: its JSON text as strings, and the entries holding them. */
const HEAP_PER_WINDOW_BYTE = 2;
/** Room for garbage between collections over the live data above, so load never reaches the limit with live data alone. */
const HEAP_GC_HEADROOM = 1.5;

/**
 * The V8 old-space limit (MB) for the bounds on what the service holds: V8 scales how much garbage
 * it lets pile up with this limit (under its default of several GB it let the heap grow several
 * times the live data), so a limit sized from the bounds keeps memory near what is live, while
 * leaving enough room that the bounded in-flight data never meets it.
 */
export function heapLimitForBounds({ maxInflightBodyBytes, heapReplayBytes }: { maxInflightBodyBytes: number; heapReplayBytes: number }): number {
  const live = HEAP_BASE_BYTES + maxInflightBodyBytes * HEAP_PER_BODY_BYTE + heapReplayBytes * HEAP_PER_WINDOW_BYTE;
  return Math.ceil((live * HEAP_GC_HEADROOM) / MiB);
}

/** Every variable by group, in the order docs/configuration.md lists them. */
export const CONFIG_VARIABLES = { set: SETTINGS, tune: TUNABLES };

/** One rate-limit policy per key kind (a new kind fails to compile until it has its own). */
const byKeyKind = (policies: Record<KeyKind, RateLimitPolicy>) => policies;

/** The environment, checked variable by variable, then across variables, then shaped into `Config`. */
const ConfigSchema = z
  .object({ ...SETTINGS, ...TUNABLES })
  .superRefine(
    (env, ctx) => {
      if (env.RETENTION_MAX_DAYS !== undefined && env.RETENTION_MAX_DAYS < env.RETENTION_DAYS) {
        ctx.addIssue({ code: 'custom', path: ['RETENTION_MAX_DAYS'], message: `must be at least RETENTION_DAYS (${env.RETENTION_DAYS})` });
      }
      if (env.LIVE_BUS === 'redis' && !env.REDIS_URL) ctx.addIssue({ code: 'custom', path: ['LIVE_BUS'], message: '"redis" needs REDIS_URL' });
      if (env.MAX_INFLIGHT_BODY_BYTES < env.MAX_BODY_BYTES) {
        ctx.addIssue({ code: 'custom', path: ['MAX_INFLIGHT_BODY_BYTES'], message: `must be at least MAX_BODY_BYTES (${env.MAX_BODY_BYTES})` });
      }
      if (env.DATABASE_READ_URL && !env.DATABASE_URL) {
        ctx.addIssue({ code: 'custom', path: ['DATABASE_READ_URL'], message: 'a read replica needs DATABASE_URL (its primary)' });
      }
      if (env.DATABASE_DISTRIBUTED === 'citus' && !env.DATABASE_URL) {
        ctx.addIssue({
          code: 'custom',
          path: ['DATABASE_DISTRIBUTED'],
          message: '"citus" needs DATABASE_URL (the Citus coordinator); the embedded database is one node',
        });
      }
    },
    // Only over values that are each valid: a bad one is named once, by its own check.
    { when: (payload) => payload.issues.length === 0 },
  )
  .transform((env) => {
    const liveBus: 'memory' | 'redis' = env.LIVE_BUS === 'auto' ? (env.REDIS_URL ? 'redis' : 'memory') : env.LIVE_BUS;
    const replayBytes = env.LIVE_REPLAY_BYTES ?? (liveBus === 'redis' ? 256 * MiB : 64 * MiB);
    const maxInflightBodyBytes = env.MAX_INFLIGHT_BODY_BYTES;
    return {
      port: env.PORT,
      host: env.HOST,
      databaseUrl: env.DATABASE_URL,
      /** `citus`: the database is a Citus coordinator and the tables are sharded by workspace. */
      databaseDistribution: env.DATABASE_DISTRIBUTED,
      /** A streaming replica for read procedures (lists, statistics, live replay excepted); unset: the primary. */
      databaseReadUrl: env.DATABASE_READ_URL,
      pgliteDir: env.PGLITE_DIR,
      databasePoolMax: env.DATABASE_POOL_MAX,
      /** Connections of the pool that reads (events.list/get, statistics) use, apart from writes (PostgreSQL only). */
      databaseReadPoolMax: env.DATABASE_READ_POOL_MAX,
      databaseConnectTimeoutSeconds: env.DATABASE_CONNECT_TIMEOUT_S,
      /** Longest wait for a group-commit write before its callers get a retryable 503 (the outcome is then unknown; retries dedupe). */
      ingestWriteTimeoutMs: env.INGEST_WRITE_TIMEOUT_MS,
      /** Longest a query or mutation may take before the caller gets a retryable 503 (live streams excepted). */
      procedureTimeoutMs: env.PROCEDURE_TIMEOUT_MS,
      /** Longest /readyz database check; slower counts as unreachable. */
      readyCheckTimeoutMs: env.READY_CHECK_TIMEOUT_MS,
      limits: {
        maxBatchEvents: env.MAX_BATCH_EVENTS,
        maxBodyBytes: env.MAX_BODY_BYTES,
        /** Bytes of request bodies held at once (declared size, or `maxBodyBytes` when chunked or compressed); past it 503. */
        maxInflightBodyBytes,
        maxEventAgeMs: env.MAX_EVENT_AGE_DAYS * DAY_MS,
        maxFutureSkewMs: env.MAX_FUTURE_SKEW_S * 1000,
      },
      partitionDaysAhead: env.PARTITION_DAYS_AHEAD,
      retention: {
        /** Days events are kept in workspaces without their own override (admin.retention.set). */
        defaultDays: env.RETENTION_DAYS,
        /** The longest retention any workspace gets (overrides above it are refused, stored ones clamped): partitions older than it are always dropped. */
        maxDays: env.RETENTION_MAX_DAYS ?? Math.max(env.RETENTION_DAYS, DEFAULT_RETENTION_MAX_DAYS),
        /** How often the service runs the retention job; 0: never (run `npm run retention` instead). */
        intervalMs: env.RETENTION_INTERVAL_MINUTES * 60_000,
        /** Where expiring events are archived (gzipped NDJSON) before they are deleted; unset: no archive. */
        archiveDir: env.ARCHIVE_DIR,
      },
      logLevel: env.LOG_LEVEL,
      adminKey: env.TELEMETRY_ADMIN_KEY,
      redisUrl: env.REDIS_URL,
      /** Default rate limits per key kind; a key's own limit overrides its kind's. */
      rateLimits: byKeyKind({
        ingest: { eventsPerSecond: env.RATE_LIMIT_INGEST_EPS, burst: env.RATE_LIMIT_INGEST_BURST },
        read: { eventsPerSecond: env.RATE_LIMIT_READ_EPS, burst: env.RATE_LIMIT_READ_BURST },
        admin: { eventsPerSecond: env.RATE_LIMIT_ADMIN_EPS, burst: env.RATE_LIMIT_ADMIN_BURST },
      }),
      /**
       * Default ceiling per workspace and key kind: all keys of that kind bound to one workspace share
       * this budget, whatever their own limits (an unbound admin overrides it per workspace).
       */
      workspaceRateLimits: byKeyKind({
        ingest: { eventsPerSecond: env.RATE_LIMIT_WORKSPACE_INGEST_EPS, burst: env.RATE_LIMIT_WORKSPACE_INGEST_BURST },
        read: { eventsPerSecond: env.RATE_LIMIT_WORKSPACE_READ_EPS, burst: env.RATE_LIMIT_WORKSPACE_READ_BURST },
        admin: { eventsPerSecond: env.RATE_LIMIT_WORKSPACE_ADMIN_EPS, burst: env.RATE_LIMIT_WORKSPACE_ADMIN_BURST },
      }),
      maxTrpcBatchCalls: env.MAX_TRPC_BATCH_CALLS,
      /** Ingest calls answered by the lean handler (server/http/ingest-hot-path) rather than the generic adapters; same router, same answers. */
      leanIngestHandler: env.INGEST_LEAN_HANDLER,
      /** `*` or the exact origins allowed to call from a browser. */
      corsOrigins:
        env.CORS_ORIGINS === '*'
          ? ('*' as const)
          : env.CORS_ORIGINS.split(',')
              .map((origin) => origin.trim())
              .filter(Boolean),
      requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
      headersTimeoutMs: env.HEADERS_TIMEOUT_MS,
      groupCommit: {
        maxFlushEvents: env.INGEST_FLUSH_MAX_EVENTS,
        maxDelayMs: env.INGEST_FLUSH_DELAY_MS,
        // Each flush holds a connection of the write pool: more would only wait for one.
        maxConcurrentFlushes: Math.min(env.INGEST_CONCURRENT_FLUSHES, env.DATABASE_POOL_MAX),
        maxQueuedEvents: env.INGEST_QUEUE_MAX_EVENTS,
      },
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      /** V8 old-space limit in MB for `npm start`: the operator's, or one the bounds on in-flight data leave room under. */
      heapLimitMb: env.NODE_HEAP_LIMIT_MB ?? heapLimitForBounds({ maxInflightBodyBytes, heapReplayBytes: liveBus === 'memory' ? replayBytes : 0 }),
      live: {
        /** Where committed events are published: Redis Streams when `redis`, this process only when `memory`. */
        bus: liveBus,
        redisStream: env.LIVE_REDIS_STREAM,
        // Redis keeps the window outside the process; in memory it costs the service's own heap.
        /** Most events kept for reconnecting subscribers (the window is also bounded by `replayBytes`). */
        replayEvents: env.LIVE_REPLAY_EVENTS ?? (liveBus === 'redis' ? 100_000 : 10_000),
        maxStreamsPerKey: env.LIVE_MAX_STREAMS_PER_KEY,
        maxDurationMs: env.LIVE_MAX_DURATION_S * 1000,
        /** Events one slow subscriber may have waiting before its stream is ended (it resumes with lastEventId). */
        subscriberBuffer: env.LIVE_SUBSCRIBER_BUFFER,
        /** Bytes of the replay window (events as JSON text): in this process's heap for `memory`, in Redis for `redis`. */
        replayBytes,
        /** The subscriber buffer's bound in bytes. */
        subscriberBufferBytes: env.LIVE_SUBSCRIBER_BUFFER_BYTES,
        /** Most bytes of the window one resume reads back; the rest of a longer gap is skipped. */
        maxResumeBytes: env.LIVE_REPLAY_MAX_RESUME_BYTES,
        /** How often open streams' keys are checked against the database, behind the revocation notices. */
        keyCheckIntervalMs: env.LIVE_KEY_CHECK_S * 1000,
        /** How long a stream ticket (telemetry.liveTicket) opens live streams after it is minted. */
        ticketTtlMs: env.LIVE_TICKET_TTL_S * 1000,
      },
    };
  });

/** The service's configuration, as every module receives it: derived from the variables above (an interface, so it keeps its name in messages). */
export interface Config extends z.output<typeof ConfigSchema> {}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration from environment variables; throws a readable ConfigError naming every bad value. */
export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  const result = ConfigSchema.safeParse(environment);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

export const telemetry = pgSchema('telemetry');

/**
 * The workspaces keys are created in and events belong to. Names are what people see (dashboard,
 * CLI, lists); they are unique whatever their case, so two workspaces are never told apart by case alone.
 */
export const workspaces = telemetry.table(
  'workspaces',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (table) => [uniqueIndex('workspaces_name_lower_idx').on(sql`lower(${table.name})`)],
);

/**
 * One row per stored event. The table is range-partitioned by `created_at` (daily partitions plus a
 * default partition; see docs/adr/0002-partitioned-events.md), so its primary key must include
 * `created_at`; it leads with `workspace_id`, the column Citus distributes it by
 * (docs/adr/0013-workspace-keys.md). Uniqueness of an id within its workspace is kept by `eventIds` below.
 */
export const events = telemetry.table(
  'events',
  {
    id: uuid('id').notNull(),
    workspaceId: uuid('workspace_id').notNull(),
    userId: uuid('user_id'),
    source: text('source').notNull(),
    eventType: text('event_type').notNull(),
    name: text('name').notNull(),
    targetType: text('target_type'),
    targetId: text('target_id'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (table) => [
    // Every unique key holds the distribution column (Citus). (created_at, id) after it loads faster
    // than (id, created_at): each workspace's new rows append at its right edge. The key also serves
    // every read, which names one workspace and a time range.
    primaryKey({ name: 'events_pkey', columns: [table.workspaceId, table.createdAt, table.id] }),
    index('events_type_name_idx').on(table.eventType, table.name),
  ],
);

/**
 * The idempotency ledger: one row per event id ever stored in a workspace, whatever partition the
 * event landed in. A unique index on a partitioned table must contain the partition key, so
 * `events` alone cannot refuse the same id arriving with another `created_at`; this unpartitioned
 * table can. Ids are unique per workspace (docs/adr/0013-workspace-keys.md).
 */
export const eventIds = telemetry.table(
  'event_ids',
  {
    workspaceId: uuid('workspace_id').notNull(),
    id: uuid('id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (table) => [primaryKey({ name: 'event_ids_pkey', columns: [table.workspaceId, table.id] })],
);

/**
 * API keys. Only a SHA-256 hash of each secret is stored: keys are 256-bit random strings, so a
 * fast hash is enough (no password-style stretching needed), and the hash is what requests are
 * looked up by.
 */
export const apiKeys = telemetry.table(
  'api_keys',
  {
    id: uuid('id').primaryKey(),
    kind: text('kind', { enum: ['ingest', 'read', 'admin'] }).notNull(),
    /** Null: an unbound admin key, or an ingest key created for all workspaces (its events name theirs). */
    workspaceId: uuid('workspace_id').references(() => workspaces.id),
    name: text('name'),
    /** The first characters of the key (kind prefix and a few more), to recognise it in a list. */
    displayPrefix: text('display_prefix').notNull(),
    secretHash: text('secret_hash').notNull(),
    rateLimitEventsPerSecond: integer('rate_limit_events_per_second'),
    rateLimitBurst: integer('rate_limit_burst'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (table) => [uniqueIndex('api_keys_secret_hash_idx').on(table.secretHash)],
);

/**
 * Per-minute event counts, written in the same transaction as the events they count, so they
 * never disagree. Dashboards' counts over time and top lists read these instead of raw events
 * whenever the filters allow.
 */
export const eventCountsMinute = telemetry.table(
  'event_counts_minute',
  {
    workspaceId: uuid('workspace_id').notNull(),
    minute: timestamp('minute', { withTimezone: true, mode: 'date' }).notNull(),
    eventType: text('event_type').notNull(),
    name: text('name').notNull(),
    source: text('source').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  (table) => [primaryKey({ name: 'event_counts_minute_pkey', columns: [table.workspaceId, table.minute, table.eventType, table.name, table.source] })],
);

/**
 * The same counts per UTC hour: a month of hourly buckets reads about 60 times fewer rows here than
 * in the per-minute table. Written in the same transaction as the events.
 */
export const eventCountsHour = telemetry.table(
  'event_counts_hour',
  {
    workspaceId: uuid('workspace_id').notNull(),
    hour: timestamp('hour', { withTimezone: true, mode: 'date' }).notNull(),
    eventType: text('event_type').notNull(),
    name: text('name').notNull(),
    source: text('source').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  (table) => [primaryKey({ name: 'event_counts_hour_pkey', columns: [table.workspaceId, table.hour, table.eventType, table.name, table.source] })],
);

/** One row per erasure request (GDPR right to erasure): who asked, when, and how many events went. */
export const erasureRequests = telemetry.table('erasure_requests', {
  id: uuid('id').primaryKey(),
  userId: uuid('user_id').notNull(),
  /** Null: every workspace. */
  workspaceId: uuid('workspace_id'),
  requestedByKeyId: uuid('requested_by_key_id').notNull(),
  requestedAt: timestamp('requested_at', { withTimezone: true, mode: 'date' }).notNull(),
  completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }).notNull(),
  deletedCount: bigint('deleted_count', { mode: 'number' }).notNull(),
});

/**
 * Per-workspace retention overrides (admin.retention.set) of existing workspaces (a foreign key);
 * workspaces without a row keep events for the default `RETENTION_DAYS`. Read by the retention job
 * (server/services/retention).
 */
export const workspaceRetention = telemetry.table(
  'workspace_retention',
  {
    workspaceId: uuid('workspace_id')
      .primaryKey()
      .references(() => workspaces.id),
    days: integer('days').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** The admin key that last set it; kept after the key is revoked, for the audit trail. */
    updatedByKeyId: uuid('updated_by_key_id'),
  },
  // The same bounds as the admin procedure's input, so a hand-written row cannot break the job.
  (_table) => [check('workspace_retention_days_range', sql`days between 1 and 3650`)],
);

/**
 * Per-workspace rate ceilings of existing workspaces (a foreign key), set by admin.workspaceLimits.set
 * with unbound admin keys only: every key of that kind bound to the workspace shares this budget.
 * Workspaces and kinds without a row get the configured default (RATE_LIMIT_WORKSPACE_*). Read by
 * server/services/limits.
 */
export const workspaceRateLimits = telemetry.table(
  'workspace_rate_limits',
  {
    workspaceId: uuid('workspace_id')
      .notNull()
      .references(() => workspaces.id),
    kind: text('kind', { enum: ['ingest', 'read', 'admin'] }).notNull(),
    eventsPerSecond: integer('events_per_second').notNull(),
    burst: integer('burst').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** The admin key that last set it; kept after the key is revoked, for the audit trail. */
    updatedByKeyId: uuid('updated_by_key_id'),
  },
  (table) => [
    primaryKey({ name: 'workspace_rate_limits_pkey', columns: [table.workspaceId, table.kind] }),
    // The same bounds as a key's own rate limit (RateLimitPolicy).
    check('workspace_rate_limits_range', sql`events_per_second between 1 and 1000000 and burst between 0 and 10000000`),
  ],
);

/**
 * Records foreign SDKs sent that were not stored (docs/ingest-adapters.md): those SDKs never read
 * per-event receipts, so what was refused is counted here per workspace, adapter and reason...
 */
export const adapterRejectionCounts = telemetry.table(
  'adapter_rejection_counts',
  {
    workspaceId: uuid('workspace_id')
      .notNull()
      .references(() => workspaces.id),
    adapter: text('adapter').notNull(),
    reason: text('reason').notNull(),
    refused: bigint('refused', { mode: 'number' }).notNull(),
    lastAt: timestamp('last_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (table) => [primaryKey({ name: 'adapter_rejection_counts_pkey', columns: [table.workspaceId, table.adapter, table.reason] })],
);

/** ...and the latest of them are kept with their message, trimmed to the last few per workspace. */
export const adapterRejections = telemetry.table(
  'adapter_rejections',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    workspaceId: uuid('workspace_id')
      .notNull()
      .references(() => workspaces.id),
    adapter: text('adapter').notNull(),
    reason: text('reason').notNull(),
    message: text('message').notNull(),
    path: text('path').notNull(),
    /** The record's position in its request; null when the whole request was refused. */
    recordIndex: integer('record_index'),
    requestId: text('request_id'),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (table) => [index('adapter_rejections_recent_idx').on(table.workspaceId, table.id.desc())],
);

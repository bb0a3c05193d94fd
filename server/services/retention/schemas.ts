import { z } from 'zod';
import { perRollup } from '../../../db/rollups.ts';

export const MIN_RETENTION_DAYS = 1;
export const MAX_RETENTION_DAYS = 3650;

const RetentionDays = z.number().int().min(MIN_RETENTION_DAYS).max(MAX_RETENTION_DAYS).describe('How many days events are kept (1-3650)');

export const SetRetentionInput = z.strictObject({
  workspaceId: z.uuid().describe('The workspace whose retention is set'),
  days: RetentionDays,
});
export type SetRetentionInput = z.infer<typeof SetRetentionInput>;

export const ClearRetentionInput = z.strictObject({
  workspaceId: z.uuid().describe('The workspace that goes back to the default retention'),
});
export type ClearRetentionInput = z.infer<typeof ClearRetentionInput>;

export const RetentionOverride = z.object({
  workspaceId: z.guid(),
  days: z.number().int(),
  updatedAt: z.date(),
  updatedByKeyId: z.guid().nullable().describe('The admin key that set it'),
});
export type RetentionOverride = z.infer<typeof RetentionOverride>;

export const ClearedRetention = z.object({
  workspaceId: z.guid(),
  cleared: z.boolean().describe('False when the workspace had no override'),
  days: z.number().int().describe('The retention now in effect for the workspace (the default)'),
});
export type ClearedRetention = z.infer<typeof ClearedRetention>;

export const RetentionPolicies = z.object({
  defaultDays: z.number().int().describe('RETENTION_DAYS: the retention of every workspace without an override'),
  maxDays: z.number().int().describe('RETENTION_MAX_DAYS: the longest retention an override may set'),
  overrides: z.array(RetentionOverride),
});
export type RetentionPolicies = z.infer<typeof RetentionPolicies>;

export const RunRetentionInput = z.strictObject({
  dryRun: z.boolean().default(false).describe('Compute the report without changing or archiving anything'),
});
export type RunRetentionInput = z.input<typeof RunRetentionInput>;

export const ArchiveSummary = z.object({
  manifest: z.string().describe('Path of the manifest (JSON) beside the archive'),
  file: z.string().describe('Path of the gzipped NDJSON file'),
  day: z.string().describe('UTC day of the archived events, YYYY-MM-DD'),
  partition: z.string().nullable().describe('The dropped partition, for a whole-day archive'),
  workspaceId: z.guid().nullable().optional().describe('For deleted rows: their workspace (null: events without one)'),
  rows: z.number().int(),
  sha256: z.string(),
});
export type ArchiveSummary = z.infer<typeof ArchiveSummary>;

export const RetentionReport = z.object({
  dryRun: z.boolean(),
  now: z.date().describe('The time cutoffs were computed from'),
  startedAt: z.date(),
  finishedAt: z.date(),
  defaultDays: z.number().int(),
  maxDays: z.number().int().describe('RETENTION_MAX_DAYS: no retention is longer, so partitions older than it always go'),
  defaultCutoff: z.date().describe('Events before this, in workspaces without an override, are expired'),
  longestDays: z.number().int().describe('The longest retention in effect (default and every override)'),
  partitionCutoff: z.date().describe('Daily partitions whose day ends at or before this are dropped whole'),
  cutoffs: z
    .array(
      z.object({
        workspaceId: z.guid(),
        days: z.number().int().describe('The retention applied'),
        cutoff: z.date(),
        requestedDays: z.number().int().optional().describe('The stored override, when it is above maxDays (it applies as maxDays)'),
      }),
    )
    .describe('Per-workspace overrides and the time before which their events are expired'),
  partitionsDropped: z.array(z.object({ name: z.string(), day: z.string(), rows: z.number().int() })),
  rowsDeleted: z
    .array(z.object({ workspaceId: z.guid().nullable(), rows: z.number().int() }))
    .describe('Rows deleted one by one (shorter retentions, default partition), per workspace; null: events without one'),
  ledgerRowsDeleted: z.number().int().describe('Ids forgotten by the idempotency ledger with their events'),
  rollupRowsDeleted: z.object(perRollup(() => z.number().int())),
  archives: z.array(ArchiveSummary).describe('Archives written (none in a dry run)'),
  partitionsCreated: z.array(z.string()).describe('Future partitions prepared by the same run (none in a dry run)'),
  errors: z
    .array(z.object({ target: z.string(), message: z.string() }))
    .describe('Targets left in place because archiving them failed; retried by the next run'),
  interrupted: z.boolean().describe('True when the service stopped the run before it finished (shutdown)'),
});
export type RetentionReport = z.infer<typeof RetentionReport>;

export const ARCHIVE_FORMAT = 'telemetry-events-ndjson';
export const ARCHIVE_FORMAT_VERSION = 1;

/** The columns of every archived line, in order, named as stored. */
export const ARCHIVE_COLUMNS = [
  'id',
  'workspace_id',
  'user_id',
  'source',
  'event_type',
  'name',
  'target_type',
  'target_id',
  'metadata',
  'created_at',
  'received_at',
] as const;

/** The JSON file written beside each archive; the loader refuses an archive that does not match it. */
export const ArchiveManifest = z.object({
  format: z.literal(ARCHIVE_FORMAT),
  formatVersion: z.literal(ARCHIVE_FORMAT_VERSION),
  kind: z.enum(['partition', 'rows']),
  /** The dropped partition (kind `partition`). */
  partition: z.string().nullable(),
  day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  /** For kind `rows`: the workspace, null for events without one; undefined for the default partition. */
  workspaceId: z.guid().nullable().optional(),
  /** The created_at range that was selected, [from, to), ISO-8601. */
  range: z.object({ from: z.string(), to: z.string() }),
  /** The gzipped NDJSON file, relative to the manifest's directory. */
  file: z.string().min(1),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  minCreatedAt: z.string().nullable(),
  maxCreatedAt: z.string().nullable(),
  columns: z.array(z.string()),
  archivedAt: z.string(),
});
export type ArchiveManifest = z.infer<typeof ArchiveManifest>;

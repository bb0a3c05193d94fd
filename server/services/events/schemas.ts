import { z } from 'zod';
import type { StringExcept } from './event-types.ts';
import { isStorableTime } from '../../../db/timestamps.ts';
import { findJsonProblems, isPlainObject, unstorableTextReason, type JsonObject, type JsonValue } from './json.ts';
import { parseIsoTime } from './precise-time.ts';
import { createEventValidator, withFastPath } from './event-validator.ts';

export const SOURCES = ['web', 'mobile', 'backend', 'cli', 'extension'] as const;
export const Source = z.enum(SOURCES).describe('Kind of application that sent the event');
export type Source = z.infer<typeof Source>;

/** Bounds on one event. Generous for real telemetry, small enough that no event is a burden. */
export const EVENT_LIMITS = {
  nameLength: 200,
  eventTypeLength: 100,
  targetTypeLength: 100,
  targetIdLength: 256,
  // maxValues: 32 KB of JSON holds at most about 16,400 values (`[0,0,…]`), so the visit budget
  // never refuses metadata within maxBytes; it stops a walk over a graph that only claims to be small.
  metadata: { maxBytes: 32 * 1024, maxDepth: 10, maxKeys: 500, maxArrayLength: 1000, maxValues: 20_000 },
} as const;

/** Text that PostgreSQL can store: bounded, no NUL, no unpaired surrogate. */
const StoredText = (maxLength: number) =>
  z
    .string()
    .min(1)
    .max(maxLength)
    .superRefine((value, ctx) => {
      const reason = unstorableTextReason(value);
      if (reason) ctx.addIssue({ code: 'custom', message: `Text ${reason}` });
    });

/** A dotted lower-case identifier: `error`, `custom`, `ui.interaction`, `perf.metric`, `checkout.step_completed`. */
export const EVENT_TYPE_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const EventTypeName = z
  .string()
  .max(EVENT_LIMITS.eventTypeLength)
  .regex(EVENT_TYPE_PATTERN, 'Must be a dotted lower-case identifier such as "ui.interaction"')
  .describe('Dotted lower-case identifier, e.g. ui.interaction, perf.metric, error, custom, checkout.completed');

// A custom check rather than z.record: it inspects the object as received (a record parser would
// copy it first, and copying a "__proto__" key changes the copy's prototype instead).
export const JsonObjectSchema = z
  .custom<JsonObject>(isPlainObject, { message: 'Must be a JSON object' })
  .meta({ type: 'object', additionalProperties: true, description: 'Free-form JSON object (at most 32 KB, depth 10, 500 keys)' })
  .superRefine((value, ctx) => {
    for (const problem of findJsonProblems(value, EVENT_LIMITS.metadata)) {
      ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    }
  });

// ---- Event types whose metadata has a known shape -------------------------------------------

export const PerfMetricMetadata = z.looseObject({
  value: z.number().finite(),
  unit: z.string().min(1).max(32).describe('e.g. ms, s, bytes, count, percent, score'),
});
export type PerfMetricMetadata = z.input<typeof PerfMetricMetadata> & { [key: string]: JsonValue };

/** Longest `message`, `stack` and `kind` of an error event's metadata. */
export const ERROR_METADATA_LIMITS = { message: 4096, stack: 16_384, kind: 200 } as const;

export const ErrorMetadata = z.looseObject({
  message: z.string().min(1).max(ERROR_METADATA_LIMITS.message),
  stack: z.string().max(ERROR_METADATA_LIMITS.stack).optional(),
  kind: z.string().max(ERROR_METADATA_LIMITS.kind).optional(),
});
export type ErrorMetadata = z.input<typeof ErrorMetadata> & { [key: string]: JsonValue };

/** Event types whose `metadata` must match a schema; every other type's metadata is free-form. */
export const TYPED_METADATA = {
  'perf.metric': PerfMetricMetadata,
  error: ErrorMetadata,
} as const;
export type TypedEventType = keyof typeof TYPED_METADATA;
function typedMetadataSchema(eventType: string): (typeof TYPED_METADATA)[TypedEventType] | undefined {
  return Object.hasOwn(TYPED_METADATA, eventType) ? TYPED_METADATA[eventType as TypedEventType] : undefined;
}

/** Any valid event type without a typed metadata shape (see event-types.ts for how this is spelled). */
export type FreeFormEventType = StringExcept<TypedEventType>;

// ---- The event ------------------------------------------------------------------------------

/** Every id an event carries. */
const Uuid = z.uuid();
/** A time as text: ISO 8601 with an offset (Z or ±hh:mm). */
const IsoDateTime = z.iso.datetime({ offset: true });

/**
 * A point in time: a Date, or an ISO-8601 string kept to the microsecond (see precise-time.ts).
 * Only times PostgreSQL reads back as sent (years 1 to 9999) pass, so no query or insert ever
 * fails on one.
 */
export const Timestamp = z
  .union([z.date(), IsoDateTime])
  .transform((value, ctx) => {
    if (value instanceof Date) return value;
    const parsed = parseIsoTime(value);
    if (parsed !== 'too_precise') return parsed;
    ctx.addIssue({ code: 'custom', message: 'More precise than a microsecond: send at most 6 fractional digits' });
    return z.NEVER;
  })
  .refine((value) => !Number.isNaN(value.getTime()), { message: 'Invalid date', abort: true })
  .refine(isStorableTime, 'Must be a time between the years 1 and 9999 (UTC)');

const EventObject = z.strictObject({
  id: Uuid.optional().describe('Client-chosen id (UUID) making retries idempotent; UUIDv7 recommended'),
  workspaceId: Uuid.nullish(),
  userId: Uuid.nullish(),
  source: Source,
  eventType: EventTypeName,
  name: StoredText(EVENT_LIMITS.nameLength).describe('Specific event identifier, e.g. button.click or LCP'),
  targetType: StoredText(EVENT_LIMITS.targetTypeLength).nullish(),
  targetId: StoredText(EVENT_LIMITS.targetIdLength).nullish(),
  metadata: JsonObjectSchema.nullish(),
  createdAt: Timestamp.optional().describe(
    "When the event happened (ISO 8601, kept to the microsecond; finer is refused); defaults to the id's UUIDv7 time, else the server clock",
  ),
});

const EventSchemaRuntime = EventObject.superRefine((event, ctx) => {
  const schema = typedMetadataSchema(event.eventType);
  if (!schema) return;
  const result = schema.safeParse(event.metadata);
  if (result.success) return;
  for (const issue of result.error.issues) {
    ctx.addIssue({ code: 'custom', path: ['metadata', ...issue.path], message: issue.message });
  }
}).meta({ id: 'EventInput', description: 'One telemetry event. `perf.metric` metadata needs numeric `value` and `unit`; `error` metadata needs `message`.' });

type EventCommonInput = Omit<z.input<typeof EventObject>, 'eventType' | 'metadata'>;

/** What a client sends: typed metadata for known event types, free-form JSON for the rest. */
export type EventInput = EventCommonInput &
  (
    | { eventType: 'perf.metric'; metadata: PerfMetricMetadata }
    | { eventType: 'error'; metadata: ErrorMetadata }
    | { eventType: FreeFormEventType; metadata?: JsonObject | null }
  );

/** A validated event, ready for storage. */
export type ValidEvent = z.output<typeof EventObject>;

/**
 * The runtime schema checks exactly what `EventInput` states; the cast only gives it that input
 * type, which zod cannot infer from a refinement.
 */
export const EventInput = EventSchemaRuntime as unknown as z.ZodType<ValidEvent, EventInput>;

// ---- Batches and receipts -------------------------------------------------------------------

/** Upper bound the schema itself enforces; the configured (smaller) limit is checked by the service. */
export const HARD_MAX_BATCH_EVENTS = 10_000;

/**
 * Items are validated one by one by the service, so one bad event never fails the others; the
 * cast keeps the typed client's `EventInput` for each item.
 */
const BatchItem = z.unknown().meta({ $ref: '#/components/schemas/EventInput' }) as unknown as z.ZodType<unknown, EventInput>;

export const IngestBatchInput = z.strictObject({
  events: z.array(BatchItem).min(1).max(HARD_MAX_BATCH_EVENTS),
  sentAt: Timestamp.optional().describe('Client clock when the batch was sent; corrects each createdAt for clock skew'),
});
export type IngestBatchInput = z.input<typeof IngestBatchInput>;

export const IngestResult = z.object({ id: z.uuid(), createdAt: z.date() });
export type IngestResult = z.infer<typeof IngestResult>;

/**
 * Why an event was not stored. `workspace_required`: a key not bound to a workspace sent an event
 * naming none; `unknown_workspace`: the event names a workspace that does not exist; `id_conflict`:
 * its id was stored in its workspace and expired (retention) while the call ran
 * (docs/adr/0013-workspace-keys.md).
 */
export const REJECTION_CODES = [
  'invalid_event',
  'created_at_out_of_range',
  'id_conflict',
  'workspace_forbidden',
  'workspace_required',
  'unknown_workspace',
] as const;
export const RejectionCode = z.enum(REJECTION_CODES);
export type RejectionCode = z.infer<typeof RejectionCode>;

/**
 * Receipts carry `createdAt` as an ISO-8601 string, not a Date: superjson's Date encoding of a
 * large batch's receipts cost more than validating and storing its events (docs/performance.md).
 */
const ReceiptTime = z.string().describe('When the event happened, ISO 8601 (UTC), with six fractional digits when it has microseconds');

export const EventReceipt = z.discriminatedUnion('status', [
  z.object({ index: z.number().int(), status: z.literal('accepted'), id: z.uuid(), createdAt: ReceiptTime }),
  z.object({ index: z.number().int(), status: z.literal('duplicate'), id: z.uuid(), createdAt: ReceiptTime }),
  z.object({
    index: z.number().int(),
    status: z.literal('rejected'),
    code: RejectionCode,
    message: z.string(),
    path: z.string().describe('Dotted path of the offending field inside the event, empty for the whole event'),
  }),
]);
export type EventReceipt = z.infer<typeof EventReceipt>;

export const IngestBatchResult = z.object({
  accepted: z.number().int(),
  duplicates: z.number().int(),
  rejected: z.number().int(),
  receipts: z.array(EventReceipt),
});
export type IngestBatchResult = z.infer<typeof IngestBatchResult>;

/**
 * The event schema specialised for speed (event-validator.ts): answers a valid event as the schema
 * would, or `undefined` when the schema must decide.
 */
export const validateEventFast = createEventValidator({
  sources: SOURCES,
  limits: EVENT_LIMITS,
  eventTypePattern: EVENT_TYPE_PATTERN,
  uuid: Uuid,
  dateTime: IsoDateTime,
  typedMetadataSchema,
});

/**
 * `EventInput` parsed through the fast validator first, for `.input()` of the single-event
 * procedure: the same types, OpenAPI document and refusals as `EventInput`.
 */
export const EventInputWithFastPath = withFastPath(EventInput, validateEventFast);

/** Parses one raw event; on failure gives the first problem with its dotted path. */
export type ParsedEvent = { ok: true; event: ValidEvent } | { ok: false; message: string; path: string };

export function parseEvent(raw: unknown): ParsedEvent {
  const event = validateEventFast(raw);
  if (event) return { ok: true, event };
  // Every refusal, and anything the fast validator is unsure of, is the schema's to answer.
  const result = EventSchemaRuntime.safeParse(raw);
  if (result.success) return { ok: true, event: result.data };
  const issue = result.error.issues[0];
  return { ok: false, message: issue?.message ?? 'Invalid event', path: formatPath(issue?.path ?? []) };
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.map((segment) => String(segment)).join('.');
}

// ---- Reading --------------------------------------------------------------------------------

export const StoredEvent = z.object({
  // Any 8-4-4-4-12 hex id: rows written by other tools need not follow RFC 9562's version bits.
  id: z.guid(),
  workspaceId: z.guid(),
  userId: z.guid().nullable(),
  source: Source,
  eventType: z.string(),
  name: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable().meta({ type: 'object', additionalProperties: true }) as unknown as z.ZodType<JsonObject | null>,
  // ISO-8601 strings, not Dates: a page of events carries hundreds of times, and superjson's Date
  // encoding cost more than reading the page.
  createdAt: z.string().describe('When the event happened, ISO 8601 (UTC), with six fractional digits when it has microseconds'),
  receivedAt: z.string().describe('When the service received it, ISO 8601 (UTC)'),
});
export type StoredEvent = z.infer<typeof StoredEvent>;

/** Every read procedure's input starts here: the scoping middleware resolves the workspace. */
export const WorkspaceScope = z.object({
  workspaceId: z.uuid().optional().describe('Workspace to read; keys bound to a workspace may omit it (and may name only their own)'),
});

export const GetEventInput = z.object({ id: z.uuid() });

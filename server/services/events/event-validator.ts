/**
 * A validator specialised for the event shape, for the ingest hot path. The Zod schema in
 * schemas.ts stays the definition of a valid event and the only source of error messages and
 * paths: this validator answers for an event only when it is sure Zod would accept it, with the
 * value Zod would give, and otherwise declines (`undefined`) so the caller asks Zod.
 *
 * Everything it checks against (limits, enums, patterns, the typed-metadata schemas) is handed in
 * by schemas.ts from its own definitions; tests/event-validator.property.test.ts holds the two
 * to the same answers.
 */
import type { z } from 'zod';
import type { EVENT_LIMITS, ValidEvent } from './schemas.ts';
import { isStorableTime } from '../../../db/timestamps.ts';
import { isJsonWithinBounds, isPlainObject, unstorableTextReason } from './json.ts';
import { PreciseDate, parseIsoTime } from './precise-time.ts';

export interface EventShapeDefinition {
  sources: readonly string[];
  limits: typeof EVENT_LIMITS;
  eventTypePattern: RegExp;
  /** The schema of every id field; its pattern is read from it. */
  uuid: z.ZodUUID;
  /** The schema a createdAt string must match; its pattern is read from it. */
  dateTime: z.ZodISODateTime;
  /** The schema an event type's metadata must match too, if it has one. */
  typedMetadataSchema: (eventType: string) => z.ZodType | undefined;
}

/** Answers a valid event as Zod would parse it, or `undefined` when Zod must decide. */
export type EventValidator = (raw: unknown) => ValidEvent | undefined;

// The event's keys in the schema's order, so the output is built like Zod builds it. Typed against
// ValidEvent: a field added to the schema fails the build here until it is checked below.
const EVENT_KEY_ORDER = {
  id: true,
  workspaceId: true,
  userId: true,
  source: true,
  eventType: true,
  name: true,
  targetType: true,
  targetId: true,
  metadata: true,
  createdAt: true,
} as const satisfies Record<keyof ValidEvent, true>;
const EVENT_KEYS: ReadonlySet<string> = new Set(Object.keys(EVENT_KEY_ORDER));

export function createEventValidator(definition: EventShapeDefinition): EventValidator {
  const { limits, eventTypePattern, typedMetadataSchema } = definition;
  const sources: ReadonlySet<unknown> = new Set(definition.sources);
  const uuidPattern = bareFormatPattern(definition.uuid);
  const dateTimePattern = bareFormatPattern(definition.dateTime);

  const isUuid = (value: unknown) => typeof value === 'string' && uuidPattern.test(value);
  // Zod measures a string's length in code points. Within the limit in UTF-16 units is within it
  // in code points too; a longer string (one with astral characters) is left to Zod.
  const isStoredText = (value: unknown, maxLength: number) =>
    typeof value === 'string' && value.length >= 1 && value.length <= maxLength && unstorableTextReason(value) === undefined;
  const isNullish = (value: unknown) => value === undefined || value === null;

  /** A createdAt as the Timestamp schema turns it into a Date, or undefined if Zod must decide. */
  function readTimestamp(value: unknown): Date | undefined {
    if (typeof value === 'string') {
      if (!dateTimePattern.test(value)) return undefined;
      const parsed = parseIsoTime(value);
      return parsed !== 'too_precise' && isStorableTime(parsed) ? parsed : undefined;
    }
    // Zod passes a Date through as it is; only Dates of this realm and kind are taken here.
    const proto = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : undefined;
    if ((proto === Date.prototype || proto === PreciseDate.prototype) && isStorableTime(value as Date)) return value as Date;
    return undefined;
  }

  return function validateEvent(raw) {
    if (!isPlainObject(raw)) return undefined;
    // Zod's strict object reads keys with for...in: mirror it so no key it would refuse slips by.
    for (const key in raw) if (!EVENT_KEYS.has(key)) return undefined;

    // Optional keys present with `undefined` stay present in Zod's output; absent keys stay absent.
    const event: Record<string, unknown> = {};
    if ('id' in raw) {
      if (raw.id !== undefined && !isUuid(raw.id)) return undefined;
      event.id = raw.id;
    }
    if ('workspaceId' in raw) {
      if (!isNullish(raw.workspaceId) && !isUuid(raw.workspaceId)) return undefined;
      event.workspaceId = raw.workspaceId;
    }
    if ('userId' in raw) {
      if (!isNullish(raw.userId) && !isUuid(raw.userId)) return undefined;
      event.userId = raw.userId;
    }
    if (!sources.has(raw.source)) return undefined;
    event.source = raw.source;
    const eventType = raw.eventType;
    if (typeof eventType !== 'string' || eventType.length > limits.eventTypeLength || !eventTypePattern.test(eventType)) return undefined;
    event.eventType = eventType;
    if (!isStoredText(raw.name, limits.nameLength)) return undefined;
    event.name = raw.name;
    if ('targetType' in raw) {
      if (!isNullish(raw.targetType) && !isStoredText(raw.targetType, limits.targetTypeLength)) return undefined;
      event.targetType = raw.targetType;
    }
    if ('targetId' in raw) {
      if (!isNullish(raw.targetId) && !isStoredText(raw.targetId, limits.targetIdLength)) return undefined;
      event.targetId = raw.targetId;
    }
    const metadata = raw.metadata;
    if ('metadata' in raw) {
      if (!isNullish(metadata) && !(isPlainObject(metadata) && isJsonWithinBounds(metadata, limits.metadata))) return undefined;
      event.metadata = metadata;
    }
    if ('createdAt' in raw) {
      if (raw.createdAt === undefined) {
        event.createdAt = undefined;
      } else {
        const createdAt = readTimestamp(raw.createdAt);
        if (!createdAt) return undefined;
        event.createdAt = createdAt;
      }
    }
    const metadataSchema = typedMetadataSchema(eventType);
    if (metadataSchema && !metadataSchema.safeParse(metadata).success) return undefined;
    return event as ValidEvent;
  };
}

/**
 * A copy of `schema` that asks `validate` first and runs the schema itself only when it declines.
 * For places where the schema object is what a framework takes (tRPC's `.input()`): it is the
 * same schema to the types and to the OpenAPI generator, and every refusal is the schema's own.
 * Zod routes parse, safeParse and parseAsync through `_zod.run`, so that is what is wrapped.
 */
export function withFastPath<Schema extends z.ZodType>(schema: Schema, validate: (raw: unknown) => z.output<Schema> | undefined): Schema {
  const fastFirst = schema.clone() as Schema;
  const zodRun = fastFirst._zod.run;
  fastFirst._zod.run = (payload, ctx) => {
    // Encoding (a codec run backward) and a value that already carries issues are Zod's alone.
    if (ctx.direction !== 'backward' && payload.issues.length === 0) {
      const value = validate(payload.value);
      if (value !== undefined) {
        payload.value = value;
        return payload;
      }
    }
    return zodRun(payload, ctx);
  };
  return fastFirst;
}

/**
 * The pattern of a Zod string format with no further checks. Anything more (a length, a
 * refinement) would be a rule this validator does not know, so it refuses to be built.
 */
function bareFormatPattern(schema: z.ZodUUID | z.ZodISODateTime): RegExp {
  const { pattern, checks } = schema._zod.def;
  if (!pattern || (checks && checks.length > 0)) throw new Error(`The event validator knows only a bare ${schema._zod.def.format} format`);
  return pattern;
}

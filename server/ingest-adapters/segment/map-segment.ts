import { z } from 'zod';
import { isPlainObject, type JsonObject, storableText, unstorableTextReason } from '../../services/events/json.ts';
import { correctedForSkew, parseIsoTime } from '../../services/events/precise-time.ts';
import { EVENT_LIMITS, type EventInput, type Source } from '../../services/events/schemas.ts';
import type { RefusedReceipt } from '../deliver.ts';
import { foreignUserId, ID_NAMESPACES, MAX_FOREIGN_USER_ID_LENGTH, uuidv5 } from '../deterministic-ids.ts';
import { clipText, fitMetadata } from '../metadata-budget.ts';

/** The calls of Segment's Tracking API. */
export const SEGMENT_MESSAGE_TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const;
export type SegmentMessageType = (typeof SEGMENT_MESSAGE_TYPES)[number];

/**
 * The event type each call becomes: a track call is the application's own event (`custom`, named
 * by `event`); views and the user-level calls get a type of their own, so they never mix with
 * track events that happen to share their name.
 */
export const SEGMENT_EVENT_TYPES = {
  track: 'custom',
  page: 'page.view',
  screen: 'screen.view',
  identify: 'identify',
  group: 'group',
  alias: 'alias',
} as const satisfies Record<SegmentMessageType, string>;

/** Segment's own bound on one message (its HTTP API refuses larger ones). */
export const MAX_MESSAGE_BYTES = 32 * 1024;

/** The message parts kept whole in metadata as long as they fit; past the limits, cut largest first. */
const SHRINKABLE_PARTS = ['context', 'properties', 'traits', 'integrations'] as const;

/** Library names (context.library.name) of Segment's mobile SDKs; anything else not a browser is a backend. */
const MOBILE_LIBRARY = /ios|android|react-native|swift|kotlin|flutter|xamarin/i;
const BROWSER_LIBRARY = /^analytics\.js$|analytics-next|^analytics-browser/i;

export class SegmentBodyError extends Error {}

/** What identifies one request, for the ids of messages that carry no messageId. */
export interface RequestIdentity {
  workspaceId: string;
  /** SHA-256 (hex) of the (inflated) request body: an identical retry has the same one. */
  bodyHash: string;
  /** When the request arrived, for correcting the sender's clock skew. */
  receivedAt: Date;
}

/** The messages of one request, with the batch-level fields each message inherits. */
export interface SegmentRequest {
  messages: unknown[];
  /** The batch's `sentAt`, for messages without their own. */
  sentAt: unknown;
  /** Batch-level `context` and `integrations`, under each message's own. */
  context: Record<string, unknown> | undefined;
  integrations: Record<string, unknown> | undefined;
}

export interface MappedMessages {
  events: EventInput[];
  /** The message each event came from. */
  recordIndexes: number[];
  refused: RefusedReceipt[];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The body as JSON, with every string (and key) PostgreSQL could not store made storable: a stray
 * NUL in a property must not cost the whole message. Throws SegmentBodyError when it is not JSON.
 */
export function parseSegmentBody(body: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    throw new SegmentBodyError('Malformed body: not valid UTF-8');
  }
  try {
    return JSON.parse(text, storableValue);
  } catch (error) {
    // The reviver walks the value recursively: running out of stack means JSON nested past reason.
    throw new SegmentBodyError(error instanceof RangeError ? 'Malformed JSON: nested too deeply' : 'Malformed JSON: the body is not valid JSON');
  }
}

function storableValue(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.every((key) => unstorableTextReason(key) === undefined)) return value;
  // fromEntries defines each key, so even a "__proto__" key stays a plain key.
  return Object.fromEntries(keys.map((key) => [storableText(key), value[key]]));
}

/** The write key the body carries (analytics-next and the HTTP API put it there). */
export function bodyWriteKey(parsed: unknown): string | undefined {
  if (!isPlainObject(parsed)) return undefined;
  const { writeKey } = parsed;
  return typeof writeKey === 'string' && writeKey !== '' ? writeKey : undefined;
}

/** `{ batch: [...] }` of `/v1/batch`, or the single message of `/v1/track` and the others. */
export function readSegmentRequest(parsed: unknown, single: SegmentMessageType | undefined, maxMessages: number): SegmentRequest {
  if (!isPlainObject(parsed)) throw new SegmentBodyError('The body must be a JSON object');
  if (single) return { messages: [{ ...parsed, type: single }], sentAt: undefined, context: undefined, integrations: undefined };
  const { batch } = parsed;
  if (!Array.isArray(batch)) throw new SegmentBodyError('A batch body needs "batch": an array of messages');
  if (batch.length > maxMessages) throw new SegmentBodyError(`A batch holds at most ${maxMessages} messages; this one has ${batch.length}`);
  return {
    messages: batch,
    sentAt: parsed['sentAt'],
    context: isPlainObject(parsed['context']) ? parsed['context'] : undefined,
    integrations: isPlainObject(parsed['integrations']) ? parsed['integrations'] : undefined,
  };
}

/** Each message mapped to an event, or refused on its own with why. */
export function mapSegmentMessages(request: SegmentRequest, identity: RequestIdentity): MappedMessages {
  const mapped: MappedMessages = { events: [], recordIndexes: [], refused: [] };
  request.messages.forEach((message, index) => {
    const result = mapMessage(message, index, request, identity);
    if ('refusal' in result) {
      mapped.refused.push({ index, status: 'rejected', code: 'invalid_event', message: result.refusal, path: result.path });
      return;
    }
    mapped.events.push(result.event);
    mapped.recordIndexes.push(index);
  });
  return mapped;
}

type MessageResult = { event: EventInput } | { refusal: string; path: string };

function mapMessage(raw: unknown, index: number, request: SegmentRequest, identity: RequestIdentity): MessageResult {
  if (!isPlainObject(raw)) return { refusal: 'A message must be a JSON object', path: '' };
  const size = Buffer.byteLength(JSON.stringify(raw));
  if (size > MAX_MESSAGE_BYTES) return { refusal: `A message holds at most ${MAX_MESSAGE_BYTES} bytes of JSON; this one has ${size}`, path: '' };
  const type = raw['type'];
  if (!isMessageType(type)) return { refusal: `type must be one of ${SEGMENT_MESSAGE_TYPES.join(', ')}`, path: 'type' };

  const userId = idText(raw['userId']);
  const anonymousId = idText(raw['anonymousId']);
  if (userId === undefined && anonymousId === undefined) return { refusal: 'Send a userId or an anonymousId (a string or a number)', path: 'userId' };
  const required = requiredFieldProblem(type, raw);
  if (required) return required;

  const time = eventTime(raw, request.sentAt, identity.receivedAt);
  if ('refusal' in time) return time;

  const context = { ...request.context, ...(isPlainObject(raw['context']) ? raw['context'] : {}) };
  const integrations = { ...request.integrations, ...(isPlainObject(raw['integrations']) ? raw['integrations'] : {}) };
  const messageId = idText(raw['messageId']);
  const metadata: JsonObject = {
    type,
    ...(messageId !== undefined && { messageId: clipText(messageId, MAX_FOREIGN_USER_ID_LENGTH) }),
    ...(userId !== undefined && { userId: clipText(userId, MAX_FOREIGN_USER_ID_LENGTH) }),
    ...(anonymousId !== undefined && { anonymousId: clipText(anonymousId, MAX_FOREIGN_USER_ID_LENGTH) }),
    ...textField(raw, 'event'),
    ...textField(raw, 'name'),
    ...textField(raw, 'category'),
    ...textField(raw, 'groupId'),
    ...textField(raw, 'previousId'),
    ...(isPlainObject(raw['properties']) && { properties: raw['properties'] as JsonObject }),
    ...(isPlainObject(raw['traits']) && { traits: raw['traits'] as JsonObject }),
    ...(Object.keys(context).length > 0 && { context: context as JsonObject }),
    ...(Object.keys(integrations).length > 0 && { integrations: integrations as JsonObject }),
    ...time.sent,
  };
  const user = foreignUserId(identity.workspaceId, userId) ?? foreignUserId(identity.workspaceId, anonymousId);
  return {
    event: {
      // messageId is Segment's dedup key, but any text: its name-based UUID in this workspace.
      id:
        messageId !== undefined
          ? uuidv5(ID_NAMESPACES.segmentMessage, `${identity.workspaceId}\n${messageId}`)
          : uuidv5(ID_NAMESPACES.segmentMessage, `${identity.workspaceId}\nbody\n${identity.bodyHash}\n${index}`),
      source: sourceOf(type, context),
      eventType: SEGMENT_EVENT_TYPES[type],
      name: eventName(type, raw),
      ...(user && { userId: user }),
      ...(time.createdAt && { createdAt: time.createdAt }),
      metadata: fitMetadata(metadata, SHRINKABLE_PARTS),
    },
  };
}

function isMessageType(value: unknown): value is SegmentMessageType {
  return typeof value === 'string' && (SEGMENT_MESSAGE_TYPES as readonly string[]).includes(value);
}

/** Segment ids (userId, anonymousId, messageId, groupId) are strings, or numbers some libraries send. */
function idText(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function textField(raw: Record<string, unknown>, field: string): JsonObject {
  const value = idText(raw[field]);
  return value === undefined ? {} : { [field]: clipText(value, EVENT_LIMITS.nameLength) };
}

/** What the Tracking API itself requires of each call beyond a user. */
function requiredFieldProblem(type: SegmentMessageType, raw: Record<string, unknown>): { refusal: string; path: string } | undefined {
  if (type === 'track' && idText(raw['event']) === undefined) return { refusal: 'A track call needs "event": the name of what happened', path: 'event' };
  if (type === 'group' && idText(raw['groupId']) === undefined) return { refusal: 'A group call needs "groupId"', path: 'groupId' };
  if (type === 'alias' && idText(raw['previousId']) === undefined) return { refusal: 'An alias call needs "previousId"', path: 'previousId' };
  return undefined;
}

function eventName(type: SegmentMessageType, raw: Record<string, unknown>): string {
  const named = type === 'track' ? idText(raw['event']) : type === 'page' || type === 'screen' ? idText(raw['name']) : undefined;
  return clipText(named ?? type, EVENT_LIMITS.nameLength);
}

/**
 * The library says what sent the message: Segment's browser library is `analytics.js`, its mobile
 * ones name their platform; server libraries (analytics-node, -python, -go...) are backends. Without
 * a library, a user agent or page means a browser and a screen call an app.
 */
function sourceOf(type: SegmentMessageType, context: Record<string, unknown>): Source {
  const library = isPlainObject(context['library']) ? context['library']['name'] : undefined;
  if (typeof library === 'string' && library !== '') {
    if (BROWSER_LIBRARY.test(library)) return 'web';
    if (MOBILE_LIBRARY.test(library)) return 'mobile';
    return 'backend';
  }
  if (type === 'screen') return 'mobile';
  if (isPlainObject(context['page']) || typeof context['userAgent'] === 'string') return 'web';
  return 'backend';
}

/** ISO 8601 with an offset, as every Segment library writes it. */
const IsoTime = z.iso.datetime({ offset: true });
/** Digits past the microsecond (Go writes nanoseconds): PostgreSQL keeps microseconds. */
const PAST_MICROSECONDS = /(\.\d{6})\d+/;

function readTime(value: unknown): Date | undefined | 'invalid' {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !IsoTime.safeParse(value).success) return 'invalid';
  const parsed = parseIsoTime(value.replace(PAST_MICROSECONDS, '$1'));
  return parsed === 'too_precise' || Number.isNaN(parsed.getTime()) ? 'invalid' : parsed;
}

type TimeResult = { createdAt: Date | undefined; sent: JsonObject } | { refusal: string; path: string };

/**
 * When the event happened: `timestamp` (else `originalTimestamp`), corrected for the sender's clock
 * skew with `sentAt` the way Segment and telemetry.ingestBatch do (`receivedAt - (sentAt - timestamp)`).
 * Without a time, the write path uses the time received.
 */
function eventTime(raw: Record<string, unknown>, batchSentAt: unknown, receivedAt: Date): TimeResult {
  const field = raw['timestamp'] !== undefined && raw['timestamp'] !== null ? 'timestamp' : 'originalTimestamp';
  const happened = readTime(raw[field]);
  if (happened === 'invalid') return { refusal: `${field} must be an ISO-8601 time with an offset`, path: field };
  const sentAtField = raw['sentAt'] !== undefined && raw['sentAt'] !== null ? raw['sentAt'] : batchSentAt;
  const sentAt = readTime(sentAtField);
  if (sentAt === 'invalid') return { refusal: 'sentAt must be an ISO-8601 time with an offset', path: 'sentAt' };
  const sent: JsonObject = {
    ...(typeof raw[field] === 'string' && { [field]: raw[field] as string }),
    ...(typeof sentAtField === 'string' && { sentAt: sentAtField }),
  };
  if (!happened) return { createdAt: undefined, sent };
  return { createdAt: sentAt ? correctedForSkew(happened, sentAt, receivedAt) : happened, sent };
}

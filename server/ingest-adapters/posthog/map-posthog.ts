import type { JsonObject, JsonValue } from '../../services/events/json.ts';
import { isPlainObject } from '../../services/events/json.ts';
import { correctedForSkew, parseIsoTime } from '../../services/events/precise-time.ts';
import { ERROR_METADATA_LIMITS, EVENT_LIMITS, type EventInput, type RejectionCode, type Source } from '../../services/events/schemas.ts';
import { isUuid } from '../../uuid.ts';
import { foreignUserId, ID_NAMESPACES, uuidv5 } from '../deterministic-ids.ts';
import { clipText, fitMetadata } from '../metadata-budget.ts';

/** Event types PostHog's own events become; every other event is `custom`, named by the event. */
export const POSTHOG_EVENT_TYPES = {
  $pageview: 'page.view',
  $pageleave: 'page.leave',
  $autocapture: 'ui.interaction',
  $identify: 'identify',
} as const;

/** The web vitals posthog-js reports in one `$web_vitals` event, each as `$web_vitals_<NAME>_value`. */
const WEB_VITALS = ['LCP', 'CLS', 'INP', 'FCP', 'TTFB'] as const;
/** Properties that carry the ingest key: never stored with the event. */
const KEY_PROPERTIES = ['token', 'api_key'] as const;
/** Longest event name and distinct id quoted in metadata: longer ones are mistakes, kept in part. */
const MAX_QUOTED_TEXT = 1024;
/** Metadata parts that may be cut to fit the limits, largest first. */
const SHRINKABLE = ['properties', '$set', '$set_once', 'vital'] as const;

/** What identifies one capture request, for ids and times derived from it. */
export interface CaptureContext {
  workspaceId: string;
  /** SHA-256 (hex) of the request's decoded JSON text: an identical retry has the same one. */
  bodyHash: string;
  /** The key the request was accepted with: a record naming another one is refused. */
  apiKey: string;
  /** The client's clock when it sent the request (`sent_at`), for clock-skew correction. */
  sentAt: Date | undefined;
  /** The server's clock when the request arrived. */
  receivedAt: Date;
}

export type MappedRecord = { ok: true; events: EventInput[] } | { ok: false; code: RejectionCode; message: string; path: string };

const refuse = (message: string, path = '', code: RejectionCode = 'invalid_event'): MappedRecord => ({ ok: false, code, message, path });

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** The key a record names for itself (`properties.token`, `api_key`, `token`), if any. */
export function recordKey(record: unknown): string | undefined {
  if (!isPlainObject(record)) return undefined;
  const properties = isPlainObject(record['properties']) ? record['properties'] : {};
  return stringOf(properties['token']) ?? stringOf(properties['api_key']) ?? stringOf(record['api_key']) ?? stringOf(record['token']);
}

/** `$lib` as PostHog's SDKs set it: `web` (posthog-js), `posthog-node`, `posthog-ios`… */
export function sourceOfLib(lib: unknown): Source {
  if (typeof lib !== 'string') return 'backend';
  const name = lib.toLowerCase();
  if (name === 'web' || name === 'posthog-js' || name === 'posthog-js-lite') return 'web';
  if (/ios|android|react-native|flutter|mobile/.test(name)) return 'mobile';
  return 'backend';
}

/** A time PostHog sends: ISO 8601 text (finer than a microsecond is cut), or milliseconds since the epoch. */
export function parsePosthogTime(value: unknown): Date | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim().replace(/(\.\d{6})\d+/, '$1');
  if (/^\d+$/.test(text)) return parsePosthogTime(Number(text));
  const parsed = parseIsoTime(text);
  if (parsed === 'too_precise' || Number.isNaN(parsed.getTime())) return undefined;
  return parsed;
}

/**
 * When the event happened, as PostHog's capture reads it: `timestamp` corrected for the skew
 * `sent_at` shows (`receivedAt - (sentAt - timestamp)`); without `sent_at`, `timestamp` as sent;
 * without a timestamp, `receivedAt - offset`; else undefined (the service's clock).
 */
function createdAtOf(record: Record<string, unknown>, context: CaptureContext): Date | 'invalid' | undefined {
  if (record['timestamp'] !== undefined && record['timestamp'] !== null) {
    const timestamp = parsePosthogTime(record['timestamp']);
    if (!timestamp) return 'invalid';
    return context.sentAt ? correctedForSkew(timestamp, context.sentAt, context.receivedAt) : timestamp;
  }
  const offset = record['offset'];
  if (typeof offset === 'number' && Number.isFinite(offset)) return new Date(context.receivedAt.getTime() - offset);
  return undefined;
}

// Object.fromEntries defines keys as data: a "__proto__" property stays a property, never a prototype.
function withoutKeys(properties: Record<string, unknown>): JsonObject {
  return Object.fromEntries(Object.entries(properties).filter(([key]) => !(KEY_PROPERTIES as readonly string[]).includes(key))) as JsonObject;
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function pathOfUrl(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** One stack frame of `$exception_list` as a JavaScript stack line. */
function frameLine(frame: unknown): string | undefined {
  if (!isPlainObject(frame)) return undefined;
  const place = [frame['filename'] ?? frame['abs_path'], frame['lineno'], frame['colno']].filter((part) => part !== undefined && part !== null).join(':');
  const fn = stringOf(frame['function']);
  if (!place && !fn) return undefined;
  return fn ? `    at ${fn}${place ? ` (${place})` : ''}` : `    at ${place}`;
}

/**
 * `message`, `stack` and `kind` of a `$exception`: from the first of `$exception_list` (its
 * frames come oldest call first, as Sentry orders them: the stack lists them innermost first),
 * else from the older `$exception_message` / `$exception_type` properties.
 */
function exceptionOf(properties: Record<string, unknown>): { message: string; stack?: string; kind?: string } {
  const list = properties['$exception_list'];
  const first = Array.isArray(list) && isPlainObject(list[0]) ? list[0] : undefined;
  const kind = stringOf(first?.['type']) ?? stringOf(properties['$exception_type']);
  const message = stringOf(first?.['value']) ?? stringOf(properties['$exception_message']) ?? kind ?? 'exception';
  const stacktrace = isPlainObject(first?.['stacktrace']) ? first['stacktrace'] : undefined;
  const frames = Array.isArray(stacktrace?.['frames']) ? stacktrace['frames'] : [];
  const lines = frames
    .map(frameLine)
    .filter((line): line is string => line !== undefined)
    .reverse();
  const rawStack = text(properties['$exception_stack_trace_raw']);
  const stack = lines.length > 0 ? `${kind ?? 'Error'}: ${message}\n${lines.join('\n')}` : rawStack;
  return {
    message: clipText(message, ERROR_METADATA_LIMITS.message),
    ...(stack && { stack: clipText(stack, ERROR_METADATA_LIMITS.stack) }),
    ...(kind && { kind: clipText(kind, ERROR_METADATA_LIMITS.kind) }),
  };
}

/** The tag of the element an `$autocapture` names first: from `$elements`, else from `$elements_chain` (`button.buy:attr__id="x";div…`). */
function clickedTag(properties: JsonObject): string | undefined {
  const elements = properties['$elements'];
  if (Array.isArray(elements) && isPlainObject(elements[0])) return stringOf(elements[0]['tag_name']);
  const chain = properties['$elements_chain'];
  return typeof chain === 'string' ? /^([a-zA-Z][\w-]*)/.exec(chain)?.[1] : undefined;
}

/** One `perf.metric` per web vital with a numeric value, like the service's own web-vitals events. */
function webVitalEvents(
  workspaceId: string,
  properties: JsonObject,
  id: string,
  common: Omit<EventInput, 'id' | 'eventType' | 'name' | 'metadata'>,
  base: JsonObject,
): EventInput[] {
  const rest: JsonObject = Object.fromEntries(Object.entries(properties).filter(([key]) => !key.startsWith('$web_vitals_')));
  const events: EventInput[] = [];
  for (const vital of WEB_VITALS) {
    const value = properties[`$web_vitals_${vital}_value`];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    const report = properties[`$web_vitals_${vital}_event`];
    const details = isPlainObject(report) ? report : {};
    const metadata = {
      ...base,
      properties: rest,
      value,
      unit: vital === 'CLS' ? 'score' : 'ms',
      ...(typeof details['rating'] === 'string' && { rating: details['rating'] }),
      ...(typeof details['delta'] === 'number' && { delta: details['delta'] }),
      ...(typeof details['id'] === 'string' && { metricId: details['id'] }),
      ...(typeof details['navigationType'] === 'string' && { navigationType: details['navigationType'] }),
      ...(details['attribution'] !== undefined && { vital: { attribution: details['attribution'] as JsonValue } }),
    };
    events.push({
      ...common,
      id: uuidv5(ID_NAMESPACES.posthogEvent, `${workspaceId}\n${id}\n${vital}`),
      eventType: 'perf.metric',
      name: vital,
      metadata: fitMetadata(metadata, SHRINKABLE) as typeof metadata,
    });
  }
  return events;
}

/**
 * One PostHog event (a `batch` item) as this service's events: usually one, one per vital for
 * `$web_vitals`; refused when it is not an event at all.
 */
export function mapPosthogRecord(record: unknown, index: number, context: CaptureContext): MappedRecord {
  if (!isPlainObject(record)) return refuse('Not an event object');
  const eventName = stringOf(record['event']);
  if (!eventName) return refuse('Missing "event" (the event name)', 'event');
  if (record['properties'] !== undefined && record['properties'] !== null && !isPlainObject(record['properties'])) {
    return refuse('"properties" must be an object', 'properties');
  }
  const ownKey = recordKey(record);
  if (ownKey !== undefined && ownKey !== context.apiKey)
    return refuse('This event names another API key than the request', 'properties.token', 'workspace_forbidden');
  const rawProperties = isPlainObject(record['properties']) ? record['properties'] : {};
  const properties = withoutKeys(rawProperties);

  const createdAt = createdAtOf(record, context);
  if (createdAt === 'invalid') return refuse('"timestamp" is not an ISO 8601 time or milliseconds since the epoch', 'timestamp');
  const rawDistinctId = record['distinct_id'] ?? rawProperties['distinct_id'] ?? rawProperties['$distinct_id'];
  const userId = foreignUserId(context.workspaceId, rawDistinctId);
  const id = isUuid(record['uuid'])
    ? record['uuid'].toLowerCase()
    : uuidv5(ID_NAMESPACES.posthogEvent, `${context.workspaceId}\n${context.bodyHash}\n${index}`);

  const common = {
    source: sourceOfLib(rawProperties['$lib'] ?? record['library']),
    ...(userId && { userId }),
    ...(createdAt && { createdAt }),
  };
  const base: JsonObject = {
    event: clipText(eventName, MAX_QUOTED_TEXT),
    ...(typeof rawDistinctId === 'string' && { distinctId: clipText(rawDistinctId, MAX_QUOTED_TEXT) }),
    ...(typeof rawDistinctId === 'number' && { distinctId: rawDistinctId }),
    ...(isPlainObject(record['$set']) && { $set: record['$set'] as JsonObject }),
    ...(isPlainObject(record['$set_once']) && { $set_once: record['$set_once'] as JsonObject }),
  };
  const name = (candidate: string | undefined) => clipText(candidate ?? eventName, EVENT_LIMITS.nameLength);

  if (eventName === '$web_vitals') {
    const events = webVitalEvents(context.workspaceId, properties, id, common, base);
    return events.length > 0 ? { ok: true, events } : refuse('$web_vitals carries no $web_vitals_<name>_value number', 'properties');
  }
  if (eventName === '$exception') {
    const exception = exceptionOf(properties);
    const metadata = { ...base, properties, ...exception };
    return {
      ok: true,
      events: [{ ...common, id, eventType: 'error', name: name(exception.kind), metadata: fitMetadata(metadata, [...SHRINKABLE, 'stack']) as typeof metadata }],
    };
  }
  const metadata = fitMetadata({ ...base, properties }, SHRINKABLE);
  switch (eventName) {
    case '$pageview':
    case '$pageleave':
      return {
        ok: true,
        events: [
          {
            ...common,
            id,
            eventType: POSTHOG_EVENT_TYPES[eventName],
            name: name(stringOf(properties['$pathname']) ?? pathOfUrl(properties['$current_url'])),
            metadata,
          },
        ],
      };
    case '$autocapture': {
      const tag = clickedTag(properties);
      return {
        ok: true,
        events: [
          {
            ...common,
            id,
            eventType: POSTHOG_EVENT_TYPES.$autocapture,
            name: name(stringOf(properties['$event_type'])),
            ...(tag && { targetType: clipText(tag, EVENT_LIMITS.targetTypeLength) }),
            metadata,
          },
        ],
      };
    }
    case '$identify':
      return { ok: true, events: [{ ...common, id, eventType: POSTHOG_EVENT_TYPES.$identify, name: name(undefined), metadata }] };
    default:
      return { ok: true, events: [{ ...common, id, eventType: 'custom', name: name(undefined), metadata }] };
  }
}

import type { EventInput, Source } from '../../services/events/schemas.ts';
import type { JsonObject, JsonValue } from '../../services/events/json.ts';
import { ERROR_METADATA_LIMITS, EVENT_LIMITS } from '../../services/events/schemas.ts';
import { foreignUserId, ID_NAMESPACES, uuidv5 } from '../deterministic-ids.ts';
import { clipText, fitMetadata } from '../metadata-budget.ts';
import type { Located, OtlpContext, OtlpLogRecord, OtlpSpan } from './otlp-decode.ts';

/** Event types OTLP records become (besides `error`); free-form types, named once here. */
export const OTLP_EVENT_TYPES = { log: 'log', span: 'perf.span' } as const;

/** SeverityNumber 17–20 is ERROR, 21–24 FATAL. */
const ERROR_SEVERITY = 17;
const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
const STATUS_CODES = ['unset', 'ok', 'error'] as const;
const SERVER_KIND = 2;
const ROUTE_ATTRIBUTES = ['http.route', 'http.request.method', 'http.response.status_code'] as const;

/** What identifies one export, for ids derived from it. */
export interface ExportIdentity {
  workspaceId: string;
  /** SHA-256 (hex) of the decoded request body: an identical retry has the same one. */
  bodyHash: string;
}

/** Nanoseconds since the epoch (decimal text) as ISO 8601 to the microsecond, which is what PostgreSQL keeps. */
export function isoFromUnixNano(nanos: string): string | undefined {
  const value = BigInt(nanos);
  if (value === 0n) return undefined;
  const micros = value / 1000n;
  const iso = new Date(Number(micros / 1000n)).toISOString();
  return `${iso.slice(0, -1)}${(micros % 1000n).toString().padStart(3, '0')}Z`;
}

function sourceOf(resource: JsonObject): Source {
  return resource['telemetry.sdk.language'] === 'webjs' ? 'web' : 'backend';
}

function eventName(...candidates: unknown[]): string {
  for (const candidate of candidates) {
    if (typeof candidate === 'string' && candidate.trim() !== '') return clipText(candidate, EVENT_LIMITS.nameLength);
  }
  return 'unnamed';
}

/** The user of `user.id` (or `enduser.id`), as every adapter maps foreign user ids; the raw value stays in the attributes. */
function userIdOf(attributes: JsonObject, workspaceId: string): string | undefined {
  return foreignUserId(workspaceId, attributes['user.id'] ?? attributes['enduser.id']);
}

/** Per scope (every record of one scope shares its context object): built once, not per record. */
const contextMetadataCache = new WeakMap<OtlpContext['scope'], JsonObject>();

function contextMetadata({ resource, scope }: OtlpContext): JsonObject {
  let metadata = contextMetadataCache.get(scope);
  if (!metadata) {
    const serviceName = resource['service.name'];
    metadata = {
      ...(typeof serviceName === 'string' && { serviceName }),
      resource,
      scope: { name: scope.name, version: scope.version, attributes: scope.attributes },
    };
    contextMetadataCache.set(scope, metadata);
  }
  return metadata;
}

function text(value: JsonValue | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** One event per log record: `log`, or `error` for an exception at ERROR severity or above. */
export function mapLogRecords(records: readonly Located<OtlpLogRecord>[], identity: ExportIdentity): EventInput[] {
  return records.map((located, index) => {
    const { record } = located;
    const time = record.timeUnixNano !== '0' ? record.timeUnixNano : record.observedTimeUnixNano;
    const createdAt = isoFromUnixNano(time);
    const userId = userIdOf(record.attributes, identity.workspaceId);
    const common: Pick<EventInput, 'id' | 'source' | 'name' | 'userId' | 'createdAt'> = {
      id: uuidv5(ID_NAMESPACES.otlpLog, `${identity.workspaceId}\n${identity.bodyHash}\n${index}`),
      source: sourceOf(located.resource),
      name: eventName(record.eventName, record.attributes['event.name'], located.scope.name, 'log'),
    };
    if (userId) common.userId = userId;
    if (createdAt) common.createdAt = createdAt;
    // Assigned field by field rather than spread: this runs once per record of every export.
    const metadata: JsonObject = {};
    if (record.body !== undefined) metadata['body'] = record.body;
    metadata['severityNumber'] = record.severityNumber;
    if (record.severityText) metadata['severityText'] = record.severityText;
    metadata['attributes'] = record.attributes;
    if (record.traceId) metadata['traceId'] = record.traceId;
    if (record.spanId) metadata['spanId'] = record.spanId;
    if (time !== '0') metadata['timeUnixNano'] = time;
    Object.assign(metadata, contextMetadata(located));
    const exceptionType = text(record.attributes['exception.type']);
    const exceptionMessage = text(record.attributes['exception.message']);
    if (record.severityNumber >= ERROR_SEVERITY && (exceptionType || exceptionMessage)) {
      const stack = text(record.attributes['exception.stacktrace']);
      const errorMetadata = {
        ...fitMetadata(metadata, ['resource', 'scope', 'attributes', 'body']),
        message: clipText(exceptionMessage || text(record.body) || exceptionType || 'exception', ERROR_METADATA_LIMITS.message),
        ...(stack && { stack: clipText(stack, ERROR_METADATA_LIMITS.stack) }),
        ...(exceptionType && { kind: clipText(exceptionType, ERROR_METADATA_LIMITS.kind) }),
      };
      return {
        ...common,
        eventType: 'error',
        metadata: fitMetadata(errorMetadata, ['resource', 'scope', 'attributes', 'body', 'stack']) as typeof errorMetadata,
      };
    }
    return { ...common, eventType: OTLP_EVENT_TYPES.log, metadata: fitMetadata(metadata, ['resource', 'scope', 'attributes', 'body']) };
  });
}

const ZERO_ID = /^0*$/;

/** One `perf.span` event per span: `value` is its duration in milliseconds, so percentiles and timeseries read it. */
export function mapSpans(spans: readonly Located<OtlpSpan>[], identity: ExportIdentity): EventInput[] {
  return spans.map((located, index) => {
    const { record: span } = located;
    // A span's natural identity is its trace and span id: the same span re-batched into another export stores once.
    const id =
      ZERO_ID.test(span.traceId) || ZERO_ID.test(span.spanId)
        ? uuidv5(ID_NAMESPACES.otlpSpan, `${identity.workspaceId}\nbody\n${identity.bodyHash}\n${index}`)
        : uuidv5(ID_NAMESPACES.otlpSpan, `${identity.workspaceId}\n${span.traceId}${span.spanId}`);
    const start = BigInt(span.startTimeUnixNano);
    const end = BigInt(span.endTimeUnixNano);
    const route = span.attributes['http.route'];
    const method = span.attributes['http.request.method'] ?? span.attributes['http.method'];
    const createdAt = isoFromUnixNano(span.startTimeUnixNano);
    const userId = userIdOf(span.attributes, identity.workspaceId);
    const routeAttributes: JsonObject = {};
    for (const key of ROUTE_ATTRIBUTES) {
      const value = span.attributes[key];
      if (value !== undefined) routeAttributes[key] = value;
    }
    const metadata: JsonObject = {
      value: end > start ? Number(end - start) / 1e6 : 0,
      unit: 'ms',
      traceId: span.traceId,
      spanId: span.spanId,
      ...(span.parentSpanId && { parentSpanId: span.parentSpanId }),
      kind: SPAN_KINDS[span.kind] ?? String(span.kind),
      status: { code: STATUS_CODES[span.status.code] ?? String(span.status.code), ...(span.status.message && { message: span.status.message }) },
      ...routeAttributes,
      attributes: span.attributes,
      startTimeUnixNano: span.startTimeUnixNano,
      ...contextMetadata(located),
    };
    return {
      id,
      source: sourceOf(located.resource),
      eventType: OTLP_EVENT_TYPES.span,
      name:
        span.kind === SERVER_KIND && typeof route === 'string' && route
          ? eventName(typeof method === 'string' ? `${method} ${route}` : route)
          : eventName(span.name, 'span'),
      ...(userId && { userId }),
      ...(createdAt && { createdAt }),
      metadata: fitMetadata(metadata, ['resource', 'scope', 'attributes']),
    };
  });
}

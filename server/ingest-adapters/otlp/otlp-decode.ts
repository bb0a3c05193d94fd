import { type JsonObject, type JsonValue, storableText } from '../../services/events/json.ts';
import { ProtobufError, ProtobufReader, WIRE } from './protobuf-wire.ts';

/**
 * OTLP export requests, protobuf or JSON, read into one plain shape so that one mapper serves both.
 * Attribute and body values become JSON (int64 beyond 2^53 as a decimal string, bytes as base64);
 * ids become lower-case hex; times stay nanoseconds as decimal strings.
 */

export interface OtlpContext {
  resource: JsonObject;
  scope: { name: string; version: string; attributes: JsonObject };
}

export interface OtlpLogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: JsonValue | undefined;
  attributes: JsonObject;
  traceId: string;
  spanId: string;
  eventName: string;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: JsonObject;
  status: { code: number; message: string };
}

export type Located<T> = OtlpContext & { record: T };

/** Bounds on what one request may hold, whatever its byte size (a varint-sized field costs 2 bytes). */
export const OTLP_DECODE_LIMITS = {
  /** Nesting of array and key-value list values inside one value. */
  maxValueDepth: 16,
  /** Records (log records or spans) in one request. */
  maxRecords: 10_000,
  /** Values of all kinds (attributes, list items) in one request. */
  maxValues: 200_000,
} as const;

/** The request could not be read: a 400 with this message. */
export class OtlpDecodeError extends Error {
  override readonly name = 'OtlpDecodeError';
}

interface Budget {
  records: number;
  values: number;
}

function newBudget(): Budget {
  return { records: 0, values: 0 };
}

function spendRecord(budget: Budget): void {
  budget.records += 1;
  if (budget.records > OTLP_DECODE_LIMITS.maxRecords)
    throw new OtlpDecodeError(`More than ${OTLP_DECODE_LIMITS.maxRecords} records in one request; send smaller batches`);
}

function spendValue(budget: Budget): void {
  budget.values += 1;
  if (budget.values > OTLP_DECODE_LIMITS.maxValues) throw new OtlpDecodeError(`More than ${OTLP_DECODE_LIMITS.maxValues} attribute values in one request`);
}

/** Sets a key as an own property, even "__proto__", without touching the prototype. */
function setKey(target: JsonObject, key: string, value: JsonValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function int64ToJson(value: bigint): JsonValue {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

function doubleToJson(value: number): JsonValue {
  return Number.isFinite(value) ? value : String(value);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

// ---- protobuf ---------------------------------------------------------------------------------

export function decodeLogsProtobuf(body: Uint8Array): Located<OtlpLogRecord>[] {
  return guarded(() => {
    const budget = newBudget();
    const out: Located<OtlpLogRecord>[] = [];
    forEachResourceScope(new ProtobufReader(body), budget, (context, reader) => {
      spendRecord(budget);
      out.push({ ...context, record: readLogRecord(reader, budget) });
    });
    return out;
  });
}

export function decodeTraceProtobuf(body: Uint8Array): Located<OtlpSpan>[] {
  return guarded(() => {
    const budget = newBudget();
    const out: Located<OtlpSpan>[] = [];
    forEachResourceScope(new ProtobufReader(body), budget, (context, reader) => {
      spendRecord(budget);
      out.push({ ...context, record: readSpan(reader, budget) });
    });
    return out;
  });
}

function guarded<T>(decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof ProtobufError) throw new OtlpDecodeError(`Malformed protobuf: ${error.message}`);
    throw error;
  }
}

/**
 * Export{Logs,Trace}ServiceRequest → Resource{Logs,Spans} (1) → Scope{Logs,Spans} (2) → records (2):
 * logs and traces share this layout, field numbers included.
 */
function forEachResourceScope(request: ProtobufReader, budget: Budget, onRecord: (context: OtlpContext, reader: ProtobufReader) => void): void {
  for (const resourceReader of messagesOf(request, 1)) {
    const resource = readContainer(resourceReader, (reader) => readResource(reader, budget), {});
    for (const scopeReader of resource.children) {
      const scope = readContainer(scopeReader, (reader) => readScope(reader, budget), { name: '', version: '', attributes: {} });
      for (const record of scope.children) onRecord({ resource: resource.header, scope: scope.header }, record);
    }
  }
}

/** Every message in field `field` of `reader`; other fields are skipped. */
function messagesOf(reader: ProtobufReader, field: number): ProtobufReader[] {
  const messages: ProtobufReader[] = [];
  while (!reader.done()) {
    const tag = reader.tag();
    if (tag.field === field) {
      reader.expect(tag.wireType, WIRE.lengthDelimited, tag.field);
      messages.push(reader.message());
    } else reader.skipField(tag.wireType);
  }
  return messages;
}

/** A Resource{Logs,Spans} or Scope{Logs,Spans}: its header message (field 1) and its children (field 2). */
function readContainer<T>(reader: ProtobufReader, readHeader: (reader: ProtobufReader) => T, empty: T): { header: T; children: ProtobufReader[] } {
  let header = empty;
  const children: ProtobufReader[] = [];
  while (!reader.done()) {
    const tag = reader.tag();
    if (tag.field === 1 || tag.field === 2) {
      reader.expect(tag.wireType, WIRE.lengthDelimited, tag.field);
      if (tag.field === 1) header = readHeader(reader.message());
      else children.push(reader.message());
    } else reader.skipField(tag.wireType);
  }
  return { header, children };
}

function readResource(reader: ProtobufReader, budget: Budget): JsonObject {
  const attributes: JsonObject = {};
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE.lengthDelimited) readKeyValue(reader.message(), attributes, budget, 0);
    else reader.skipField(wireType);
  }
  return attributes;
}

function readScope(reader: ProtobufReader, budget: Budget): OtlpContext['scope'] {
  const scope = { name: '', version: '', attributes: {} as JsonObject };
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE.lengthDelimited) scope.name = storableText(reader.string());
    else if (field === 2 && wireType === WIRE.lengthDelimited) scope.version = storableText(reader.string());
    else if (field === 3 && wireType === WIRE.lengthDelimited) readKeyValue(reader.message(), scope.attributes, budget, 0);
    else reader.skipField(wireType);
  }
  return scope;
}

function readLogRecord(reader: ProtobufReader, budget: Budget): OtlpLogRecord {
  const record: OtlpLogRecord = {
    timeUnixNano: '0',
    observedTimeUnixNano: '0',
    severityNumber: 0,
    severityText: '',
    body: undefined,
    attributes: {},
    traceId: '',
    spanId: '',
    eventName: '',
  };
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    switch (field) {
      case 1:
        reader.expect(wireType, WIRE.fixed64, field);
        record.timeUnixNano = reader.fixed64().toString();
        break;
      case 11:
        reader.expect(wireType, WIRE.fixed64, field);
        record.observedTimeUnixNano = reader.fixed64().toString();
        break;
      case 2:
        reader.expect(wireType, WIRE.varint, field);
        record.severityNumber = Number(BigInt.asIntN(32, reader.varint64()));
        break;
      case 3:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        record.severityText = storableText(reader.string());
        break;
      case 5:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        record.body = readAnyValue(reader.message(), budget, 0);
        break;
      case 6:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        readKeyValue(reader.message(), record.attributes, budget, 0);
        break;
      case 9:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        record.traceId = hex(reader.bytesField());
        break;
      case 10:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        record.spanId = hex(reader.bytesField());
        break;
      case 12:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        record.eventName = storableText(reader.string());
        break;
      default:
        reader.skipField(wireType);
    }
  }
  return record;
}

function readSpan(reader: ProtobufReader, budget: Budget): OtlpSpan {
  const span: OtlpSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    name: '',
    kind: 0,
    startTimeUnixNano: '0',
    endTimeUnixNano: '0',
    attributes: {},
    status: { code: 0, message: '' },
  };
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    switch (field) {
      case 1:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        span.traceId = hex(reader.bytesField());
        break;
      case 2:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        span.spanId = hex(reader.bytesField());
        break;
      case 4:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        span.parentSpanId = hex(reader.bytesField());
        break;
      case 5:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        span.name = storableText(reader.string());
        break;
      case 6:
        reader.expect(wireType, WIRE.varint, field);
        span.kind = Number(BigInt.asIntN(32, reader.varint64()));
        break;
      case 7:
        reader.expect(wireType, WIRE.fixed64, field);
        span.startTimeUnixNano = reader.fixed64().toString();
        break;
      case 8:
        reader.expect(wireType, WIRE.fixed64, field);
        span.endTimeUnixNano = reader.fixed64().toString();
        break;
      case 9:
        reader.expect(wireType, WIRE.lengthDelimited, field);
        readKeyValue(reader.message(), span.attributes, budget, 0);
        break;
      case 15: {
        reader.expect(wireType, WIRE.lengthDelimited, field);
        const status = reader.message();
        while (!status.done()) {
          const tag = status.tag();
          if (tag.field === 2 && tag.wireType === WIRE.lengthDelimited) span.status.message = storableText(status.string());
          else if (tag.field === 3 && tag.wireType === WIRE.varint) span.status.code = Number(BigInt.asIntN(32, status.varint64()));
          else status.skipField(tag.wireType);
        }
        break;
      }
      default:
        reader.skipField(wireType);
    }
  }
  return span;
}

/** KeyValue: 1 key, 2 value (AnyValue); added to `target`. */
function readKeyValue(reader: ProtobufReader, target: JsonObject, budget: Budget, depth: number): void {
  spendValue(budget);
  let key = '';
  let value: JsonValue = null;
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE.lengthDelimited) key = storableText(reader.string());
    else if (field === 2 && wireType === WIRE.lengthDelimited) value = readAnyValue(reader.message(), budget, depth);
    else reader.skipField(wireType);
  }
  setKey(target, key, value);
}

/** AnyValue (a oneof): nesting is bounded, so a deeply nested value is refused, never a stack overflow. */
function readAnyValue(reader: ProtobufReader, budget: Budget, depth: number): JsonValue {
  if (depth >= OTLP_DECODE_LIMITS.maxValueDepth) throw new OtlpDecodeError(`A value is nested deeper than ${OTLP_DECODE_LIMITS.maxValueDepth} levels`);
  spendValue(budget);
  let value: JsonValue = null;
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (field === 1 && wireType === WIRE.lengthDelimited) value = storableText(reader.string());
    else if (field === 2 && wireType === WIRE.varint) value = reader.varint64() !== 0n;
    else if (field === 3 && wireType === WIRE.varint) value = int64ToJson(reader.int64());
    else if (field === 4 && wireType === WIRE.fixed64) value = doubleToJson(reader.double());
    else if (field === 5 && wireType === WIRE.lengthDelimited) {
      const list = reader.message();
      const items: JsonValue[] = [];
      while (!list.done()) {
        const tag = list.tag();
        if (tag.field === 1 && tag.wireType === WIRE.lengthDelimited) items.push(readAnyValue(list.message(), budget, depth + 1));
        else list.skipField(tag.wireType);
      }
      value = items;
    } else if (field === 6 && wireType === WIRE.lengthDelimited) {
      const list = reader.message();
      const object: JsonObject = {};
      while (!list.done()) {
        const tag = list.tag();
        if (tag.field === 1 && tag.wireType === WIRE.lengthDelimited) readKeyValue(list.message(), object, budget, depth + 1);
        else list.skipField(tag.wireType);
      }
      value = object;
    } else if (field === 7 && wireType === WIRE.lengthDelimited) value = Buffer.from(reader.bytesField()).toString('base64');
    else reader.skipField(wireType);
  }
  return value;
}

// ---- JSON -------------------------------------------------------------------------------------

/** Field names in lowerCamelCase (OTLP/JSON) or snake_case (what proto3 JSON parsers also accept). */
function pick(object: Record<string, unknown>, camel: string): unknown {
  if (Object.hasOwn(object, camel)) return object[camel];
  const snake = camel.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
  return Object.hasOwn(object, snake) ? object[snake] : undefined;
}

function asObject(value: unknown, path: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new OtlpDecodeError(`${path} must be an object`);
  return value as Record<string, unknown>;
}

function asArray(value: unknown, path: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new OtlpDecodeError(`${path} must be an array`);
  return value;
}

function asString(value: unknown, path: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new OtlpDecodeError(`${path} must be a string`);
  return storableText(value);
}

/** int64/fixed64 as a JSON number or a decimal string (both occur in the wild). */
function asInt64(value: unknown, path: string): bigint {
  if (value === undefined || value === null) return 0n;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) return BigInt(value);
  throw new OtlpDecodeError(`${path} must be an integer (a number or a decimal string)`);
}

function asUnixNano(value: unknown, path: string): string {
  const nanos = asInt64(value, path);
  if (nanos < 0n || nanos > 0xffffffffffffffffn) throw new OtlpDecodeError(`${path} must be a non-negative 64-bit integer`);
  return nanos.toString();
}

function asEnum(value: unknown, path: string): number {
  const number = asInt64(value, path);
  if (number < -(2n ** 31n) || number >= 2n ** 31n) throw new OtlpDecodeError(`${path} is out of range`);
  return Number(number);
}

/** Trace and span ids are hex in OTLP/JSON (not base64, unlike other bytes fields). */
function asHexId(value: unknown, path: string): string {
  const text = asString(value, path);
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text) || text.length > 64) throw new OtlpDecodeError(`${path} must be a hex string`);
  return text.toLowerCase();
}

function jsonAttributes(value: unknown, path: string, budget: Budget, depth: number): JsonObject {
  const attributes: JsonObject = {};
  asArray(value, path).forEach((item, index) => {
    spendValue(budget);
    const keyValue = asObject(item, `${path}.${index}`);
    setKey(attributes, asString(keyValue['key'], `${path}.${index}.key`), jsonAnyValue(keyValue['value'], `${path}.${index}.value`, budget, depth));
  });
  return attributes;
}

function jsonAnyValue(value: unknown, path: string, budget: Budget, depth: number): JsonValue {
  if (depth >= OTLP_DECODE_LIMITS.maxValueDepth) throw new OtlpDecodeError(`${path}: a value is nested deeper than ${OTLP_DECODE_LIMITS.maxValueDepth} levels`);
  spendValue(budget);
  const any = asObject(value, path);
  const string = pick(any, 'stringValue');
  if (string !== undefined) return asString(string, `${path}.stringValue`);
  const bool = pick(any, 'boolValue');
  if (bool !== undefined) {
    if (typeof bool !== 'boolean') throw new OtlpDecodeError(`${path}.boolValue must be a boolean`);
    return bool;
  }
  const int = pick(any, 'intValue');
  if (int !== undefined) return int64ToJson(BigInt.asIntN(64, asInt64(int, `${path}.intValue`)));
  const double = pick(any, 'doubleValue');
  if (double !== undefined) {
    if (typeof double === 'number') return double;
    if (double === 'NaN' || double === 'Infinity' || double === '-Infinity') return double;
    throw new OtlpDecodeError(`${path}.doubleValue must be a number`);
  }
  const array = pick(any, 'arrayValue');
  if (array !== undefined) {
    return asArray(asObject(array, `${path}.arrayValue`)['values'], `${path}.arrayValue.values`).map((item, index) =>
      jsonAnyValue(item, `${path}.arrayValue.values.${index}`, budget, depth + 1),
    );
  }
  const kvlist = pick(any, 'kvlistValue');
  if (kvlist !== undefined) return jsonAttributes(asObject(kvlist, `${path}.kvlistValue`)['values'], `${path}.kvlistValue.values`, budget, depth + 1);
  const bytes = pick(any, 'bytesValue');
  if (bytes !== undefined) return asString(bytes, `${path}.bytesValue`);
  return null;
}

function parseJson(body: Uint8Array): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new OtlpDecodeError('Malformed JSON: the body is not valid UTF-8 JSON');
  }
  return asObject(parsed, '(root)');
}

function forEachJsonResourceScope(
  root: Record<string, unknown>,
  names: { resources: string; scopes: string; records: string },
  budget: Budget,
  onRecord: (context: OtlpContext, record: Record<string, unknown>, path: string) => void,
): void {
  asArray(pick(root, names.resources), names.resources).forEach((item, r) => {
    const resourcePath = `${names.resources}.${r}`;
    const resourceItem = asObject(item, resourcePath);
    const resource = jsonAttributes(
      asObject(pick(resourceItem, 'resource'), `${resourcePath}.resource`)['attributes'],
      `${resourcePath}.resource.attributes`,
      budget,
      0,
    );
    asArray(pick(resourceItem, names.scopes), `${resourcePath}.${names.scopes}`).forEach((scopeItemRaw, s) => {
      const scopePath = `${resourcePath}.${names.scopes}.${s}`;
      const scopeItem = asObject(scopeItemRaw, scopePath);
      const scopeRaw = asObject(pick(scopeItem, 'scope'), `${scopePath}.scope`);
      const scope = {
        name: asString(scopeRaw['name'], `${scopePath}.scope.name`),
        version: asString(scopeRaw['version'], `${scopePath}.scope.version`),
        attributes: jsonAttributes(scopeRaw['attributes'], `${scopePath}.scope.attributes`, budget, 0),
      };
      asArray(pick(scopeItem, names.records), `${scopePath}.${names.records}`).forEach((record, i) => {
        spendRecord(budget);
        const path = `${scopePath}.${names.records}.${i}`;
        onRecord({ resource, scope }, asObject(record, path), path);
      });
    });
  });
}

export function decodeLogsJson(body: Uint8Array): Located<OtlpLogRecord>[] {
  const budget = newBudget();
  const out: Located<OtlpLogRecord>[] = [];
  forEachJsonResourceScope(parseJson(body), { resources: 'resourceLogs', scopes: 'scopeLogs', records: 'logRecords' }, budget, (context, raw, path) => {
    const bodyValue = pick(raw, 'body');
    out.push({
      ...context,
      record: {
        timeUnixNano: asUnixNano(pick(raw, 'timeUnixNano'), `${path}.timeUnixNano`),
        observedTimeUnixNano: asUnixNano(pick(raw, 'observedTimeUnixNano'), `${path}.observedTimeUnixNano`),
        severityNumber: asEnum(pick(raw, 'severityNumber'), `${path}.severityNumber`),
        severityText: asString(pick(raw, 'severityText'), `${path}.severityText`),
        body: bodyValue === undefined || bodyValue === null ? undefined : jsonAnyValue(bodyValue, `${path}.body`, budget, 0),
        attributes: jsonAttributes(pick(raw, 'attributes'), `${path}.attributes`, budget, 0),
        traceId: asHexId(pick(raw, 'traceId'), `${path}.traceId`),
        spanId: asHexId(pick(raw, 'spanId'), `${path}.spanId`),
        eventName: asString(pick(raw, 'eventName'), `${path}.eventName`),
      },
    });
  });
  return out;
}

export function decodeTraceJson(body: Uint8Array): Located<OtlpSpan>[] {
  const budget = newBudget();
  const out: Located<OtlpSpan>[] = [];
  forEachJsonResourceScope(parseJson(body), { resources: 'resourceSpans', scopes: 'scopeSpans', records: 'spans' }, budget, (context, raw, path) => {
    const status = asObject(pick(raw, 'status'), `${path}.status`);
    out.push({
      ...context,
      record: {
        traceId: asHexId(pick(raw, 'traceId'), `${path}.traceId`),
        spanId: asHexId(pick(raw, 'spanId'), `${path}.spanId`),
        parentSpanId: asHexId(pick(raw, 'parentSpanId'), `${path}.parentSpanId`),
        name: asString(pick(raw, 'name'), `${path}.name`),
        kind: asEnum(pick(raw, 'kind'), `${path}.kind`),
        startTimeUnixNano: asUnixNano(pick(raw, 'startTimeUnixNano'), `${path}.startTimeUnixNano`),
        endTimeUnixNano: asUnixNano(pick(raw, 'endTimeUnixNano'), `${path}.endTimeUnixNano`),
        attributes: jsonAttributes(pick(raw, 'attributes'), `${path}.attributes`, budget, 0),
        status: { code: asEnum(status['code'], `${path}.status.code`), message: asString(status['message'], `${path}.status.message`) },
      },
    });
  });
  return out;
}

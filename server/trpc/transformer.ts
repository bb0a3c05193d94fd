import { TRPCError } from '@trpc/server';
import superjson, { type SuperJSONResult } from 'superjson';
import { DomainError } from '../errors.ts';

/**
 * superjson on the tRPC face, with procedure input held to plain data:
 *
 * - Shared references (`meta.referentialEqualities`) are refused before superjson rebuilds any
 *   graph: a few hundred bytes of them can declare a value with billions of paths. The project's
 *   clients never send them (client/transformer.ts), since every value they send is a tree.
 * - Value annotations may only restore what procedure inputs hold: Dates, `undefined` and the
 *   numbers JSON cannot spell. The rest (BigInt, Map, Set, Error, classes, ...) no input accepts,
 *   and some cost real work to build.
 * - The input is deserialized in place, never copied: superjson's copy silently drops a
 *   `__proto__` key, which would store the rest of an object the plain-JSON face refuses. The body
 *   was parsed for this request alone, so nothing else sees the change.
 *
 * The ingest shapes skip superjson's generic walks, with the same results: plain JSON input (no
 * `meta`) is used as it is; the Dates the typed client annotates on events (`createdAt`,
 * `sentAt`, `events.N.createdAt`) are restored directly. Output that is plain JSON, or an object
 * whose own Dates are its only annotations (a receipt), gets its envelope without superjson's copy.
 */
const INPUT_VALUE_TYPES: ReadonlySet<unknown> = new Set(['Date', 'undefined', 'number']);

/** Most annotation nodes one input may carry; each costs a little work to apply. */
export const MAX_INPUT_ANNOTATIONS = 10_000;

const MAX_PATH_LENGTH = 200;

function refuse(message: string, path = ''): never {
  throw new TRPCError({ code: 'BAD_REQUEST', message, cause: new DomainError('invalid_input', message, { path }) });
}

/** A superjson path (`events.0.metadata`, dots escaped) as the dotted path error bodies use. */
function readablePath(value: unknown): string {
  if (typeof value !== 'string') return '';
  return value.slice(0, MAX_PATH_LENGTH).replace(/\\(.)/g, '$1');
}

/** Where the first declared shared reference sits, for the error. */
function firstReferencePath(annotations: unknown): string {
  if (Array.isArray(annotations)) {
    const [rootCopies, others] = annotations as [unknown, unknown];
    if (Array.isArray(rootCopies) && rootCopies.length > 0) return readablePath(rootCopies[0]);
    return firstReferencePath(others);
  }
  if (typeof annotations === 'object' && annotations !== null) {
    for (const [original, copies] of Object.entries(annotations)) {
      return readablePath(Array.isArray(copies) && copies.length > 0 ? copies[0] : original);
    }
  }
  return '';
}

/** Walks the value annotations (iteratively, with a budget) and refuses any type no input holds. */
function checkValueAnnotations(values: unknown): void {
  const pending: unknown[] = [values];
  for (let visited = 0; pending.length > 0; visited += 1) {
    if (visited >= MAX_INPUT_ANNOTATIONS) refuse(`Input carries more than ${MAX_INPUT_ANNOTATIONS} superjson annotations`);
    const node = pending.pop();
    if (Array.isArray(node)) {
      const [type, children] = node as [unknown, unknown];
      if (!INPUT_VALUE_TYPES.has(type)) refuse('Procedure input may carry only JSON, Dates and undefined (superjson annotation refused)');
      if (children !== undefined) pending.push(children);
    } else if (typeof node === 'object' && node !== null) {
      for (const child of Object.values(node)) pending.push(child);
    } else {
      refuse('Malformed superjson input');
    }
  }
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Where the typed client puts Dates in ingest input: the event's or batch's own time, or an event's in a batch. */
const ROOT_DATE_KEYS: ReadonlySet<string> = new Set(['createdAt', 'sentAt']);
const EVENT_DATE_KEY = /^events\.(0|[1-9]\d{0,8})\.createdAt$/;

/**
 * Restores the Dates of ingest input when those are all the annotations carry, as superjson would
 * (`new Date(value)` in place), without parsing a path string per event. Answers false, having
 * changed nothing, for any other shape: superjson then handles it the generic way.
 */
function restoreIngestDates(json: unknown, values: unknown): boolean {
  if (!isPlainRecord(values) || !isPlainRecord(json)) return false;
  const paths = Object.keys(values);
  if (paths.length >= MAX_INPUT_ANNOTATIONS) return false;
  const events = json['events'];
  const targets: Record<string, unknown>[] = [];
  const keys: string[] = [];
  for (const path of paths) {
    const annotation = values[path];
    if (!Array.isArray(annotation) || annotation.length !== 1 || annotation[0] !== 'Date') return false;
    if (ROOT_DATE_KEYS.has(path)) {
      targets.push(json);
      keys.push(path);
      continue;
    }
    const index = EVENT_DATE_KEY.exec(path)?.[1];
    if (index === undefined || !Array.isArray(events)) return false;
    const event: unknown = events[Number(index)];
    if (!isPlainRecord(event)) return false;
    targets.push(event);
    keys.push('createdAt');
  }
  for (let i = 0; i < targets.length; i += 1) {
    const target = targets[i] as Record<string, unknown>;
    const key = keys[i] as string;
    target[key] = new Date(target[key] as string);
  }
  return true;
}

function deserializeInput(payload: unknown): unknown {
  if (typeof payload !== 'object' || payload === null) refuse('Malformed superjson input: expected { "json": ... }');
  const { json, meta } = payload as { json?: unknown; meta?: unknown };
  if (meta === undefined || meta === null) return json;
  if (typeof meta !== 'object') refuse('Malformed superjson input');
  const { referentialEqualities, values } = meta as { referentialEqualities?: unknown; values?: unknown };
  if (referentialEqualities !== undefined) {
    refuse(
      'Shared references (superjson referentialEqualities) are not accepted in procedure input: send each value in full',
      firstReferencePath(referentialEqualities),
    );
  }
  if (values !== undefined) {
    if (restoreIngestDates(json, values)) return json;
    checkValueAnnotations(values);
  }
  try {
    return superjson.deserialize(payload as never, { inPlace: true });
  } catch {
    // superjson's own messages name its internals; the caller needs only to know the input is bad.
    return refuse('Malformed superjson input');
  }
}

type JSONValue = SuperJSONResult['json'];

/** Keys superjson refuses to serialize (prototype pollution): such output takes its path, and its error. */
const isRefusedKey = (key: string) => key === '__proto__' || key === 'constructor' || key === 'prototype';

/** Nesting beyond which output is left to superjson rather than walked here. */
const MAX_FAST_OUTPUT_DEPTH = 64;

/**
 * True when superjson would pass `value` through unannotated: strings, booleans, null, finite
 * numbers other than -0, and arrays and plain objects of them, none reached twice (superjson
 * declares an object met twice as a shared reference). `seen` collects the objects met.
 */
function isPlainJson(value: unknown, seen: Set<object>, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth > MAX_FAST_OUTPUT_DEPTH || seen.has(value)) return false;
  seen.add(value);
  if (Array.isArray(value)) {
    // superjson walks an array's own keys: holes and extra properties are left to it.
    if (Object.getPrototypeOf(value) !== Array.prototype || Object.keys(value).length !== value.length) return false;
    for (let i = 0; i < value.length; i += 1) if (!isPlainJson(value[i], seen, depth + 1)) return false;
    return true;
  }
  if (!isPlainRecord(value)) return false;
  for (const key of Object.keys(value)) {
    if (isRefusedKey(key) || !isPlainJson(value[key], seen, depth + 1)) return false;
  }
  return true;
}

const isValidDate = (value: unknown): value is Date =>
  value instanceof Date && Object.getPrototypeOf(value) === Date.prototype && !Number.isNaN(value.getTime());

/** superjson's escaping of one path segment. */
const escapePathSegment = (key: string) => key.replace(/\\/g, '\\\\').replace(/\./g, '\\.');

/**
 * superjson's envelope for output it would not annotate, or whose only annotations are Dates held
 * directly by a root object (a receipt, a stored event), built without superjson's walk and copy;
 * undefined for anything else. The `json` part may share the value's own objects: it is turned
 * into text at once.
 */
function fastOutputEnvelope(value: unknown): SuperJSONResult | undefined {
  const seen = new Set<object>();
  if (!isPlainRecord(value)) return isPlainJson(value, seen, 0) ? { json: value as JSONValue } : undefined;
  seen.add(value);
  const keys = Object.keys(value);
  let json: Record<string, JSONValue> | undefined;
  let dates: Record<string, ['Date']> | undefined;
  for (let i = 0; i < keys.length; i += 1) {
    const key = keys[i] as string;
    if (isRefusedKey(key)) return undefined;
    const child = value[key];
    if (isValidDate(child)) {
      if (seen.has(child)) return undefined;
      seen.add(child);
      if (!json || !dates) {
        json = {};
        dates = {};
        for (let j = 0; j < i; j += 1) json[keys[j] as string] = value[keys[j] as string] as JSONValue;
      }
      json[key] = child.toISOString();
      dates[escapePathSegment(key)] = ['Date'];
    } else {
      if (!isPlainJson(child, seen, 1)) return undefined;
      if (json) json[key] = child as JSONValue;
    }
  }
  return json && dates ? { json, meta: { values: dates, v: 1 } } : { json: value as JSONValue };
}

/** Output as superjson serializes it, byte for byte once turned into JSON text. */
function serializeOutput(value: unknown): SuperJSONResult {
  return fastOutputEnvelope(value) ?? superjson.serialize(value);
}

export const procedureTransformer = {
  input: { serialize: (value: unknown) => superjson.serialize(value), deserialize: deserializeInput },
  output: { serialize: serializeOutput, deserialize: (value: unknown) => superjson.deserialize(value as never) },
};

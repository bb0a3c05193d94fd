import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EVENT_LIMITS,
  EventInput,
  EventInputWithFastPath,
  formatPath,
  parseEvent,
  SOURCES,
  validateEventFast,
  type ValidEvent,
} from '../server/services/events/schemas.ts';
import { findJsonProblems, isJsonWithinBounds, unstorableTextReason, type JsonBounds } from '../server/services/events/json.ts';
import { PreciseDate } from '../server/services/events/precise-time.ts';

// ---- Arbitraries: events near every boundary the schema draws --------------------------------
// Each field has values the schema takes (many right at a limit) and values it refuses (many just
// past one); an event is mostly valid fields with now and then a refused one, so both answers of
// the property come up often.

const { nameLength, eventTypeLength, targetTypeLength, targetIdLength, metadata: metadataBounds } = EVENT_LIMITS;

/** Mostly `valid`, now and then `hostile`. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>) => fc.oneof({ weight: 14, arbitrary: valid }, { weight: 1, arbitrary: hostile });

/** A nullish field's value: a value, null, or undefined (the key itself may also be absent). */
const orNullish = <T>(value: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: value }, fc.constant(null), fc.constant(undefined));

/** An own, enumerable `__proto__` key, as JSON.parse makes one. */
const withOwnProto = <T extends object>(value: T, protoValue: unknown): T =>
  Object.defineProperty({ ...value }, '__proto__', { value: protoValue, enumerable: true, writable: true, configurable: true });

/** Text of `limit + delta` UTF-16 units, ending in `tail`. */
const textOfLength = (limit: number, deltas: fc.Arbitrary<number>, tails: fc.Arbitrary<string>) =>
  fc.tuple(deltas, tails).map(([delta, tail]) => 'x'.repeat(Math.max(0, limit + delta - tail.length)) + tail);

const storableText = (limit: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 20 }).filter((text) => unstorableTextReason(text) === undefined) },
    fc.constantFrom('x', '\ud83d\ude00', 'é', '__proto__', 'constructor'),
    textOfLength(limit, fc.integer({ min: -1, max: 0 }), fc.constantFrom('', 'é', '\ud83d\ude00')),
  );
const unstorableText = (limit: number) =>
  fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((text) => unstorableTextReason(text) !== undefined),
    fc.constantFrom('', '\u0000', 'a\u0000b', '\ud800', 'a\udc00', '\udc00\ud800', 7, true, ['a'], { a: 1 }),
    textOfLength(limit, fc.integer({ min: 1, max: 2 }), fc.constantFrom('', 'é', '\ud83d\ude00')),
    textOfLength(limit, fc.integer({ min: -1, max: 0 }), fc.constantFrom('\ud800', '\u0000')),
  );
const text = (limit: number) => mostly(storableText(limit), unstorableText(limit));

const validUuid = fc.oneof(
  { weight: 4, arbitrary: fc.uuid() },
  fc.uuid({ version: 7 }),
  fc.uuid().map((id) => id.toUpperCase()),
  fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'),
);
const invalidUuid = fc.oneof(
  // Wrong version or variant digit, a digit too many or too few, padding, the wrong type.
  fc.uuid().map((id) => `${id.slice(0, 14)}0${id.slice(15)}`),
  fc.uuid().map((id) => `${id.slice(0, 14)}9${id.slice(15)}`),
  fc.uuid().map((id) => `${id.slice(0, 19)}c${id.slice(20)}`),
  fc.uuid().map((id) => `${id}0`),
  fc.uuid().map((id) => id.slice(1)),
  fc.uuid().map((id) => ` ${id}`),
  fc.uuid().map((id) => `${id}\n`),
  fc.constantFrom(42, '', 'not-a-uuid', { id: 'x' }),
);
const uuid = mostly(validUuid, invalidUuid);

const validEventType = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('custom', 'ui.interaction', 'perf.metric', 'error', 'checkout.step_completed', 'a', 'a.b_1.c9') },
  fc.stringMatching(/^[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){0,2}$/),
  fc.constantFrom('a'.repeat(eventTypeLength), `${'a.'.repeat(eventTypeLength / 2 - 1)}ab`, 'constructor', 'hasOwnProperty', 'to_string'),
);
const invalidEventType = fc.constantFrom(
  'Error',
  'perf.Metric',
  'a..b',
  'a.',
  '.a',
  '1a',
  'a-b',
  'perf.metric ',
  '__proto__',
  '',
  'a'.repeat(eventTypeLength + 1),
  7,
  null,
);

const validTimeText = fc
  .record({
    ms: fc.integer({ min: Date.parse('0001-01-01T00:00:00Z'), max: Date.parse('9999-12-31T23:59:59.999Z') }),
    fraction: fc.oneof(fc.constant(''), fc.stringMatching(/^\.[0-9]{1,6}$/), fc.constantFrom('.123456000', '.100', '.0000000')),
    offset: fc.constantFrom('Z', '+00:00', '+05:30', '-01:00', '+14:00', '-23:59'),
  })
  .map(({ ms, fraction, offset }) => `${new Date(ms).toISOString().slice(0, -5)}${fraction}${offset}`);
const invalidTimeText = fc.oneof(
  // Too precise, years 0 and past 9999 (also reached through an offset), impossible days, no offset.
  validTimeText.map((time) => time.replace(/(\d\d:\d\d:\d\d)(\.\d+)?/, '$1.1234567')),
  validTimeText.map((time) => time.replace(/(\d\d:\d\d:\d\d)(\.\d+)?/, '$1.0000001')),
  validTimeText.map((time) => time.replace(/(Z|[+-]\d\d:\d\d)$/, '')),
  validTimeText.map((time) => time.replace(/(Z|[+-]\d\d:\d\d)$/, 'z')),
  validTimeText.map((time) => time.replace(/(Z|[+-]\d\d:\d\d)$/, '+0530')),
  validTimeText.map((time) => time.replace('T', ' ')),
  fc.constantFrom('0000-01-01T00:00:00Z', '0001-01-01T00:00:00+01:00', '9999-12-31T23:59:59-01:00', '+010000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z'),
  fc.constantFrom('2023-02-29T12:00:00Z', '2024-04-31T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T00:00:00+24:00', 'yesterday', ''),
);
const validDate = fc.oneof(
  fc.date({ noInvalidDate: true, min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z') }),
  fc
    .tuple(fc.date({ noInvalidDate: true, min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.998Z') }), fc.integer({ min: 1, max: 999 }))
    .map(([date, micro]) => new PreciseDate(date.getTime(), micro)),
);
const invalidDate = fc.constantFrom(new Date(Number.NaN), new Date(Date.parse('0001-01-01T00:00:00Z') - 1), new Date(8.64e15), 1_700_000_000_000, {
  toISOString: () => 'x',
});
const createdAt = mostly(fc.oneof({ weight: 3, arbitrary: validTimeText }, validDate), fc.oneof(invalidTimeText, invalidDate));

const jsonLeaf = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(-0),
);
const notJsonLeaf = fc.constantFrom(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  undefined,
  '\u0000',
  '\udbff',
  () => 1,
  10n,
  Symbol('s'),
  new Date(0),
  new Map(),
  Object.create({ inherited: 1 }),
);
const jsonKey = fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 6 }) }, fc.constantFrom('toJSON', 'hasOwnProperty', ''));
const notJsonKey = fc.constantFrom('constructor', 'prototype', '\u0000', '\udc00');
/** JSON, and now and then something that is not (or a key that is refused) somewhere inside. */
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    { weight: 3, arbitrary: jsonLeaf },
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(jsonKey, tie('value'), { maxKeys: 4 }),
    { weight: 1, arbitrary: mostly(jsonLeaf, notJsonLeaf) },
    { weight: 1, arbitrary: fc.dictionary(mostly(jsonKey, notJsonKey), tie('value'), { maxKeys: 3 }) },
  ),
})).value;

/** Nested `depth` levels deep (the top-level object is depth 1). */
const nestedTo = (depth: number): Record<string, unknown> => (depth <= 1 ? { leaf: 1 } : { next: nestedTo(depth - 1) });
/** An object whose keys (summed over nesting) number `count`. */
const withKeys = (count: number) => ({ inner: Object.fromEntries(Array.from({ length: count - 1 }, (_, i) => [`k${i}`, i])) });
/** An object whose JSON is about `bytes` long in UTF-8. */
const sizedTo = (bytes: number) => ({ text: 'é'.repeat(Math.floor((bytes - 11) / 2)) });
/** Metadata `delta` away from each bound in turn, built once: big values are slow to generate. */
const metadataBeside = (delta: number) => [
  nestedTo(metadataBounds.maxDepth + delta),
  withKeys(metadataBounds.maxKeys + delta),
  { list: new Array(metadataBounds.maxArrayLength + delta).fill(0) },
  sizedTo(metadataBounds.maxBytes + 2 * delta),
];
const metadataAtBounds = fc.constantFrom(...metadataBeside(-1), ...metadataBeside(0));
const metadataPastBounds = fc.constantFrom(...metadataBeside(1));

const perfMetricMetadata = fc.record(
  {
    value: mostly(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, '12', null)),
    unit: mostly(
      fc.oneof(fc.constantFrom('ms', 'bytes', 'score'), textOfLength(32, fc.integer({ min: -1, max: 0 }), fc.constant(''))),
      fc.constantFrom('', 5, 'x'.repeat(33)),
    ),
    route: fc.string({ maxLength: 8 }),
  },
  { requiredKeys: ['value', 'unit'] },
);
const errorMetadata = fc.record(
  {
    message: mostly(fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constant('x'.repeat(4096))), fc.constantFrom('', 404, 'x'.repeat(4097))),
    stack: mostly(
      fc.oneof(fc.string({ maxLength: 20 }), fc.constant('x'.repeat(16_384)), fc.constant(undefined)),
      fc.constantFrom(null, 1, 'x'.repeat(16_385)),
    ),
    kind: mostly(fc.oneof(fc.string({ maxLength: 20 }), fc.constant('x'.repeat(200)), fc.constant(undefined)), fc.constantFrom(null, 'x'.repeat(201))),
    extra: json,
  },
  { requiredKeys: ['message'] },
);
const freeMetadata = fc.oneof({ weight: 4, arbitrary: fc.dictionary(jsonKey, json, { maxKeys: 5 }) }, metadataAtBounds);
const hostileMetadata = fc.oneof(
  metadataPastBounds,
  fc.constant({ list: Object.assign(new Array(3), { 0: 1, 2: 3 }) }),
  json.map((value) => withOwnProto({ a: 1 }, value)),
  fc.constantFrom([], 'text', 3, new Date(0), new Map()),
);
const metadata = mostly(fc.oneof({ weight: 3, arbitrary: freeMetadata }, perfMetricMetadata, errorMetadata, fc.constant(Object.create(null))), hostileMetadata);

const event = fc.record(
  {
    id: mostly(validUuid, fc.oneof(invalidUuid, fc.constant(null))),
    workspaceId: orNullish(uuid),
    userId: orNullish(uuid),
    source: mostly(fc.constantFrom(...SOURCES), fc.constantFrom('Web', 'web ', '', 'toString', '__proto__', null)),
    eventType: mostly(validEventType, invalidEventType),
    name: text(nameLength),
    targetType: orNullish(text(targetTypeLength)),
    targetId: orNullish(text(targetIdLength)),
    metadata: orNullish(metadata),
    createdAt: fc.oneof({ weight: 6, arbitrary: createdAt }, fc.constant(undefined), fc.constant(null)),
  },
  { requiredKeys: ['source', 'eventType', 'name'] },
);
/** Any of the fields may be missing, required ones included. */
const partialEvent = fc.tuple(event, fc.subarray(['source', 'eventType', 'name', 'id', 'metadata'])).map(([value, missing]) => {
  const copy: Record<string, unknown> = { ...value };
  for (const key of missing) delete copy[key];
  return copy;
});

/** The value after a trip through JSON, as an HTTP body brings it (values JSON cannot hold stay as they are). */
function asSentOverHttp(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value));
  } catch {
    return value;
  }
}

/** Events, mostly as sent, sometimes with a missing or extra key, a prototype key, or not an event at all. */
const rawEvent = fc.oneof(
  { weight: 8, arbitrary: event },
  { weight: 3, arbitrary: event.map(asSentOverHttp) },
  partialEvent,
  fc.tuple(event, fc.constantFrom('extra', 'constructor', 'toString', 'ID', 'metaData', '')).map(([value, key]) => ({ ...value, [key]: 'x' })),
  fc.tuple(event, json).map(([value, protoValue]) => withOwnProto(value, protoValue)),
  fc.tuple(event, json).map(([value, inherited]) => Object.setPrototypeOf({ ...value }, { inherited })),
  fc.constantFrom(null, undefined, 'event', 1, [], new Date(0), new Map()),
);

// ---- Properties -----------------------------------------------------------------------------

/** What an event's createdAt is beyond what toStrictEqual compares (it ignores a PreciseDate's microseconds). */
const timeOf = (value: ValidEvent) =>
  value.createdAt instanceof Date ? { kind: value.createdAt.constructor.name, iso: value.createdAt.toISOString() } : value.createdAt;

describe('the fast event validator', () => {
  it('accepts an event only when the Zod schema accepts it, with the same value; every refusal is reported with Zod’s first issue, and the schema copy for tRPC answers as the schema does', () => {
    let acceptedFast = 0;
    let refused = 0;
    fc.assert(
      fc.property(rawEvent, (raw) => {
        const fast = validateEventFast(raw);
        const zod = EventInput.safeParse(raw);
        if (fast !== undefined) {
          acceptedFast += 1;
          expect(zod.success).toBe(true);
          const expected = zod.data as ValidEvent;
          expect(Object.keys(fast)).toEqual(Object.keys(expected));
          expect(fast).toStrictEqual(expected);
          expect(timeOf(fast)).toEqual(timeOf(expected));
          expect(fast.metadata).toBe(expected.metadata);
        }
        // The schema copy for tRPC's .input() answers exactly as the schema does.
        const viaFastPath = EventInputWithFastPath.safeParse(raw);
        expect(viaFastPath.success).toBe(zod.success);
        if (viaFastPath.success) expect(timeOf(viaFastPath.data)).toEqual(timeOf(zod.data as ValidEvent));
        expect(viaFastPath.success ? viaFastPath.data : viaFastPath.error.issues).toStrictEqual(zod.success ? zod.data : zod.error.issues);
        const parsed = parseEvent(raw);
        if (zod.success) {
          expect(parsed.ok).toBe(true);
          if (parsed.ok) {
            expect(parsed.event).toStrictEqual(zod.data);
            expect(timeOf(parsed.event)).toEqual(timeOf(zod.data as ValidEvent));
          }
        } else {
          refused += 1;
          const [issue] = zod.error.issues;
          expect(parsed).toEqual({ ok: false, message: issue?.message, path: formatPath(issue?.path ?? []) });
        }
      }),
      { numRuns: 1500 },
    );
    // Both sides of the property were exercised, not just one.
    expect(acceptedFast).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  it('answers the common events itself: a UI interaction, a performance metric and an error, with ids and precise times', () => {
    const common = [
      {
        source: 'web',
        eventType: 'ui.interaction',
        name: 'button.click',
        targetType: 'button',
        targetId: 'signup',
        metadata: { route: '/pricing', viewport: { w: 1, h: 2 } },
      },
      {
        id: '0190a5e2-7c3b-7def-8a12-3456789abcde',
        workspaceId: '7d0b5a4e-3f59-4c1b-9a0e-5b8a2f1c6d3e',
        userId: null,
        source: 'web',
        eventType: 'perf.metric',
        name: 'LCP',
        metadata: { value: 1234.5, unit: 'ms' },
        createdAt: '2026-01-02T03:04:05.123456Z',
      },
      { source: 'backend', eventType: 'error', name: 'TypeError', metadata: { message: 'x is undefined', stack: 'at f (a.js:1:2)' }, createdAt: new Date() },
    ];
    for (const raw of common) expect(validateEventFast(raw)).toStrictEqual(EventInput.parse(raw));
    expect((validateEventFast(common[1]) as ValidEvent).createdAt?.toISOString()).toBe('2026-01-02T03:04:05.123456Z');
  });
});

describe('isJsonWithinBounds', () => {
  // Small bounds put every limit within reach of small values.
  const smallBounds: JsonBounds = { maxBytes: 120, maxDepth: 3, maxKeys: 8, maxArrayLength: 5, maxValues: 25 };

  it('agrees with findJsonProblems on any value, within small bounds and the event bounds', () => {
    fc.assert(
      fc.property(fc.oneof(json, metadata, metadataAtBounds, metadataPastBounds), (value) => {
        for (const bounds of [smallBounds, metadataBounds]) expect(isJsonWithinBounds(value, bounds)).toBe(findJsonProblems(value, bounds).length === 0);
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with findJsonProblems on sizes around the byte limit, whatever the characters and numbers cost to write', () => {
    const sizedText = fc.tuple(fc.constantFrom('a', 'é', '\ud83d\ude00', '"', '\n', '\u0001', '\\'), fc.integer({ min: 0, max: 130 }));
    fc.assert(
      fc.property(fc.array(sizedText, { maxLength: 3 }), fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { maxLength: 5 }), (parts, numbers) => {
        const value = { numbers, texts: parts.map(([unit, count]) => unit.repeat(count)) };
        expect(isJsonWithinBounds(value, smallBounds)).toBe(findJsonProblems(value, smallBounds).length === 0);
      }),
      { numRuns: 600 },
    );
  });

  it('agrees with findJsonProblems at every byte limit for the costliest characters to write and the longest numbers', () => {
    const costly = [
      ...['\u0001', '"', 'é', '\ud83d\ude00'].flatMap((unit) => [0, 1, 7, 20].map((count) => unit.repeat(count))),
      ...[0, 1, 3, 5].map((count) => new Array(count).fill(-0.0000012345678901234567)),
      ...[0, 1, 3].map((count) => Object.fromEntries(Array.from({ length: count }, (_, i) => ['\u0001'.repeat(i), false]))),
    ];
    for (const value of costly) {
      const size = Buffer.byteLength(JSON.stringify(value), 'utf8');
      for (let maxBytes = 0; maxBytes <= size + 1; maxBytes += 1) {
        const bounds = { ...smallBounds, maxBytes };
        expect(isJsonWithinBounds(value, bounds)).toBe(findJsonProblems(value, bounds).length === 0);
      }
    }
  });
});

import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type EventRow, storedEventJson, storedEventsJson } from '../db/event-writers.ts';
import { STORABLE_TIME_RANGE } from '../db/timestamps.ts';
import { correctedForSkew, epochMicros, fromEpochMicros, PreciseDate } from '../server/services/events/precise-time.ts';
import { toStoredEvent } from '../server/services/events/read.ts';
import { SOURCES } from '../server/services/events/schemas.ts';

const time = fc
  .record({
    ms: fc.integer({ min: STORABLE_TIME_RANGE.earliestMs, max: STORABLE_TIME_RANGE.latestMs }),
    microsecond: fc.integer({ min: 0, max: 999 }),
  })
  .map(({ ms, microsecond }) => (microsecond === 0 ? new Date(ms) : new PreciseDate(ms, microsecond)));

const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 });

const eventRow: fc.Arbitrary<EventRow> = fc.record({
  id: fc.uuid(),
  workspaceId: fc.uuid(),
  userId: fc.option(fc.uuid(), { nil: null }),
  source: fc.constantFrom(...SOURCES),
  eventType: fc.constantFrom('custom', 'ui.interaction', 'perf.metric'),
  name: text,
  targetType: fc.option(text, { nil: null }),
  targetId: fc.option(text, { nil: null }),
  metadata: fc.option(fc.dictionary(text, json, { maxKeys: 4 }), { nil: null }) as fc.Arbitrary<Record<string, unknown> | null>,
  createdAt: time,
  receivedAt: time,
});

describe('the JSON a flush is written and published as', () => {
  it('is, event by event and as a document, the text of the event readers get', () => {
    fc.assert(
      fc.property(fc.array(eventRow, { minLength: 1, maxLength: 8 }), (rows) => {
        // Rows of one call share their received time: the document writes its text once.
        const shared = rows.map((row, index) => (index % 2 ? { ...row, receivedAt: rows[0]!.receivedAt } : row));
        const written = storedEventsJson(shared);
        expect(written.document).toBe(JSON.stringify(shared.map(toStoredEvent)));
        shared.forEach((row, index) => {
          expect(written.eventJson(index)).toBe(JSON.stringify(toStoredEvent(row)));
          expect(storedEventJson(row)).toBe(written.eventJson(index));
        });
      }),
      { numRuns: 300 },
    );
  });

  it('is made once for one array of rows, so the writer and the live publish share it', () => {
    const rows = [{ ...fc.sample(eventRow, 1)[0]!, id: randomUUID() }];
    expect(storedEventsJson(rows)).toBe(storedEventsJson(rows));
  });
});

describe('clock-skew correction', () => {
  it('is receivedAt - (sentAt - createdAt) to the microsecond, as exact arithmetic on whole microseconds gives it', () => {
    fc.assert(
      fc.property(time, time, time, (createdAt, sentAt, receivedAt) => {
        const exact = fromEpochMicros(epochMicros(receivedAt) - (epochMicros(sentAt) - epochMicros(createdAt)));
        const corrected = correctedForSkew(createdAt, sentAt, receivedAt);
        expect(corrected.getTime()).toBe(exact.getTime());
        expect(corrected instanceof PreciseDate ? corrected.microsecond : 0).toBe(exact instanceof PreciseDate ? exact.microsecond : 0);
      }),
      { numRuns: 2000 },
    );
  });
});

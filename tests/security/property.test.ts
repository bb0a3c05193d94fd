import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { createTestKeys, startTestServer, type TestKeys, type TestServer, createTestWorkspace } from '../support/app.ts';
import { storedEvents } from '../support/events.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let server: TestServer;
let keys: TestKeys;

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  server = await startTestServer(testDb.db);
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

// Strings that include NUL, lone surrogates and other characters Postgres or JavaScript choke on.
const awkwardString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', '\u0000', '\ud800', '__proto__', 'a'.repeat(300)));
const awkwardKey = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'prototype', '\u0000', '\udc00'));
const awkwardJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, false, 0, -0, 1e308, Number.MAX_SAFE_INTEGER),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    awkwardString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(awkwardKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Mostly valid, now and then hostile. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>) => fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: hostile });
const plainText = fc.string({ minLength: 1, maxLength: 30 });
const recentTime = fc.integer({ min: -3 * 86_400_000, max: 60_000 }).map((offset) => new Date(Date.now() + offset).toISOString());

/** Mostly event-shaped objects with random and hostile parts, and now and then anything at all. */
const eventLike = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      {
        id: fc.option(mostly(fc.uuid({ version: 4 }), fc.string()), { nil: undefined }),
        source: mostly(fc.constantFrom('web', 'mobile', 'backend', 'cli', 'extension'), awkwardString),
        eventType: mostly(fc.constantFrom('custom', 'ui.interaction', 'perf.metric', 'error', 'checkout.done'), awkwardString),
        name: mostly(plainText, awkwardString),
        targetId: fc.option(mostly(plainText, awkwardString), { nil: undefined }),
        metadata: fc.option(
          mostly(
            fc.oneof(
              fc.record({ value: fc.double({ noNaN: true, noDefaultInfinity: true }), unit: fc.constantFrom('ms', 'bytes') }),
              fc.record({ message: plainText }),
            ),
            fc.oneof(fc.dictionary(awkwardKey, awkwardJson, { maxKeys: 5 }), awkwardJson),
          ),
          { nil: undefined },
        ),
        createdAt: fc.option(
          mostly(
            recentTime,
            fc.oneof(
              fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
              awkwardString,
            ),
          ),
          { nil: undefined },
        ),
      },
      { requiredKeys: ['source', 'eventType', 'name'] },
    ),
  },
  { weight: 1, arbitrary: awkwardJson },
);

describe('any input to ingestBatch', () => {
  it('is either stored exactly as its receipt says or refused with a 4xx; never a 500, never half a batch', async () => {
    let acceptedEvents = 0;
    let refusedCalls = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(eventLike, { minLength: 1, maxLength: 6 }), async (events) => {
        const workspaceId = await newWorkspace();
        const stamped = events.map((event) =>
          typeof event === 'object' && event !== null && !Array.isArray(event) && 'source' in event ? { ...event, workspaceId } : event,
        );
        const response = await fetch(`${server.url}/api/events/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}` },
          body: JSON.stringify({ events: stamped }),
        });
        expect(response.status).toBeLessThan(500);
        const stored = await storedEvents(testDb.db, workspaceId);
        if (response.status !== 200) {
          refusedCalls += 1;
          expect(stored).toHaveLength(0);
          return;
        }
        const body = (await response.json()) as { receipts: { index: number; status: string; id?: string; createdAt?: string }[] };
        expect(body.receipts.map((r) => r.index)).toEqual(stamped.map((_, index) => index));
        const acceptedIds = new Set(body.receipts.filter((r) => r.status === 'accepted').map((r) => r.id));
        expect(new Set(stored.map((e) => e.id))).toEqual(acceptedIds);
        acceptedEvents += acceptedIds.size;
        for (const receipt of body.receipts.filter((r) => r.status === 'accepted')) {
          const row = stored.find((e) => e.id === receipt.id)!;
          // Compare with what went over the wire (JSON has no -0, for one).
          const sent = JSON.parse(JSON.stringify(stamped[receipt.index])) as Record<string, unknown>;
          expect(row.createdAt.toISOString()).toBe(receipt.createdAt);
          expect(row.name).toBe(sent.name);
          expect(row.source).toBe(sent.source);
          expect(row.metadata ?? undefined).toEqual(sent.metadata ?? undefined);
        }
      }),
      { numRuns: 150 },
    );
    // The generator must reach both sides, or the property says little.
    expect(acceptedEvents).toBeGreaterThan(20);
    expect(refusedCalls + 150 * 6 - acceptedEvents).toBeGreaterThan(20);
  });
});

import { randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import type { inferProcedureInput } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../server/routers/index.ts';
import { uuidv7 } from '../client/uuid7.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { capturingLogger, createTestKeys, createTestWorkspace, procedureCaller, servicesWith, testConfig } from './support/app.ts';
import { countEventsWithId, partitionOf, storedEvents } from './support/events.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { domainCause, summarizeZodIssues, zodCause } from '../server/trpc/errors.ts';

type IngestInput = inferProcedureInput<AppRouter['telemetry']['ingest']>;

let testDb: TestDatabase;
let ingestKey: string;
beforeAll(async () => {
  testDb = await openTestDatabase();
  await maintainPartitions(testDb.db, { daysAhead: 3 });
  ({ ingest: ingestKey } = await createTestKeys(testDb.db));
});

/** Procedures called as a client holding an unbound ingest key. */
function ingestCaller(options: Omit<NonNullable<Parameters<typeof procedureCaller>[1]>, 'apiKey'> = {}) {
  return procedureCaller(testDb.db, { apiKey: ingestKey, ...options });
}
afterAll(async () => {
  await testDb?.drop();
});

/** Each test writes into its own workspace, so tests share one database without seeing each other. */
const newWorkspace = () => createTestWorkspace(testDb.db);
const DAY = 86_400_000;

async function expectTrpcError(promise: Promise<unknown>, code: TRPCError['code']): Promise<TRPCError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TRPCError);
  expect((error as TRPCError).code).toBe(code);
  return error as TRPCError;
}

describe('telemetry.ingest', () => {
  it('stores the event and answers its id and createdAt once it is committed', async () => {
    const workspaceId = await newWorkspace();
    const caller = ingestCaller();
    const input: IngestInput = {
      workspaceId,
      userId: randomUUID(),
      source: 'web',
      eventType: 'ui.interaction',
      name: 'button.click',
      targetType: 'button',
      targetId: 'signup',
      metadata: { label: 'Sign up', position: { x: 1, y: 2 }, tags: ['a', 'b'], ok: true, none: null },
    };
    const result = await caller.telemetry.ingest(input);

    expect(result.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const [stored] = await storedEvents(testDb.db, workspaceId);
    expect(stored).toMatchObject({
      id: result.id,
      userId: input.userId,
      source: 'web',
      eventType: 'ui.interaction',
      name: 'button.click',
      targetType: 'button',
      targetId: 'signup',
      metadata: input.metadata,
    });
    expect(stored?.createdAt.getTime()).toBe(result.createdAt.getTime());
    expect(Object.keys(result).sort()).toEqual(['createdAt', 'id']);
  });

  it('stores a retried event once and answers the first receipt again', async () => {
    const workspaceId = await newWorkspace();
    const caller = ingestCaller();
    const id = randomUUID();
    const first = await caller.telemetry.ingest({ id, workspaceId, source: 'backend', eventType: 'custom', name: 'job.done' });
    const again = await caller.telemetry.ingest({ id, workspaceId, source: 'backend', eventType: 'custom', name: 'job.done' });

    expect(again).toEqual(first);
    expect(await countEventsWithId(testDb.db, id)).toBe(1);
  });

  it('keeps one copy when a retry carries a createdAt in another day partition', async () => {
    const workspaceId = await newWorkspace();
    const caller = ingestCaller();
    const id = randomUUID();
    const today = new Date();
    const yesterday = new Date(today.getTime() - DAY);
    const first = await caller.telemetry.ingest({ id, workspaceId, source: 'mobile', eventType: 'custom', name: 'x', createdAt: yesterday });
    const retry = await caller.telemetry.ingest({ id, workspaceId, source: 'mobile', eventType: 'custom', name: 'x', createdAt: today });

    expect(retry.createdAt.getTime()).toBe(yesterday.getTime());
    expect(first.createdAt.getTime()).toBe(yesterday.getTime());
    expect(await countEventsWithId(testDb.db, id)).toBe(1);
  });

  it('takes createdAt from a UUIDv7 id when the event gives no time', async () => {
    const workspaceId = await newWorkspace();
    const happenedAt = new Date(Date.now() - 60 * 60_000);
    const id = uuidv7(happenedAt);
    const result = await ingestCaller().telemetry.ingest({ id, workspaceId, source: 'cli', eventType: 'custom', name: 'x' });
    expect(result.createdAt.getTime()).toBe(happenedAt.getTime());
  });

  it('uses the server clock when neither createdAt nor a UUIDv7 id is given', async () => {
    const pinned = new Date('2026-01-15T10:00:00.000Z');
    const caller = ingestCaller({ now: () => pinned });
    const result = await caller.telemetry.ingest({ workspaceId: await newWorkspace(), source: 'cli', eventType: 'custom', name: 'x' });
    expect(result.createdAt.toISOString()).toBe(pinned.toISOString());
  });

  it('refuses a createdAt beyond the allowed past or future with a clear code and stores nothing', async () => {
    const workspaceId = await newWorkspace();
    const caller = ingestCaller();
    const tooOld = await expectTrpcError(
      caller.telemetry.ingest({ workspaceId, source: 'web', eventType: 'custom', name: 'x', createdAt: new Date(Date.now() - 31 * DAY) }),
      'BAD_REQUEST',
    );
    expect(tooOld.message).toMatch(/past/);
    const tooNew = await expectTrpcError(
      caller.telemetry.ingest({ workspaceId, source: 'web', eventType: 'custom', name: 'x', createdAt: new Date(Date.now() + DAY) }),
      'BAD_REQUEST',
    );
    expect(tooNew.message).toMatch(/future/);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('requires a numeric value and a unit on perf.metric and a message on error events', async () => {
    const workspaceId = await newWorkspace();
    const caller = ingestCaller();
    const badMetric = { workspaceId, source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: 'fast' } } as unknown as IngestInput;
    const error = await expectTrpcError(caller.telemetry.ingest(badMetric), 'BAD_REQUEST');
    expect(errorPaths(error)).toContain('metadata.value');

    const badError = { workspaceId, source: 'web', eventType: 'error', name: 'TypeError', metadata: {} } as unknown as IngestInput;
    expect(errorPaths(await expectTrpcError(caller.telemetry.ingest(badError), 'BAD_REQUEST'))).toContain('metadata.message');

    await caller.telemetry.ingest({ workspaceId, source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: 1830.5, unit: 'ms', page: '/' } });
    await caller.telemetry.ingest({
      workspaceId,
      source: 'web',
      eventType: 'error',
      name: 'TypeError',
      metadata: { message: 'x is undefined', stack: 'at y' },
    });
    expect((await storedEvents(testDb.db, workspaceId)).map((e) => e.eventType).sort()).toEqual(['error', 'perf.metric']);
  });

  it('accepts new dotted event types with free-form metadata without any schema change', async () => {
    const workspaceId = await newWorkspace();
    await ingestCaller().telemetry.ingest({ workspaceId, source: 'extension', eventType: 'checkout.step_completed', name: 'payment', metadata: { step: 3 } });
    expect((await storedEvents(testDb.db, workspaceId))[0]?.eventType).toBe('checkout.step_completed');
  });

  it.each([
    ['a NUL character in the name', { name: 'a\u0000b' }, 'name'],
    ['a NUL character in a metadata value', { metadata: { note: 'a\u0000b' } }, 'metadata.note'],
    ['a NUL character in a metadata key', { metadata: { 'a\u0000': 1 } }, 'metadata'],
    ['an unpaired surrogate in a metadata value', { metadata: { note: 'x\uD800y' } }, 'metadata.note'],
    ['an unpaired surrogate in targetId', { targetId: '\uDC00' }, 'targetId'],
    ['a __proto__ key in metadata', { metadata: JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, never> }, 'metadata.__proto__'],
    ['a constructor key in metadata', { metadata: { constructor: { prototype: 1 } } }, 'metadata.constructor'],
    ['metadata nested deeper than allowed', { metadata: nest(20) }, 'metadata'],
    ['metadata larger than 32 KB', { metadata: { blob: 'x'.repeat(40_000) } }, 'metadata'],
    ['a non-finite number in metadata', { metadata: { n: Number.POSITIVE_INFINITY } }, 'metadata.n'],
    ['a Date inside metadata (not JSON)', { metadata: { when: new Date() } }, 'metadata.when'],
    ['an unknown top-level field', { eventtype: 'x' }, ''],
    ['an event type that is not a dotted lower-case identifier', { eventType: 'Checkout Completed' }, 'eventType'],
    ['a source outside the allowed list', { source: 'desktop' }, 'source'],
    ['a name longer than 200 characters', { name: 'n'.repeat(201) }, 'name'],
    ['a workspaceId that is not a UUID', { workspaceId: 'w1' }, 'workspaceId'],
  ])('refuses %s with BAD_REQUEST naming the field, and stores nothing', async (_label, override, path) => {
    const workspaceId = await newWorkspace();
    const input = { workspaceId, source: 'web', eventType: 'custom', name: 'x', ...override } as unknown as IngestInput;
    const error = await expectTrpcError(ingestCaller().telemetry.ingest(input), 'BAD_REQUEST');
    expect(errorPaths(error).some((p) => p.startsWith(path))).toBe(true);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('stores an id another workspace already used as a separate event: ids are unique per workspace', async () => {
    const id = randomUUID();
    const caller = ingestCaller();
    const [first, second] = [await newWorkspace(), await newWorkspace()];
    await caller.telemetry.ingest({ id, workspaceId: first, source: 'web', eventType: 'custom', name: 'first' });
    const stored = await caller.telemetry.ingest({ id, workspaceId: second, source: 'web', eventType: 'custom', name: 'second' });
    expect(stored.id).toBe(id);
    expect(await countEventsWithId(testDb.db, id)).toBe(2);
    expect((await storedEvents(testDb.db, first)).map((event) => event.name)).toEqual(['first']);
    expect((await storedEvents(testDb.db, second)).map((event) => event.name)).toEqual(['second']);
    // A retry in either workspace is that workspace's own duplicate: answered, not stored again.
    expect(await caller.telemetry.ingest({ id, workspaceId: second, source: 'web', eventType: 'custom', name: 'second' })).toEqual(stored);
    expect(await countEventsWithId(testDb.db, id)).toBe(2);
  });

  it('answers an unexpected failure with a generic message and logs the cause', async () => {
    const { logger, lines } = capturingLogger();
    const failing = servicesWith(testDb.db, {
      ingestor: {
        ingestEvent: () => Promise.reject(new Error('relation "telemetry.events" does not exist at character 42')),
        ingestBatch: () => Promise.reject(new Error('boom')),
      },
    });
    const caller = ingestCaller({ services: failing, logger });
    const error = await expectTrpcError(caller.telemetry.ingest({ source: 'web', eventType: 'custom', name: 'x' }), 'INTERNAL_SERVER_ERROR');
    expect(error.message).toBe('Internal server error');
    expect(lines.some((l) => l.level === 'error' && l.line.includes('does not exist'))).toBe(true);
  });
});

describe('telemetry.ingestBatch', () => {
  it('stores the valid events and reports the invalid ones by index with their field path', async () => {
    const workspaceId = await newWorkspace();
    const result = await ingestCaller().telemetry.ingestBatch({
      events: [
        { workspaceId, source: 'web', eventType: 'ui.interaction', name: 'click' },
        { workspaceId, source: 'web', eventType: 'perf.metric', name: 'INP', metadata: { value: 'slow', unit: 'ms' } } as never,
        { workspaceId, source: 'tv', eventType: 'custom', name: 'x' } as never,
        { workspaceId, source: 'backend', eventType: 'error', name: 'Timeout', metadata: { message: 'upstream timed out' } },
      ],
    });

    expect(result).toMatchObject({ accepted: 2, duplicates: 0, rejected: 2 });
    expect(result.receipts.map((r) => [r.index, r.status])).toEqual([
      [0, 'accepted'],
      [1, 'rejected'],
      [2, 'rejected'],
      [3, 'accepted'],
    ]);
    expect(result.receipts[1]).toMatchObject({ code: 'invalid_event', path: 'metadata.value' });
    expect(result.receipts[2]).toMatchObject({ code: 'invalid_event', path: 'source' });
    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored.map((e) => e.name).sort()).toEqual(['Timeout', 'click']);
  });

  it('stores an id repeated inside one batch once and reports the repeat as a duplicate', async () => {
    const workspaceId = await newWorkspace();
    const id = randomUUID();
    const event = { id, workspaceId, source: 'web', eventType: 'custom', name: 'x' } as const;
    const result = await ingestCaller().telemetry.ingestBatch({ events: [event, event] });
    expect(result.receipts.map((r) => r.status)).toEqual(['accepted', 'duplicate']);
    expect(result.receipts[1]).toMatchObject({ id });
    expect(await countEventsWithId(testDb.db, id)).toBe(1);
  });

  it('answers duplicate with the original createdAt when a whole batch is retried', async () => {
    const workspaceId = await newWorkspace();
    const events = [0, 1, 2].map((n) => ({ id: randomUUID(), workspaceId, source: 'web' as const, eventType: 'custom' as const, name: `e${n}` }));
    const caller = ingestCaller();
    const first = await caller.telemetry.ingestBatch({ events });
    const retry = await caller.telemetry.ingestBatch({ events });
    expect(retry.receipts.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(retry.receipts.map((r) => (r.status === 'rejected' ? null : r.createdAt))).toEqual(
      first.receipts.map((r) => (r.status === 'rejected' ? null : r.createdAt)),
    );
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(3);
  });

  it('corrects each createdAt for the client clock skew given by sentAt', async () => {
    const workspaceId = await newWorkspace();
    const serverNow = new Date('2026-03-01T12:00:00.000Z');
    // The client clock runs 10 minutes fast: it says the event happened at 12:05 and was sent at 12:10.
    const result = await ingestCaller({ now: () => serverNow }).telemetry.ingestBatch({
      sentAt: new Date('2026-03-01T12:10:00.000Z'),
      events: [{ workspaceId, source: 'mobile', eventType: 'custom', name: 'x', createdAt: new Date('2026-03-01T12:05:00.000Z') }],
    });
    const [receipt] = result.receipts;
    expect(receipt?.status).toBe('accepted');
    expect(receipt?.status !== 'rejected' && receipt?.createdAt).toBe('2026-03-01T11:55:00.000Z');
  });

  it('refuses a batch over the configured event limit as a whole and stores nothing', async () => {
    const workspaceId = await newWorkspace();
    const caller = ingestCaller({ config: testConfig({ MAX_BATCH_EVENTS: '5' }) });
    const events = Array.from({ length: 6 }, (_, n) => ({ workspaceId, source: 'web' as const, eventType: 'custom' as const, name: `e${n}` }));
    const error = await expectTrpcError(caller.telemetry.ingestBatch({ events }), 'PAYLOAD_TOO_LARGE');
    expect(error.message).toMatch(/at most 5 events/);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
    await expect(caller.telemetry.ingestBatch({ events: events.slice(0, 5) })).resolves.toMatchObject({ accepted: 5 });
  });

  it('refuses an empty batch', async () => {
    await expectTrpcError(ingestCaller().telemetry.ingestBatch({ events: [] }), 'BAD_REQUEST');
  });
});

describe('daily partitions', () => {
  it('stores each event in the partition of its UTC day', async () => {
    const result = await ingestCaller().telemetry.ingest({ workspaceId: await newWorkspace(), source: 'web', eventType: 'custom', name: 'x' });
    const day = result.createdAt.toISOString().slice(0, 10).replaceAll('-', '');
    expect(await partitionOf(testDb.db, result.id)).toBe(`telemetry.events_p${day}`);
  });

  it('keeps an event older than the prepared partitions in the default partition, then moves it into its own', async () => {
    const workspaceId = await newWorkspace();
    const createdAt = new Date(Date.now() - 20 * DAY);
    const { id } = await ingestCaller().telemetry.ingest({ workspaceId, source: 'web', eventType: 'custom', name: 'late', createdAt });
    expect(await partitionOf(testDb.db, id)).toBe('telemetry.events_default');

    await maintainPartitions(testDb.db, { daysAhead: 3 });
    const day = createdAt.toISOString().slice(0, 10).replaceAll('-', '');
    expect(await partitionOf(testDb.db, id)).toBe(`telemetry.events_p${day}`);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
  });

  it('stores events at the exact edges of a day in the right partitions', async () => {
    const workspaceId = await newWorkspace();
    const midnight = new Date(Math.floor(Date.now() / DAY) * DAY);
    const caller = ingestCaller();
    const atMidnight = await caller.telemetry.ingest({ workspaceId, source: 'web', eventType: 'custom', name: 'a', createdAt: midnight });
    const justBefore = await caller.telemetry.ingest({
      workspaceId,
      source: 'web',
      eventType: 'custom',
      name: 'b',
      createdAt: new Date(midnight.getTime() - 1),
    });
    const dayOf = (d: Date) => d.toISOString().slice(0, 10).replaceAll('-', '');
    expect(await partitionOf(testDb.db, atMidnight.id)).toBe(`telemetry.events_p${dayOf(midnight)}`);
    expect(await partitionOf(testDb.db, justBefore.id)).toBe(`telemetry.events_p${dayOf(new Date(midnight.getTime() - DAY))}`);
  });
});

/** The field paths an error names: from zod issues, or from a domain error. */
function errorPaths(error: TRPCError): string[] {
  const zod = zodCause(error);
  if (zod) return summarizeZodIssues(zod).map((issue) => issue.path);
  const domain = domainCause(error);
  return domain?.path !== undefined ? [domain.path] : [];
}

function nest(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < depth; i += 1) value = { child: value };
  return value;
}

import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openPostgres } from '../db/database.ts';
import { createEventWriter, eventKey, type EventRow, type EventWriter } from '../db/event-writers.ts';
import { DomainError } from '../server/errors.ts';
import { createMetrics } from '../server/metrics.ts';
import { createGroupCommitter } from '../server/services/events/group-commit.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import type { TestDatabase } from './support/database.ts';
import { procedureCaller, startTestServer, testConfig, type TestKeys, testServices, createTestWorkspace, openTestDatabaseWithKeys } from './support/app.ts';
import { storedEvents } from './support/events.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let keys: TestKeys;
beforeAll(async () => {
  ({ testDb, keys } = await openTestDatabaseWithKeys());
});
afterAll(async () => {
  await testDb?.drop();
});

const options = { maxFlushEvents: 1000, maxDelayMs: 5, maxConcurrentFlushes: 2, maxQueuedEvents: 10_000 };

/** Wraps the real writer, counting flushes and optionally holding them until released. */
/** The service's writer, failing a write with the error `failure` gives for its rows (none: written). */
function failingWriter(failure: (rows: readonly EventRow[]) => Error | undefined) {
  const inner = createEventWriter(testDb.db);
  let writes = 0;
  const writer: EventWriter = {
    form: inner.form,
    async write(rows) {
      writes += 1;
      const error = failure(rows);
      if (error) throw error;
      return inner.write(rows);
    },
  };
  return { writer, writes: () => writes };
}

function observedWriter(inner: EventWriter) {
  const flushes: number[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let entered: () => void = () => {};
  /** Resolves when the first flush reaches the writer. */
  const firstWrite = new Promise<void>((resolve) => (entered = resolve));
  const writer: EventWriter = {
    form: inner.form,
    async write(rows) {
      flushes.push(rows.length);
      entered();
      if (gate) await gate;
      return inner.write(rows);
    },
  };
  return {
    writer,
    flushes,
    firstWrite,
    hold() {
      gate = new Promise((resolve) => (open = resolve));
    },
    release() {
      open?.();
      gate = undefined;
    },
  };
}

function row(workspaceId: string, id: string = randomUUID()): EventRow {
  const now = new Date();
  return {
    id,
    workspaceId,
    userId: null,
    source: 'web',
    eventType: 'custom',
    name: 'x',
    targetType: null,
    targetId: null,
    metadata: null,
    createdAt: now,
    receivedAt: now,
  };
}

describe('group commit', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes concurrent calls together and answers each only after the shared commit', async () => {
    const observed = observedWriter(createEventWriter(testDb.db));
    const committer = createGroupCommitter(observed.writer, options);
    const workspaceId = await newWorkspace();
    observed.hold();
    let answered = 0;
    const calls = Array.from({ length: 40 }, () =>
      committer.write([row(workspaceId)]).then((claimed) => {
        answered += 1;
        return claimed;
      }),
    );
    await observed.firstWrite; // the shared flush is in the database, held there
    expect(answered).toBe(0);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
    observed.release();
    const results = await Promise.all(calls);
    expect(results.every(({ claimed }) => claimed.size === 1)).toBe(true);
    expect(observed.flushes.length).toBeLessThan(40);
    expect(observed.flushes.reduce((a, b) => a + b, 0)).toBe(40);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(40);
  });

  it('gives an event sent by two calls in one flush to the first call only', async () => {
    const committer = createGroupCommitter(createEventWriter(testDb.db), options);
    const workspaceId = await newWorkspace();
    const id = randomUUID();
    const [first, second] = await Promise.all([committer.write([row(workspaceId, id)]), committer.write([row(workspaceId, id)])]);
    expect(first.claimed.has(eventKey({ workspaceId, id }))).toBe(true);
    expect(second.claimed.size).toBe(0);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
  });

  it('stores the same id sent by two calls in one flush for two workspaces as two events, each claimed by its call', async () => {
    const committer = createGroupCommitter(createEventWriter(testDb.db), options);
    const [first, second] = [await newWorkspace(), await newWorkspace()];
    const id = randomUUID();
    const outcomes = await Promise.all([committer.write([row(first, id)]), committer.write([row(second, id)])]);
    expect(outcomes.map((outcome) => [...outcome.claimed])).toEqual([[eventKey({ workspaceId: first, id })], [eventKey({ workspaceId: second, id })]]);
    expect(await storedEvents(testDb.db, first)).toHaveLength(1);
    expect(await storedEvents(testDb.db, second)).toHaveLength(1);
  });

  it('answers ingest calls racing with the same id as one accepted and the rest duplicates', async () => {
    const caller = procedureCaller(testDb.db, { apiKey: keys.ingest });
    const workspaceId = await newWorkspace();
    const id = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => caller.telemetry.ingestBatch({ events: [{ id, workspaceId, source: 'web', eventType: 'custom', name: 'x' }] })),
    );
    const statuses = results.map((r) => r.receipts[0]?.status).sort();
    expect(statuses).toEqual(['accepted', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
  });

  it('refuses at once with a retryable error when the queue is full, and keeps what it accepted', async () => {
    const observed = observedWriter(createEventWriter(testDb.db));
    const metrics = createMetrics({ defaultMetrics: false });
    const committer = createGroupCommitter(observed.writer, { ...options, maxQueuedEvents: 10, maxConcurrentFlushes: 1 }, metrics);
    const workspaceId = await newWorkspace();
    observed.hold();
    const accepted = committer.write(Array.from({ length: 8 }, () => row(workspaceId)));
    // Refused while the accepted write is still held: the call never waits for room in the queue.
    const refused = await committer.write([row(workspaceId), row(workspaceId), row(workspaceId)]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DomainError);
    expect(refused).toMatchObject({ code: 'unavailable', reason: 'overloaded', retryAfterSeconds: 1 });
    expect((await metrics.overloadRefusals.get()).values[0]?.value).toBe(1);
    observed.release();
    expect((await accepted).claimed.size).toBe(8);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(8);
  });

  it('answers 503 with Retry-After over HTTP when the queue is full', async () => {
    const config = testConfig({ INGEST_QUEUE_MAX_EVENTS: '5' });
    const server = await startTestServer(testDb.db, { config });
    const workspaceId = await newWorkspace();
    try {
      const response = await fetch(`${server.url}/api/events/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}` },
        body: JSON.stringify({ events: Array.from({ length: 6 }, () => ({ workspaceId, source: 'web', eventType: 'custom', name: 'x' })) }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
    } finally {
      await server.close();
    }
  });

  it('answers a stalled write with a retryable error at the write deadline, holds its slot until the database answers, and a retry is a duplicate', async () => {
    // The committer's timers (flush delay, write deadline, slot hold) run on a fake clock; the
    // database is not touched until the writer is released, after the real clock is back.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const writeTimeoutMs = 100;
    const observed = observedWriter(createEventWriter(testDb.db));
    const committer = createGroupCommitter(observed.writer, { ...options, maxConcurrentFlushes: 1, writeTimeoutMs });
    const workspaceId = await newWorkspace();
    const stalled = row(workspaceId);
    observed.hold();
    let failed = false;
    const failing = committer.write([stalled]).catch((error: unknown) => {
      failed = true;
      return error;
    });
    await vi.advanceTimersByTimeAsync(options.maxDelayMs);
    await observed.firstWrite;
    await vi.advanceTimersByTimeAsync(writeTimeoutMs - 1);
    expect(failed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const failure = await failing;
    expect(failure).toBeInstanceOf(DomainError);
    expect(failure).toMatchObject({ code: 'unavailable', retryAfterSeconds: expect.any(Number) });

    // The stalled flush still holds the only slot: the next call waits for it.
    let nextAnswered = false;
    const next = committer.write([row(workspaceId)]).then(() => (nextAnswered = true));
    await vi.advanceTimersByTimeAsync(options.maxDelayMs);
    expect(observed.flushes).toHaveLength(1);
    expect(nextAnswered).toBe(false);
    vi.useRealTimers();
    observed.release();
    await next;
    // The stalled write did commit in the end; the client's retry stores nothing new.
    expect((await committer.write([stalled])).claimed.size).toBe(0);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(2);
  });

  it('gives up a flush slot held by a write that never answers after twice the write deadline', async () => {
    const inner = createEventWriter(testDb.db);
    let calls = 0;
    const writer: EventWriter = {
      form: inner.form,
      write(rows) {
        calls += 1;
        // The first write hangs for good, as on a half-open connection.
        return calls === 1 ? new Promise<never>(() => {}) : inner.write(rows);
      },
    };
    const committer = createGroupCommitter(writer, { ...options, maxConcurrentFlushes: 1, writeTimeoutMs: 100 });
    const workspaceId = await newWorkspace();
    await expect(committer.write([row(workspaceId)])).rejects.toMatchObject({ code: 'unavailable' });
    // Were the slot held for good, this call would never be written.
    expect((await committer.write([row(workspaceId)])).claimed.size).toBe(1);
    expect(calls).toBe(2);
  });

  it('once the database is found unavailable, refuses calls at once until a probe finds it answering again', async () => {
    let databaseUp = false;
    const failing = failingWriter(() => (databaseUp ? undefined : Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
    const writer = failing.writer;
    const probe = async () => {
      if (!databaseUp) throw new Error('still down');
    };
    const committer = createGroupCommitter(writer, { ...options, probe, probeIntervalMs: 20 });
    const workspaceId = await newWorkspace();
    await expect(committer.write([row(workspaceId)])).rejects.toMatchObject({ code: 'unavailable' });
    await expect(committer.write([row(workspaceId)])).rejects.toMatchObject({ code: 'unavailable' });
    expect(failing.writes()).toBe(1); // the second call never reached the database

    databaseUp = true;
    // Calls are taken again once the probe (every 20 ms) finds the database answering.
    await vi.waitFor(() => committer.write([row(workspaceId)]), { timeout: 2000, interval: 10 });
  });

  it('when a Citus worker cannot be reached, fails only the calls whose workspaces it holds and keeps taking calls', async () => {
    const [healthy, onLostWorker] = [await newWorkspace(), await newWorkspace()];
    // What the coordinator answers when a statement touches a worker it cannot reach (SQLSTATE 08006).
    const { writer, writes } = failingWriter((rows) =>
      rows.some((r) => r.workspaceId === onLostWorker)
        ? Object.assign(new Error('connection to the remote node 127.0.0.1:9701 failed'), { code: '08006', severity: 'ERROR' })
        : undefined,
    );
    let probes = 0;
    const probe = async () => {
      probes += 1;
    };
    const committer = createGroupCommitter(writer, { ...options, maxDelayMs: 1000, maxFlushEvents: 3, probe, probeIntervalMs: 20 });
    // Three calls in one flush: the shared write fails, then each call is written on its own.
    const outcomes = await Promise.allSettled([committer.write([row(healthy)]), committer.write([row(onLostWorker)]), committer.write([row(healthy)])]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(outcomes[1]).toMatchObject({ reason: { code: 'unavailable' } });
    expect(writes()).toBe(4);
    // The database was not marked down: the next call of a healthy workspace is written at once.
    await expect(committer.write([row(healthy)])).resolves.toMatchObject({ refused: new Set() });
    expect(probes).toBe(0);
    expect(await storedEvents(testDb.db, healthy)).toHaveLength(3);
    expect(await storedEvents(testDb.db, onLostWorker)).toHaveLength(0);
  });

  it('commits everything accepted before drain resolves, and refuses writes after it', async () => {
    const observed = observedWriter(createEventWriter(testDb.db));
    const committer = createGroupCommitter(observed.writer, { ...options, maxDelayMs: 50 });
    const workspaceId = await newWorkspace();
    const pending = Array.from({ length: 10 }, () => committer.write([row(workspaceId)]));
    await committer.drain();
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(10);
    await Promise.all(pending);
    await expect(committer.write([row(workspaceId)])).rejects.toMatchObject({ code: 'unavailable', reason: 'shutting_down' });
  });
});

describe('events the database refuses', () => {
  // A CHECK constraint makes the database itself refuse events with this name (SQLSTATE 23514).
  const REFUSED = 'refused-by-check';
  beforeAll(async () => {
    await testDb.db.rows(sql.raw(`alter table telemetry.events add constraint test_refused_marker check (name <> '${REFUSED}')`));
  });
  afterAll(async () => {
    await testDb.db.rows(sql.raw('alter table telemetry.events drop constraint if exists test_refused_marker'));
  });
  const refusedRow = (workspaceId: string) => ({ ...row(workspaceId), name: REFUSED });

  it('finds the few refused events of a flush by halving, answers them as refused and stores every other event', async () => {
    const observed = observedWriter(createEventWriter(testDb.db));
    const committer = createGroupCommitter(observed.writer, { ...options, maxDelayMs: 1000, maxFlushEvents: 101 });
    const workspaceId = await newWorkspace();
    const rows = Array.from({ length: 100 }, (_, index) => (index % 40 === 7 ? refusedRow(workspaceId) : row(workspaceId)));
    const other = row(randomUUID());
    const [outcome, otherOutcome] = await Promise.all([committer.write(rows), committer.write([other])]);
    const refusedKeys = rows.filter((r) => r.name === REFUSED).map(eventKey);
    expect([...outcome.refused].sort()).toEqual(refusedKeys.sort());
    expect(outcome.claimed.size).toBe(97);
    expect(otherOutcome).toEqual({ claimed: new Set([eventKey(other)]), refused: new Set() });
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(97);
    // The shared flush, the other call's own write, then about 2·log2(100) writes per refused event.
    expect(observed.flushes.length).toBeLessThanOrEqual(2 + 3 * 2 * 7);
  });

  it('spends a bounded number of writes on a call of refused events, refusing the rest together once the budget is spent', async () => {
    const observed = observedWriter(createEventWriter(testDb.db));
    const committer = createGroupCommitter(observed.writer, { ...options, maxFlushEvents: 1000 });
    const workspaceId = await newWorkspace();
    const rows = Array.from({ length: 500 }, () => refusedRow(workspaceId));
    const outcome = await committer.write(rows);
    expect(outcome.refused.size).toBe(500);
    expect(outcome.claimed.size).toBe(0);
    expect(observed.flushes.length).toBeLessThanOrEqual(1 + 64);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });
});

describe('per-minute rollups', () => {
  it('stay equal to the raw events when concurrent flushes count the same minutes', async () => {
    const committer = createGroupCommitter(createEventWriter(testDb.db), { ...options, maxFlushEvents: 10, maxConcurrentFlushes: 4 });
    const workspaceId = await newWorkspace();
    await Promise.all(Array.from({ length: 30 }, () => committer.write(Array.from({ length: 7 }, () => row(workspaceId)))));
    const [raw] = await testDb.db.rows<{ count: string | number }>(sql`select count(*) as count from telemetry.events where workspace_id = ${workspaceId}`);
    const [rolled] = await testDb.db.rows<{ count: string | number }>(
      sql`select coalesce(sum(count), 0) as count from telemetry.event_counts_minute where workspace_id = ${workspaceId}`,
    );
    expect(Number(raw?.count)).toBe(210);
    expect(Number(rolled?.count)).toBe(210);
  });
});

describe('database outage', () => {
  it('fails an ingest fast with a retryable 503 when the database cannot be reached', async () => {
    const unreachable = openPostgres({ url: 'postgres://postgres@127.0.0.1:1/none', connectTimeoutSeconds: 1, maxConnections: 1 });
    const config = testConfig();
    const services = { ...testServices(unreachable, { config }), keys: createKeyService({ db: testDb.db }) };
    const caller = procedureCaller(unreachable, { apiKey: keys.ingest, services, config });
    // The one-second connect timeout and the test's own timeout bound how long this may take.
    const error = await caller.telemetry
      .ingest({ workspaceId: await newWorkspace(), source: 'web', eventType: 'custom', name: 'x' })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    await unreachable.close();
  });
});

describe('metrics', () => {
  it('exposes ingest, latency, flush, queue and rate-limit metrics in Prometheus format', async () => {
    const server = await startTestServer(testDb.db);
    try {
      await fetch(`${server.url}/api/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}` },
        body: JSON.stringify({ workspaceId: await newWorkspace(), source: 'web', eventType: 'custom', name: 'x' }),
      });
      const response = await fetch(`${server.url}/metrics`);
      expect(response.headers.get('content-type')).toContain('text/plain');
      const text = await response.text();
      expect(text).toMatch(/telemetry_events_ingested_total\{status="accepted"\} [1-9]/);
      expect(text).toMatch(/telemetry_procedure_duration_seconds_count\{procedure="telemetry.ingest",code="OK"\} [1-9]/);
      expect(text).toMatch(/telemetry_flush_events_count [1-9]/);
      expect(text).toContain('telemetry_flush_duration_seconds_bucket');
      expect(text).toContain('telemetry_ingest_queue_events 0');
      expect(text).toContain('telemetry_database_errors_total');
      expect(text).toContain('telemetry_rate_limit_refusals_total');
    } finally {
      await server.close();
    }
  });
});

describe('key cache', () => {
  it('drops a key revoked by another instance at once', async () => {
    // Two key services, as two instances would have, each with its own cache.
    const second = testDb.url ? openPostgres({ url: testDb.url, maxConnections: 2 }) : testDb.db;
    const instanceA = createKeyService({ db: testDb.db });
    const instanceB = createKeyService({ db: second, cacheTtlMs: 60_000 });
    const unlisten = await instanceB.followRevocations();
    try {
      const created = await instanceA.createKey({ kind: 'ingest', allWorkspaces: true });
      expect(await instanceB.authenticate(created.key)).toBeDefined();
      await instanceA.revokeKey(created.id, null);
      await expect.poll(() => instanceB.authenticate(created.key), { timeout: 2000, interval: 20 }).toBeUndefined();
    } finally {
      await unlisten();
      if (second !== testDb.db) await second.close();
    }
  });
});

import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTracker, type TrackerOptions, type TrackerProblem } from '../client/tracker.ts';
import { reportWebVitals, type WebVitalsMetric } from '../client/web-vitals.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, createTestWorkspace, startTestServer, testConfig, type TestKeys, type TestServer } from './support/app.ts';

let testDb: TestDatabase;
let keys: TestKeys;
let server: TestServer;
beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  server = await startTestServer(testDb.db);
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

interface StoredRow {
  id: string;
  name: string;
  event_type: string;
  metadata: Record<string, unknown> | null;
  created_ms: number;
}

async function storedIn(workspaceId: string): Promise<StoredRow[]> {
  return testDb.db.rows<StoredRow>(sql`
    select id, name, event_type, metadata, (extract(epoch from created_at) * 1000)::float8 as created_ms
    from telemetry.events where workspace_id = ${workspaceId} order by created_at, name`);
}

/** Counts requests and lets a test break some of them. */
function instrumentedFetch(behaviour: (call: number) => 'pass' | 'fail-before' | 'fail-after' = () => 'pass') {
  let calls = 0;
  const fetch: NonNullable<TrackerOptions['fetch']> = async (input, init) => {
    calls += 1;
    const mode = behaviour(calls);
    if (mode === 'fail-before') throw new TypeError('fetch failed (simulated network error)');
    const response = await globalThis.fetch(input, init);
    // The service stored the batch, but the answer is lost on the way back.
    if (mode === 'fail-after') throw new TypeError('connection reset (simulated, after delivery)');
    return response;
  };
  return { fetch, calls: () => calls };
}

function trackerFor(workspaceId: string, options: Partial<TrackerOptions> = {}) {
  const problems: TrackerProblem[] = [];
  const tracker = createTracker({
    url: server.url,
    apiKey: keys.ingest,
    source: 'backend',
    defaults: { workspaceId },
    storage: null,
    retry: { baseDelayMs: 20, maxDelayMs: 100 },
    onError: (problem) => problems.push(problem),
    ...options,
  });
  return { tracker, problems };
}

describe('tracker', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a batch when flushAt events wait, with the ids and times given when they were tracked', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const requests = instrumentedFetch();
    const { tracker } = trackerFor(workspaceId, { flushAt: 5, flushIntervalMs: 60_000, fetch: requests.fetch });
    const ids = [1, 2, 3, 4, 5].map((n) => tracker.track({ eventType: 'ui.click', name: `button-${n}` }));
    await tracker.flush();
    const rows = await storedIn(workspaceId);
    expect(rows.map((row) => row.id).sort()).toEqual([...ids].sort());
    expect(requests.calls()).toBe(1);
    expect(ids.every((id) => id?.[14] === '7')).toBe(true); // UUIDv7
    await tracker.shutdown();
  });

  it('sends after flushIntervalMs when fewer events wait', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const { tracker } = trackerFor(workspaceId, { flushAt: 100, flushIntervalMs: 50 });
    tracker.track({ eventType: 'custom', name: 'lonely' });
    const deadline = Date.now() + 5000;
    while ((await storedIn(workspaceId)).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect((await storedIn(workspaceId)).map((row) => row.name)).toEqual(['lonely']);
    await tracker.shutdown();
  });

  it('retries network failures with backoff, and a batch delivered but unanswered is stored once', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    // First call never reaches the service; the second reaches it but its answer is lost; then fine.
    const requests = instrumentedFetch((call) => (call === 1 ? 'fail-before' : call === 2 ? 'fail-after' : 'pass'));
    const { tracker, problems } = trackerFor(workspaceId, { fetch: requests.fetch });
    for (let n = 0; n < 10; n += 1) tracker.track({ eventType: 'custom', name: `e${n}` });
    const result = await tracker.flush({ timeoutMs: 5000 });
    expect(result.remaining).toBe(0);
    expect(requests.calls()).toBe(3);
    expect(problems.filter((problem) => problem.kind === 'retrying')).toHaveLength(2);
    const rows = await storedIn(workspaceId);
    expect(rows).toHaveLength(10);
    expect(new Set(rows.map((row) => row.id)).size).toBe(10);
    await tracker.shutdown();
  });

  it('waits at least Retry-After after a 429 before sending again', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    // The tracker's timers and clock are fake until the retry goes out; the gap is read on that clock.
    const calledAt: number[] = [];
    const fetch: NonNullable<TrackerOptions['fetch']> = async (input, init) => {
      calledAt.push(Date.now());
      if (calledAt.length === 1) {
        const body = [
          { error: { json: { message: 'Rate limit exceeded', code: -32029, data: { code: 'TOO_MANY_REQUESTS', httpStatus: 429, retryAfterSeconds: 1 } } } },
        ];
        return new Response(JSON.stringify(body), { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '1' } });
      }
      // The retry reaches the in-process service, whose own timers need the real clock.
      vi.useRealTimers();
      return globalThis.fetch(input, init);
    };
    const { tracker, problems } = trackerFor(workspaceId, { fetch });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    tracker.track({ eventType: 'custom', name: 'limited' });
    const flushed = tracker.flush({ timeoutMs: 5000 });
    for (let step = 0; calledAt.length < 2 && step < 300; step += 1) await vi.advanceTimersByTimeAsync(10);
    await flushed;
    expect(calledAt).toHaveLength(2);
    expect(calledAt[1]! - calledAt[0]!).toBeGreaterThanOrEqual(1000);
    expect(problems).toContainEqual(expect.objectContaining({ kind: 'retrying', attempt: 1 }));
    expect((problems.find((problem) => problem.kind === 'retrying') as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(1000);
    expect(await storedIn(workspaceId)).toHaveLength(1);
    await tracker.shutdown();
  });

  it('never retries a 4xx: a rejected event is reported with its field path and the rest are stored', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const requests = instrumentedFetch();
    const { tracker, problems } = trackerFor(workspaceId, { fetch: requests.fetch });
    tracker.track({ eventType: 'custom', name: 'fine' });
    // A client that bypasses the types (plain JavaScript) sends a malformed metric.
    tracker.track({ eventType: 'perf.metric', name: 'LCP', metadata: { value: 'slow', unit: 'ms' } } as unknown as Parameters<typeof tracker.track>[0]);
    await tracker.flush();
    expect(problems).toEqual([expect.objectContaining({ kind: 'rejected', path: 'metadata.value' })]);
    expect((await storedIn(workspaceId)).map((row) => row.name)).toEqual(['fine']);
    expect(tracker.queueSize()).toBe(0);
    expect(requests.calls()).toBe(1);

    const badKey = trackerFor(workspaceId, { apiKey: 'not-a-key-at-all-0123456789abcdef', fetch: requests.fetch });
    badKey.tracker.track({ eventType: 'custom', name: 'unauthorised' });
    await badKey.tracker.flush();
    expect(badKey.problems).toEqual([expect.objectContaining({ kind: 'rejected', code: 'UNAUTHORIZED' })]);
    expect(requests.calls()).toBe(2);
  });

  it('splits its batches when the service answers 413, and refuses only an event too large on its own', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const small = await startTestServer(testDb.db, { config: testConfig({ MAX_BODY_BYTES: '4096' }) });
    try {
      const problems: TrackerProblem[] = [];
      const tracker = createTracker({
        url: small.url,
        apiKey: keys.ingest,
        source: 'backend',
        defaults: { workspaceId },
        storage: null,
        flushAt: 1000,
        flushIntervalMs: 60_000,
        retry: { baseDelayMs: 20, maxDelayMs: 100 },
        onError: (problem) => problems.push(problem),
      });
      for (let n = 0; n < 40; n += 1) tracker.track({ eventType: 'custom', name: `e${n}`, metadata: { padding: 'x'.repeat(200) } });
      tracker.track({ eventType: 'custom', name: 'huge', metadata: { padding: 'x'.repeat(8000) } });
      expect(await tracker.shutdown({ timeoutMs: 10_000 })).toEqual({ remaining: 0 });
      expect((await storedIn(workspaceId)).length).toBe(40);
      expect(problems.filter((problem) => problem.kind === 'rejected')).toEqual([expect.objectContaining({ code: '413' })]);
    } finally {
      await small.close();
    }
  });

  it('keeps a bounded queue: past maxQueueSize the oldest events are dropped, counted and reported', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const offline = instrumentedFetch(() => 'fail-before');
    const { tracker, problems } = trackerFor(workspaceId, { maxQueueSize: 5, flushAt: 1000, flushIntervalMs: 60_000, fetch: offline.fetch });
    for (let n = 0; n < 8; n += 1) tracker.track({ eventType: 'custom', name: `e${n}` });
    expect(tracker.queueSize()).toBe(5);
    expect(tracker.droppedCount()).toBe(3);
    expect(problems.filter((problem) => problem.kind === 'dropped').at(-1)).toEqual({ kind: 'dropped', count: 1, total: 3 });
    await tracker.shutdown({ timeoutMs: 0 });
  });

  it('samples events at sampleRate but always keeps errors', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    let toss = 0;
    const { tracker } = trackerFor(workspaceId, { sampleRate: 0.5, random: () => (toss++ % 2 === 0 ? 0.1 : 0.9) });
    for (let n = 0; n < 10; n += 1) tracker.track({ eventType: 'custom', name: `e${n}` });
    tracker.trackError(new TypeError('boom'));
    tracker.trackError(new TypeError('boom again'));
    await tracker.shutdown();
    const rows = await storedIn(workspaceId);
    expect(rows.filter((row) => row.event_type === 'custom')).toHaveLength(5);
    expect(
      rows
        .filter((row) => row.event_type === 'error')
        .map((row) => row.metadata?.['message'])
        .sort(),
    ).toEqual(['boom', 'boom again']);
  });

  it('turns web-vitals reports into perf.metric events (ms, CLS as a score)', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const { tracker } = trackerFor(workspaceId);
    const metric = (name: WebVitalsMetric['name'], value: number): WebVitalsMetric => ({ name, value, rating: 'good', delta: value, id: `v5-${name}` });
    reportWebVitals(tracker, {
      onLCP: (report) => report(metric('LCP', 1234)),
      onINP: (report) => report(metric('INP', 88)),
      onCLS: (report) => report(metric('CLS', 0.05)),
      onTTFB: (report) => report(metric('TTFB', 120)),
    });
    await tracker.shutdown();
    const rows = await storedIn(workspaceId);
    const byName = Object.fromEntries(rows.map((row) => [row.name, row.metadata]));
    expect(byName).toMatchObject({
      LCP: { value: 1234, unit: 'ms', rating: 'good' },
      INP: { value: 88, unit: 'ms' },
      CLS: { value: 0.05, unit: 'score' },
      TTFB: { value: 120, unit: 'ms' },
    });
  });

  it('flush() and shutdown() return by their deadline even when a request never answers, keeping the events queued', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const hanging: NonNullable<TrackerOptions['fetch']> = () => new Promise<never>(() => {});
    const { tracker } = trackerFor(workspaceId, { fetch: hanging, flushAt: 1000, flushIntervalMs: 60_000 });
    tracker.track({ eventType: 'custom', name: 'stuck' });
    // The request never answers: only the deadline can end these calls.
    expect(await tracker.flush({ timeoutMs: 200 })).toEqual({ remaining: 1 });
    expect(await tracker.shutdown({ timeoutMs: 200 })).toEqual({ remaining: 1 });
  });

  it('gives up on a request after requestTimeoutMs and retries it', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    let calls = 0;
    const firstHangs: NonNullable<TrackerOptions['fetch']> = (input, init) => {
      calls += 1;
      if (calls > 1) return globalThis.fetch(input, init);
      return new Promise<never>((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    };
    const { tracker, problems } = trackerFor(workspaceId, { fetch: firstHangs, requestTimeoutMs: 100 });
    tracker.track({ eventType: 'custom', name: 'eventually' });
    expect(await tracker.flush({ timeoutMs: 5000 })).toEqual({ remaining: 0 });
    expect(problems).toContainEqual(expect.objectContaining({ kind: 'retrying', attempt: 1 }));
    expect((await storedIn(workspaceId)).map((row) => row.name)).toEqual(['eventually']);
    await tracker.shutdown();
  });

  it('shutdown() delivers what waits and ignores later calls', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const { tracker } = trackerFor(workspaceId, { flushAt: 1000, flushIntervalMs: 60_000 });
    tracker.track({ eventType: 'custom', name: 'last-words' });
    expect(await tracker.shutdown()).toEqual({ remaining: 0 });
    expect(tracker.track({ eventType: 'custom', name: 'too-late' })).toBeUndefined();
    expect((await storedIn(workspaceId)).map((row) => row.name)).toEqual(['last-words']);
  });
});

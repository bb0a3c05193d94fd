import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTelemetryClient, type TelemetryClient } from '../client/index.ts';
import { createLogger } from '../server/logger.ts';
import { createMetrics } from '../server/metrics.ts';
import type { ServiceDeps } from '../server/services/index.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { createMemoryBus } from '../server/services/live/bus.ts';
import { createLiveStreams } from '../server/services/live/live-streams.ts';
import { createRedisBus, windowBytesKey } from '../server/services/live/redis-bus.ts';
import type { StoredEvent } from '../server/services/events/schemas.ts';
import type { JsonObject } from '../server/services/events/json.ts';
import type { Services } from '../server/trpc/context.ts';
import type { TestDatabase } from './support/database.ts';
import { startTestServer, testConfig, type TestKeys, type TestServer, testWiring, createTestWorkspace, openTestDatabaseWithKeys } from './support/app.ts';
import { waitUntil } from './faults/support/wait.ts';

const MiB = 1024 * 1024;

// Tens of ~30 KB events through HTTP, validated and stored: slow on a busy machine.
vi.setConfig({ testTimeout: 120_000 });

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

/**
 * Metadata of 10,000 empty objects: about 30 KB as JSON, about twenty times that as objects on
 * the heap. Distinct objects (not one shared), as a real client would send them.
 */
function emptyObjectsMetadata(): Record<string, object[]> {
  return Object.fromEntries(Array.from({ length: 10 }, (_, n) => [`a${n}`, Array.from({ length: 1000 }, () => ({}))]));
}

function bigEvent(workspaceId: string, name: string) {
  return {
    id: randomUUID(),
    workspaceId,
    source: 'web' as const,
    eventType: 'custom' as const,
    name,
    metadata: emptyObjectsMetadata() as unknown as JsonObject,
  };
}

function subscribe(client: TelemetryClient, input: Parameters<TelemetryClient['telemetry']['live']['subscribe']>[0]) {
  const received: { id: string; name: string }[] = [];
  const errors: unknown[] = [];
  const subscription = client.telemetry.live.subscribe(input, {
    onData: (envelope) => received.push({ id: envelope.id, name: envelope.data.name }),
    onError: (error) => errors.push(error),
  });
  return { received, errors, stop: () => subscription.unsubscribe() };
}

interface Instance {
  services: Services;
  server: TestServer;
  client(apiKey: string): TelemetryClient;
  close(): Promise<void>;
}

async function startInstance(overrides: Record<string, string>, bus?: ServiceDeps['bus']): Promise<Instance> {
  const config = testConfig(overrides);
  const { services, lifecycle } = testWiring(testDb.db, { config, ...(bus && { bus }) });
  const server = await startTestServer(testDb.db, { config, services });
  return {
    services,
    server,
    client: (apiKey) => createTelemetryClient({ url: server.url, apiKey, EventSource }),
    async close() {
      lifecycle.endLiveStreams();
      await server.close();
      await lifecycle.close();
    },
  };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

/** Ingests `count` events of ~30 KB metadata through the typed client, 25 to a batch (under the body limit). */
async function ingestBigEvents(client: TelemetryClient, workspaceId: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let sent = 0; sent < count; sent += 25) {
    const batch = Array.from({ length: Math.min(25, count - sent) }, (_, n) => bigEvent(workspaceId, `big-${sent + n}`));
    const result = await client.telemetry.ingestBatch.mutate({ events: batch });
    expect(result.accepted).toBe(batch.length);
    names.push(...batch.map((event) => event.name));
  }
  return names;
}

/** A stream id of the window's start: the id of a small event streamed before the big ones. */
async function markerStreamId(instance: Instance, readKey: string, workspaceId: string): Promise<string> {
  const stream = subscribe(instance.client(readKey), {});
  await waitUntil(() => instance.services.live.openStreams() === 1, 'the marker stream');
  await instance.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'marker' });
  await waitUntil(() => stream.received.length === 1, 'the marker event');
  stream.stop();
  await waitUntil(() => instance.services.live.openStreams() === 0, 'the marker stream to close');
  return stream.received[0]!.id;
}

describe('the in-memory replay window', () => {
  it('never grows past LIVE_REPLAY_BYTES however big the events are, keeps serving, and replays only what the window holds', async () => {
    const instance = await startInstance({ LIVE_BUS: 'memory', LIVE_REPLAY_BYTES: String(MiB), LIVE_REPLAY_EVENTS: '10000' });
    try {
      const workspaceId = await newWorkspace();
      const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
      const marker = await markerStreamId(instance, readKey, workspaceId);
      const names = await ingestBigEvents(instance.client(keys.ingest), workspaceId, 40);

      // 40 events of ~30 KB JSON (each ~600 KB as parsed objects): more than 1 MiB either way.
      const windowBytes = await metric(instance.server.url, 'telemetry_live_replay_window_bytes');
      const windowEvents = await metric(instance.server.url, 'telemetry_live_replay_window_events');
      expect(windowBytes).toBeGreaterThan(0);
      expect(windowBytes).toBeLessThanOrEqual(MiB);
      expect(windowEvents).toBeLessThan(20);

      // A resume from before them all gets the newest events the window holds, in order, then live ones.
      const resumed = subscribe(instance.client(readKey), { lastEventId: marker });
      await waitUntil(() => resumed.received.length === windowEvents, 'the replayed window');
      await instance.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'after' });
      await waitUntil(() => resumed.received.at(-1)?.name === 'after', 'a live event after the replay');
      resumed.stop();
      expect(resumed.received.map((record) => record.name)).toEqual([...names.slice(names.length - windowEvents), 'after']);
      expect(resumed.errors).toEqual([]);
      expect(await metric(instance.server.url, 'telemetry_live_replay_truncated_total')).toBe(1);
    } finally {
      await instance.close();
    }
  });

  it('reads back at most LIVE_REPLAY_MAX_RESUME_BYTES per resume, then goes on live', async () => {
    const instance = await startInstance({ LIVE_BUS: 'memory', LIVE_REPLAY_BYTES: String(16 * MiB), LIVE_REPLAY_MAX_RESUME_BYTES: String(MiB) });
    try {
      const workspaceId = await newWorkspace();
      const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
      const marker = await markerStreamId(instance, readKey, workspaceId);
      const names = await ingestBigEvents(instance.client(keys.ingest), workspaceId, 30);
      expect(await metric(instance.server.url, 'telemetry_live_replay_window_events')).toBe(31);

      const resumed = subscribe(instance.client(readKey), { lastEventId: marker });
      await waitUntil(() => instance.services.live.openStreams() === 1, 'the resumed stream');
      await instance.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'after' });
      await waitUntil(() => resumed.received.at(-1)?.name === 'after', 'the live event');
      resumed.stop();
      const replayed = resumed.received.slice(0, -1).map((record) => record.name);
      // The oldest of the gap, in order, no more than 1 MiB of it (each record counts ~61 KB).
      expect(replayed.length).toBeGreaterThan(0);
      expect(replayed.length).toBeLessThanOrEqual(17);
      expect(replayed).toEqual(names.slice(0, replayed.length));
      expect(await metric(instance.server.url, 'telemetry_live_replay_truncated_total')).toBe(1);
    } finally {
      await instance.close();
    }
  });
});

describe('a subscriber buffer', () => {
  it('is bounded in bytes as well as events: a slow subscriber of big events is cut off at LIVE_SUBSCRIBER_BUFFER_BYTES', async () => {
    const bus = createMemoryBus({ maxEvents: 10_000, maxBytes: 64 * MiB });
    const live = createLiveStreams({
      bus,
      options: { maxStreamsPerKey: 5, maxDurationMs: 60_000, subscriberBuffer: 10_000, subscriberBufferBytes: MiB, maxResumeBytes: 32 * MiB },
      metrics: createMetrics({ defaultMetrics: false }),
      logger: createLogger('silent'),
    });
    const workspaceId = await newWorkspace();
    const stream = live.open({ keyId: 'k', workspaceId, filter: {}, lastEventId: undefined, signal: undefined });
    const first = stream.next();
    await waitUntil(() => live.openStreams() === 1, 'the stream to subscribe');
    const at = new Date().toISOString();
    const events: StoredEvent[] = Array.from({ length: 40 }, (_, n) => ({
      ...bigEvent(workspaceId, `big-${n}`),
      userId: null,
      targetType: null,
      targetId: null,
      createdAt: at,
      receivedAt: at,
    }));
    await bus.publish(events); // 40 × ~61 KB: past 1 MiB, though far under 10,000 events
    const received = [(await first).value!.event.name];
    for (;;) {
      const next = await stream.next().catch((error: unknown) => error);
      if (next instanceof Error) {
        expect(next).toMatchObject({ code: 'unavailable', reason: 'slow_consumer' });
        break;
      }
      received.push((next as IteratorResult<{ event: StoredEvent }>).value!.event.name);
    }
    expect(received.length).toBeLessThan(20);
    expect(received).toEqual(events.slice(0, received.length).map((event) => event.name));
    expect(live.openStreams()).toBe(0);
  });
});

const redisUrl = process.env.TEST_REDIS_URL;

// Needs a Redis (TEST_REDIS_URL): the in-memory window is tested above; npm test reports it as not run without one.
describe.runIf(redisUrl)('the Redis replay window', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl!, { enableOfflineQueue: true });
  });
  afterAll(() => {
    redis?.disconnect();
  });

  it('never holds more than LIVE_REPLAY_BYTES of entries in Redis, and a resume from the start reads back only that', async () => {
    const stream = `telemetry:test:${randomUUID()}`;
    const bus = createRedisBus({ redis, stream, maxEvents: 100_000, maxBytes: MiB, logger: createLogger('silent') });
    const instance = await startInstance({}, bus);
    try {
      const workspaceId = await newWorkspace();
      const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
      const names = await ingestBigEvents(instance.client(keys.ingest), workspaceId, 60);
      let counted = { events: 0, bytes: 0 };
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        counted = await bus.windowSize();
        const newest = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
        if (newest[0]?.[1].includes(names.at(-1)!)) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }

      // By the bus's accounting, and by reading every entry back: at most 1 MiB of fields.
      const entries = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
      const entryBytes = entries.reduce((sum, [, fields]) => sum + fields.reduce((size, value) => size + Buffer.byteLength(value), 0), 0);
      expect(counted.bytes).toBe(entryBytes);
      expect(entryBytes).toBeLessThanOrEqual(MiB);
      expect(entries.length).toBe(counted.events);
      expect(entries.length).toBeLessThan(40);
      // What Redis itself spends on the stream stays near the bound (60 entries would be ~1.8 MB).
      const memory = Number(await redis.call('MEMORY', 'USAGE', stream, 'SAMPLES', '0'));
      expect(memory).toBeLessThan(1.5 * MiB);

      const resumed = subscribe(instance.client(readKey), { lastEventId: '0-0' });
      await waitUntil(() => resumed.received.length === entries.length, 'the replayed window');
      resumed.stop();
      expect(resumed.received.map((record) => record.name)).toEqual(names.slice(names.length - entries.length));
    } finally {
      await instance.close();
      await redis.del(stream, windowBytesKey(stream));
    }
  });

  it('starts a fresh account when the stream has none (first start of this version), dropping the unaccounted entries', async () => {
    const stream = `telemetry:test:${randomUUID()}`;
    // As an older version left it: entries trimmed by count only, no byte counter.
    for (let n = 0; n < 10; n += 1) await redis.xadd(stream, '*', 'v', '1', 'event', JSON.stringify({ padding: 'x'.repeat(30_000) }));
    const bus = createRedisBus({ redis, stream, maxEvents: 100_000, maxBytes: MiB, logger: createLogger('silent') });
    try {
      const at = new Date().toISOString();
      const workspaceId = await newWorkspace();
      await bus.publish([{ ...bigEvent(workspaceId, 'first'), userId: null, targetType: null, targetId: null, createdAt: at, receivedAt: at }]);
      const size = await bus.windowSize();
      expect(size.events).toBe(1);
      expect(size.bytes).toBeLessThanOrEqual(MiB);
      expect(await redis.xlen(stream)).toBe(1);
    } finally {
      await bus.close();
      await redis.del(stream, windowBytesKey(stream));
    }
  });
});

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { createApp } from '../server/app.ts';
import { EventSource } from 'eventsource';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type TelemetryClient } from '../client/index.ts';
import { createLogger } from '../server/logger.ts';
import type { ServiceDeps } from '../server/services/index.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { createRedisBus, windowBytesKey } from '../server/services/live/redis-bus.ts';
import { createMemoryBus } from '../server/services/live/bus.ts';
import { createLiveStreams } from '../server/services/live/live-streams.ts';
import { createMetrics } from '../server/metrics.ts';
import { createRedisStreamSlots } from '../server/services/live/stream-slots.ts';
import type { StoredEvent } from '../server/services/events/schemas.ts';
import type { Services } from '../server/trpc/context.ts';
import type { TestDatabase } from './support/database.ts';
import {
  startTestServer,
  testConfig,
  type TestKeys,
  type TestServer,
  testServices,
  testWiring,
  createTestWorkspace,
  openTestDatabaseWithKeys,
} from './support/app.ts';

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

interface Received {
  id: string;
  event: StoredEvent;
}

/** A typed live subscription that records what it receives. */
function subscribe(client: TelemetryClient, input: Parameters<TelemetryClient['telemetry']['live']['subscribe']>[0]) {
  const received: Received[] = [];
  const errors: unknown[] = [];
  const subscription = client.telemetry.live.subscribe(input, {
    onData: (envelope) => received.push({ id: envelope.id, event: envelope.data }),
    onError: (error) => errors.push(error),
  });
  return { received, errors, stop: () => subscription.unsubscribe() };
}

const STREAM_OPTIONS = {
  maxStreamsPerKey: 5,
  maxDurationMs: 60_000,
  subscriberBuffer: 100,
  subscriberBufferBytes: 16 * 1024 * 1024,
  maxResumeBytes: 32 * 1024 * 1024,
};

let debugState = () => '';
async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what} (${debugState()})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function event(workspaceId: string, name: string, eventType: 'custom' | 'ui.click' = 'custom') {
  return { id: randomUUID(), workspaceId, source: 'web' as const, eventType, name };
}

function storedEvent(workspaceId: string, name: string): StoredEvent {
  const at = new Date().toISOString();
  return {
    id: randomUUID(),
    workspaceId,
    userId: null,
    source: 'web',
    eventType: 'custom',
    name,
    targetType: null,
    targetId: null,
    metadata: null,
    createdAt: at,
    receivedAt: at,
  };
}

describe('the in-process bus', () => {
  it('keeps the newest replayEvents records and replays those after a stream id, flagging a gap it cannot cover', async () => {
    const bus = createMemoryBus({ maxEvents: 100, maxBytes: 64 * 1024 * 1024 });
    const workspaceId = await newWorkspace();
    const ids: string[] = [];
    const unsubscribe = bus.subscribe((records) => ids.push(...records.map((record) => record.streamId)));
    await bus.publish(Array.from({ length: 150 }, (_, n) => storedEvent(workspaceId, `e${n}`)));
    unsubscribe();
    const collect = async (after: string) => {
      const replay = await bus.replay(after);
      const names: string[] = [];
      for await (const page of replay.pages) names.push(...page.map((record) => record.fields.name));
      return { names, truncated: replay.truncated };
    };
    expect(new Set(ids).size).toBe(150);
    expect(await collect(ids[119]!)).toEqual({ names: Array.from({ length: 30 }, (_, n) => `e${120 + n}`), truncated: false });
    const tooOld = await collect(ids[10]!);
    expect(tooOld.truncated).toBe(true);
    expect(tooOld.names).toHaveLength(100);
  });
});

describe('a slow subscriber', () => {
  it('is cut off at its buffer without skipping anything: it resumes from the last event it got and receives the rest', async () => {
    const bus = createMemoryBus({ maxEvents: 100, maxBytes: 64 * 1024 * 1024 });
    let subscribed: () => void = () => {};
    const hasSubscribed = new Promise<void>((resolve) => (subscribed = resolve));
    const live = createLiveStreams({
      // The test publishes once the stream has subscribed to the bus.
      bus: {
        ...bus,
        subscribe: (listener) => {
          const unsubscribe = bus.subscribe(listener);
          subscribed();
          return unsubscribe;
        },
      },
      options: { ...STREAM_OPTIONS, maxStreamsPerKey: 5, subscriberBuffer: 2 },
      metrics: createMetrics({ defaultMetrics: false }),
      logger: createLogger('silent'),
    });
    const workspaceId = await newWorkspace();
    const stream = live.open({ keyId: 'k', workspaceId, filter: {}, lastEventId: undefined, signal: undefined });
    const first = stream.next(); // starts the stream
    await hasSubscribed;
    await bus.publish(['n1', 'n2', 'n3'].map((name) => storedEvent(workspaceId, name))); // n3 overflows
    const received = [(await first).value!];
    await bus.publish([storedEvent(workspaceId, 'n4')]); // after the overflow: not taken
    received.push((await stream.next()).value!);
    await expect(stream.next()).rejects.toMatchObject({ code: 'unavailable', reason: 'slow_consumer' });
    expect(received.map((record) => record.event.name)).toEqual(['n1', 'n2']);

    const resumed = live.open({ keyId: 'k', workspaceId, filter: {}, lastEventId: received[1]!.streamId, signal: undefined });
    const rest = [(await resumed.next()).value!, (await resumed.next()).value!];
    expect(rest.map((record) => record.event.name)).toEqual(['n3', 'n4']);
    await resumed.return(undefined);
    expect(live.openStreams()).toBe(0);
  });

  it('does not let concurrent opens of one key exceed its limit', async () => {
    const slowShared = { acquire: () => new Promise<never>((_, reject) => setTimeout(() => reject(new Error('Redis is down')), 20)) };
    const live = createLiveStreams({
      bus: createMemoryBus({ maxEvents: 100, maxBytes: 64 * 1024 * 1024 }),
      options: { ...STREAM_OPTIONS, maxStreamsPerKey: 2, subscriberBuffer: 10 },
      metrics: createMetrics({ defaultMetrics: false }),
      logger: createLogger('silent'),
      sharedSlots: slowShared,
    });
    const controller = new AbortController();
    const streams = Array.from({ length: 5 }, () =>
      live.open({ keyId: 'k', workspaceId: randomUUID(), filter: {}, lastEventId: undefined, signal: controller.signal }),
    );
    const firsts = streams.map((stream) =>
      stream.next().then(
        () => 'open',
        (error: { reason?: string }) => error.reason,
      ),
    );
    // Five are counted at once; the three over the limit are refused once the shared count fails.
    await waitFor(() => live.openStreams() === 2, 'the refused opens to be released');
    controller.abort();
    expect((await Promise.all(firsts)).filter((outcome) => outcome === 'too_many_streams')).toHaveLength(3);
    await Promise.all(streams.map((stream) => stream.return(undefined)));
  });

  it('ends a stream opened while the instance shuts down at once', async () => {
    const live = createLiveStreams({
      bus: createMemoryBus({ maxEvents: 100, maxBytes: 64 * 1024 * 1024 }),
      options: { ...STREAM_OPTIONS, maxStreamsPerKey: 2, subscriberBuffer: 10 },
      metrics: createMetrics({ defaultMetrics: false }),
      logger: createLogger('silent'),
    });
    live.endAll();
    await expect(live.open({ keyId: 'k', workspaceId: randomUUID(), filter: {}, lastEventId: undefined, signal: undefined }).next()).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(live.openStreams()).toBe(0);
  });
});

interface Instance {
  services: Services;
  server: TestServer;
  client(apiKey: string): TelemetryClient;
  close(): Promise<void>;
}

async function startInstance(overrides: Record<string, string> = {}, bus?: ServiceDeps['bus'], streamSlots?: ServiceDeps['streamSlots']): Promise<Instance> {
  const config = testConfig(overrides);
  const { services, lifecycle } = testWiring(testDb.db, { config, ...(bus && { bus }), ...(streamSlots && { streamSlots }) });
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

describe('telemetry.live', () => {
  let instance: Instance;
  let readKey: string;
  let workspaceId: string;
  beforeAll(async () => {
    instance = await startInstance({ LIVE_MAX_STREAMS_PER_KEY: '2' });
    debugState = () => `open streams: ${instance.services.live.openStreams()}`;
    workspaceId = await newWorkspace();
    readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
  });
  afterAll(async () => {
    await instance?.close();
  });
  afterEach(async () => {
    // A client that went away frees its stream on the server.
    await waitFor(() => instance.services.live.openStreams() === 0, 'every stream to be freed');
  });

  it('streams newly committed events of its workspace that match the filters, each with a stream id', async () => {
    const reader = instance.client(readKey);
    const ingest = instance.client(keys.ingest);
    const all = subscribe(reader, {});
    const clicks = subscribe(reader, { eventType: 'ui.click' });
    await waitFor(() => instance.services.live.openStreams() === 2, 'two open streams');

    await ingest.telemetry.ingestBatch.mutate({
      events: [event(workspaceId, 'a', 'ui.click'), event(workspaceId, 'b'), event(await newWorkspace(), 'other workspace', 'ui.click')],
    });
    await waitFor(() => all.received.length === 2 && clicks.received.length === 1, 'the workspace’s two events');
    all.stop();
    clicks.stop();

    expect(all.received.map((r) => r.event.name)).toEqual(['a', 'b']);
    expect(clicks.received.map((r) => r.event.name)).toEqual(['a']);
    expect(all.received.every((r) => /^\d+-\d+$/.test(r.id) && r.event.workspaceId === workspaceId)).toBe(true);
    await waitFor(() => instance.services.live.openStreams() === 0, 'streams freed after unsubscribing');
  });

  it('streams a retried event once: a duplicate is not a new event', async () => {
    const reader = instance.client(readKey);
    const ingest = instance.client(keys.ingest);
    const stream = subscribe(reader, {});
    await waitFor(() => instance.services.live.openStreams() === 1, 'an open stream');
    const once = event(workspaceId, 'retried');
    await ingest.telemetry.ingest.mutate(once);
    await ingest.telemetry.ingest.mutate(once);
    await ingest.telemetry.ingest.mutate(event(workspaceId, 'marker'));
    await waitFor(() => stream.received.some((r) => r.event.name === 'marker'), 'the marker event');
    stream.stop();
    expect(stream.received.map((r) => r.event.name)).toEqual(['retried', 'marker']);
  });

  it('resumes from lastEventId with every event it missed and no duplicates', async () => {
    const reader = instance.client(readKey);
    const ingest = instance.client(keys.ingest);
    const first = subscribe(reader, {});
    await waitFor(() => instance.services.live.openStreams() === 1, 'an open stream');
    await ingest.telemetry.ingestBatch.mutate({ events: [1, 2, 3].map((n) => event(workspaceId, `before-${n}`)) });
    await waitFor(() => first.received.length === 3, 'three events');
    first.stop();
    await waitFor(() => instance.services.live.openStreams() === 0, 'the stream to close');

    // Events committed while the client was away, some of another workspace.
    await ingest.telemetry.ingestBatch.mutate({
      events: [event(workspaceId, 'missed-1'), event(await newWorkspace(), 'elsewhere'), event(workspaceId, 'missed-2')],
    });

    const resumed = subscribe(reader, { lastEventId: first.received.at(-1)!.id });
    await waitFor(() => resumed.received.length === 2, 'the missed events');
    await waitFor(() => instance.services.live.openStreams() === 1, 'the resumed stream');
    await ingest.telemetry.ingest.mutate(event(workspaceId, 'after'));
    await waitFor(() => resumed.received.length === 3, 'the new event');
    resumed.stop();

    expect(resumed.received.map((r) => r.event.name)).toEqual(['missed-1', 'missed-2', 'after']);
    const ids = [...first.received, ...resumed.received].map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('refuses a key more concurrent streams than allowed with TOO_MANY_REQUESTS (429), and frees a slot when a client leaves', async () => {
    const reader = instance.client(readKey);
    const one = subscribe(reader, {});
    const two = subscribe(reader, {});
    await waitFor(() => instance.services.live.openStreams() === 2, 'two open streams');
    const three = subscribe(reader, {});
    await waitFor(() => three.errors.length === 1, 'the third stream to be refused');
    expect(three.errors[0]).toMatchObject({ data: { code: 'TOO_MANY_REQUESTS', httpStatus: 429, reason: 'too_many_streams' } });

    one.stop();
    await waitFor(() => instance.services.live.openStreams() === 1, 'the first stream’s slot to be freed');
    const four = subscribe(reader, {});
    await waitFor(() => instance.services.live.openStreams() === 2, 'a new stream in the freed slot');
    expect(four.errors).toEqual([]);
    two.stop();
    three.stop();
    four.stop();
    await waitFor(() => instance.services.live.openStreams() === 0, 'every slot freed');
  });

  it('is scoped like every read: no key is 401, an ingest key 403, another workspace 403', async () => {
    const anonymous = subscribe(createTelemetryClient({ url: instance.server.url, EventSource }), { workspaceId });
    const ingestKey = subscribe(instance.client(keys.ingest), { workspaceId });
    const otherWorkspace = subscribe(instance.client(readKey), { workspaceId: randomUUID() });
    await waitFor(() => anonymous.errors.length + ingestKey.errors.length + otherWorkspace.errors.length === 3, 'three refusals');
    expect(anonymous.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED' } });
    expect(ingestKey.errors[0]).toMatchObject({ data: { code: 'FORBIDDEN' } });
    expect(otherWorkspace.errors[0]).toMatchObject({ data: { code: 'FORBIDDEN' } });
    expect(instance.services.live.openStreams()).toBe(0);
  });

  it('rejects a malformed lastEventId with the field path', async () => {
    const stream = subscribe(instance.client(readKey), { lastEventId: 'not-an-id' });
    await waitFor(() => stream.errors.length === 1, 'the refusal');
    expect(stream.errors[0]).toMatchObject({ data: { code: 'BAD_REQUEST', issues: [{ path: 'lastEventId' }] } });
  });

  it('takes a key from connectionParams for live streams only, never for other calls', async () => {
    const params = encodeURIComponent(JSON.stringify({ apiKey: keys.admin }));
    const response = await fetch(`${instance.server.url}/trpc/admin.keys.create?connectionParams=${params}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ json: { kind: 'read', workspaceId } }),
    });
    expect(response.status).toBe(401);
  });

  it('serves plain SSE to any HTTP client: the key in connectionParams, an id on every event', async () => {
    const controller = new AbortController();
    const input = encodeURIComponent(JSON.stringify({ json: {} }));
    const params = encodeURIComponent(JSON.stringify({ apiKey: readKey }));
    const response = await fetch(`${instance.server.url}/trpc/telemetry.live?input=${input}&connectionParams=${params}`, {
      headers: { accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    await waitFor(() => instance.services.live.openStreams() === 1, 'the raw stream');
    await instance.client(keys.ingest).telemetry.ingest.mutate(event(workspaceId, 'raw'));

    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('"raw"')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    expect(text).toMatch(/event: connected/);
    expect(text).toMatch(/data: .*"raw".*\nid: \d+-\d+\n/);
    await waitFor(() => instance.services.live.openStreams() === 0, 'the aborted stream to be freed');
  });
});

describe('telemetry.live through a failing reconnect', () => {
  it('resubscribes after a reconnect answered 503 and receives what it missed, once', async () => {
    // Streams end after a second (their maximum duration) and the client reconnects.
    const config = testConfig({ LIVE_MAX_DURATION_S: '1' });
    const services = testServices(testDb.db, { config });
    let refuseLive = false;
    const app = new Hono();
    // As an instance that is shutting down answers: a plain 503, not an event stream.
    app.use('/trpc/telemetry.live', async (c, next) => {
      if (refuseLive) {
        refuseLive = false;
        return c.json({ error: 'shutting down' }, 503);
      }
      await next();
    });
    app.route('/', createApp({ db: testDb.db, config, logger: createLogger('silent'), services }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const workspaceId = await newWorkspace();
      const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
      const ingest = createTelemetryClient({ url, apiKey: keys.ingest });
      const stream = subscribe(createTelemetryClient({ url, apiKey: readKey, EventSource }), {});
      await waitFor(() => services.live.openStreams() === 1, 'the stream');
      await ingest.telemetry.ingest.mutate(event(workspaceId, 'before'));
      await waitFor(() => stream.received.length === 1, 'the first event');

      refuseLive = true; // the next reconnect is refused with a 503
      await waitFor(() => !refuseLive && services.live.openStreams() === 0, 'a refused reconnect');
      await ingest.telemetry.ingest.mutate(event(workspaceId, 'during-the-gap'));
      await waitFor(() => stream.received.length === 2, 'the missed event after resubscribing', 15_000);
      await ingest.telemetry.ingest.mutate(event(workspaceId, 'after'));
      await waitFor(() => stream.received.length === 3, 'the next event');
      stream.stop();
      expect(stream.received.map((r) => r.event.name)).toEqual(['before', 'during-the-gap', 'after']);
      expect(stream.errors).toEqual([]);
    } finally {
      server.close();
      if ('closeAllConnections' in server) server.closeAllConnections();
    }
  });
});

describe('telemetry.live maximum duration', () => {
  it('ends a stream at its maximum duration; the client reconnects on its own and loses nothing across the boundary', async () => {
    const instance = await startInstance({ LIVE_MAX_DURATION_S: '1' });
    try {
      const workspaceId = await newWorkspace();
      const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
      const stream = subscribe(instance.client(readKey), {});
      const ingest = instance.client(keys.ingest);
      await waitFor(() => instance.services.live.openStreams() === 1, 'an open stream');
      const names: string[] = [];
      // Events every 100 ms for 2.5 s: the stream is cut at least twice meanwhile.
      for (let n = 0; n < 25; n += 1) {
        names.push(`tick-${n}`);
        await ingest.telemetry.ingest.mutate(event(workspaceId, `tick-${n}`));
        // Paces the load over the 1 s boundaries (not a wait for something to happen).
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await waitFor(() => stream.received.length >= names.length, 'every tick', 15_000);
      stream.stop();
      expect(stream.received.map((r) => r.event.name)).toEqual(names);
      expect(stream.errors).toEqual([]);
    } finally {
      await instance.close();
    }
  });
});

const redisUrl = process.env.TEST_REDIS_URL;

// Needs a Redis (TEST_REDIS_URL): streams cross instances only through it; npm test reports it as not run without one.
describe.runIf(redisUrl)('telemetry.live across instances (Redis Streams)', () => {
  const stream = `telemetry:test:${randomUUID()}`;
  let redis: Redis;
  let first: Instance;
  let second: Instance;
  beforeAll(async () => {
    redis = new Redis(redisUrl!, { enableOfflineQueue: true });
    first = await startInstance({}, createRedisBus({ redis, stream, maxEvents: 1000, maxBytes: 64 * 1024 * 1024, logger: createLogger('silent') }));
    second = await startInstance({}, createRedisBus({ redis, stream, maxEvents: 1000, maxBytes: 64 * 1024 * 1024, logger: createLogger('silent') }));
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await redis?.del(stream, windowBytesKey(stream));
    redis?.disconnect();
  });

  it('delivers an event ingested on one instance to subscribers on every instance, and resumes across instances', async () => {
    const workspaceId = await newWorkspace();
    const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
    const onFirst = subscribe(first.client(readKey), {});
    const onSecond = subscribe(second.client(readKey), {});
    await waitFor(() => first.services.live.openStreams() === 1 && second.services.live.openStreams() === 1, 'a stream on each instance');

    await first.client(keys.ingest).telemetry.ingest.mutate(event(workspaceId, 'from-first'));
    await second.client(keys.ingest).telemetry.ingest.mutate(event(workspaceId, 'from-second'));
    await waitFor(() => onFirst.received.length === 2 && onSecond.received.length === 2, 'both events on both instances');
    expect(onFirst.received.map((r) => r.event.name).sort()).toEqual(['from-first', 'from-second']);
    expect(onSecond.received.map((r) => r.id)).toEqual(onFirst.received.map((r) => r.id));
    onFirst.stop();

    // Missed on the first instance, resumed on the second: stream ids are shared.
    await first.client(keys.ingest).telemetry.ingest.mutate(event(workspaceId, 'while-away'));
    await waitFor(() => onSecond.received.length === 3, 'the third event');
    const resumed = subscribe(second.client(readKey), { lastEventId: onFirst.received.at(-1)!.id });
    await waitFor(() => resumed.received.length === 1, 'the missed event');
    expect(resumed.received[0]!.event.name).toBe('while-away');
    resumed.stop();
    onSecond.stop();
  });

  it('bounds a key’s live streams across instances, not per instance, and frees a slot when a stream ends', async () => {
    const slotPrefix = `telemetry:test:slots:${randomUUID()}:`;
    const config = { LIVE_MAX_STREAMS_PER_KEY: '2' };
    const one = await startInstance(config, undefined, createRedisStreamSlots({ redis, prefix: slotPrefix }));
    const two = await startInstance(config, undefined, createRedisStreamSlots({ redis, prefix: slotPrefix }));
    try {
      const workspaceId = await newWorkspace();
      const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
      const onOne = subscribe(one.client(readKey), {});
      const onTwo = subscribe(two.client(readKey), {});
      await waitFor(() => one.services.live.openStreams() === 1 && two.services.live.openStreams() === 1, 'a stream on each instance');
      const third = subscribe(one.client(readKey), {});
      await waitFor(() => third.errors.length === 1, 'the third stream to be refused');
      expect(third.errors[0]).toMatchObject({ data: { code: 'TOO_MANY_REQUESTS', reason: 'too_many_streams' } });
      onTwo.stop();
      await waitFor(() => two.services.live.openStreams() === 0, 'the second instance’s stream to end');
      const fourth = subscribe(one.client(readKey), {});
      await waitFor(() => one.services.live.openStreams() === 2, 'a new stream in the freed slot');
      expect(fourth.errors).toEqual([]);
      onOne.stop();
      third.stop();
      fourth.stop();
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('counts streams on each instance when the shared slots cannot answer', async () => {
    const unreachable = { acquire: () => Promise.reject(new Error('Redis is down')) };
    const instance = await startInstance({ LIVE_MAX_STREAMS_PER_KEY: '1' }, undefined, unreachable);
    try {
      const workspaceId = await newWorkspace();
      const readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
      const first = subscribe(instance.client(readKey), {});
      await waitFor(() => instance.services.live.openStreams() === 1, 'the first stream');
      const second = subscribe(instance.client(readKey), {});
      await waitFor(() => second.errors.length === 1, 'the second stream to be refused');
      expect(second.errors[0]).toMatchObject({ data: { code: 'TOO_MANY_REQUESTS' } });
      first.stop();
      second.stop();
    } finally {
      await instance.close();
    }
  });

  it('replays a long gap page by page, in order, and says when the window no longer reaches back far enough', async () => {
    const replayStream = `telemetry:test:${randomUUID()}`;
    const bus = createRedisBus({ redis, stream: replayStream, maxEvents: 1000, maxBytes: 64 * 1024 * 1024, logger: createLogger('silent') });
    try {
      const workspaceId = await newWorkspace();
      const events = Array.from({ length: 2500 }, (_, n) => storedEvent(workspaceId, `e${n}`));
      await bus.publish(events.slice(0, 1));
      const [first] = (await redis.xrange(replayStream, '-', '+', 'COUNT', 1)) as [string, string[]][];
      await bus.publish(events.slice(1));
      const replay = await bus.replay(first![0]);
      const names: string[] = [];
      let pages = 0;
      for await (const page of replay.pages) {
        pages += 1;
        names.push(...page.map((record) => record.fields.name));
      }
      // Trimmed exactly to the newest 1000.
      expect(replay.truncated).toBe(true);
      expect(names.length).toBe(1000);
      expect(names).toEqual(events.slice(2500 - names.length).map((event) => event.name));
      expect(pages).toBeGreaterThan(1);
    } finally {
      await bus.close();
      await redis.del(replayStream, windowBytesKey(replayStream));
    }
  });

  it('writes records other services can read with a consumer group, in the documented format', async () => {
    const group = `test-${randomUUID()}`;
    await redis.xgroup('CREATE', stream, group, '$', 'MKSTREAM');
    const workspaceId = await newWorkspace();
    const sent = event(workspaceId, 'for-consumers', 'ui.click');
    await first.client(keys.ingest).telemetry.ingest.mutate(sent);
    const deadline = Date.now() + 5000;
    let entries: [string, string[]][] = [];
    while (entries.length === 0 && Date.now() < deadline) {
      const result = (await redis.xreadgroup('GROUP', group, 'consumer-1', 'COUNT', 10, 'BLOCK', 500, 'STREAMS', stream, '>')) as
        | [string, [string, string[]][]][]
        | null;
      entries = result?.[0]?.[1] ?? [];
    }
    expect(entries).toHaveLength(1);
    const fields = Object.fromEntries(entries[0]![1].flatMap((value, index, all) => (index % 2 === 0 ? [[value, all[index + 1]]] : [])));
    expect(fields).toMatchObject({ v: '1', workspaceId, eventType: 'ui.click', name: 'for-consumers', source: 'web' });
    expect(JSON.parse(fields.event as string)).toMatchObject({ id: sent.id, workspaceId, name: 'for-consumers' });
    await redis.xack(stream, group, entries[0]![0]);
  });
});

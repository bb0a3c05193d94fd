import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../../client/index.ts';
import { createKeyService } from '../../server/services/keys/keys.ts';
import { createRateLimiter } from '../../server/services/limits/rate-limiter.ts';
import { createServices } from '../../server/services/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { capturingLogger, startTestServer, testConfig, type TestServer } from '../support/app.ts';
import { storedEvents } from '../support/events.ts';

let testDb: TestDatabase;
let server: TestServer;
const MAX_CALLS_PER_HTTP_BATCH = 5;

beforeAll(async () => {
  testDb = await openTestDatabase();
  server = await startTestServer(testDb.db, { config: testConfig({ MAX_TRPC_BATCH_CALLS: String(MAX_CALLS_PER_HTTP_BATCH) }) });
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

async function keyWithLimit(eventsPerSecond: number, burst: number, workspaceId?: string) {
  return (await createKeyService({ db: testDb.db }).createKey({ kind: 'ingest', rateLimit: { eventsPerSecond, burst }, ...(workspaceId && { workspaceId }) })).key;
}

const event = (workspaceId: string, name = 'x') => ({ workspaceId, source: 'web' as const, eventType: 'custom' as const, name });

function postBatch(baseUrl: string, key: string, events: unknown[]) {
  return fetch(`${baseUrl}/api/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ events }),
  });
}

describe('per-key rate limits', () => {
  it('count a batch per event and answer 429 with Retry-After once the budget is spent', async () => {
    const workspaceId = randomUUID();
    const key = await keyWithLimit(10, 0);
    const first = await postBatch(server.url, key, Array.from({ length: 10 }, () => event(workspaceId)));
    expect(first.status).toBe(200);
    const second = await postBatch(server.url, key, [event(workspaceId, 'over')]);
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await second.json()) as { code: string }).code).toBe('TOO_MANY_REQUESTS');
    expect((await storedEvents(testDb.db, workspaceId)).map((e) => e.name)).not.toContain('over');
  });

  it('keep serving other keys while one key floods', async () => {
    const flooder = await keyWithLimit(5, 0);
    const neighbour = await keyWithLimit(5, 0);
    const workspaceId = randomUUID();
    const statuses = await Promise.all(Array.from({ length: 20 }, () => postBatch(server.url, flooder, [event(workspaceId)]).then((r) => r.status)));
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(15);
    expect((await postBatch(server.url, neighbour, [event(workspaceId)])).status).toBe(200);
  });

  it('refuse a call costing more than the whole budget with 413, since no retry could pass', async () => {
    const key = await keyWithLimit(5, 5);
    const workspaceId = randomUUID();
    const response = await postBatch(server.url, key, Array.from({ length: 11 }, () => event(workspaceId)));
    expect(response.status).toBe(413);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('use the burst allowance above the sustained rate', async () => {
    const key = await keyWithLimit(5, 10);
    const workspaceId = randomUUID();
    expect((await postBatch(server.url, key, Array.from({ length: 15 }, () => event(workspaceId)))).status).toBe(200);
    expect((await postBatch(server.url, key, [event(workspaceId)])).status).toBe(429);
  });

  it('count each call of a batched HTTP request on its own', async () => {
    const key = await keyWithLimit(3, 0);
    const workspaceId = randomUUID();
    const client = createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${key}` } });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, n) => client.telemetry.ingest.mutate(event(workspaceId, `call-${n}`))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused.map((r) => (r.reason as { data?: { httpStatus?: number } }).data?.httpStatus)).toEqual([429, 429]);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(3);
  });

  it('refuse an HTTP batch of more calls than allowed, storing nothing', async () => {
    const key = await keyWithLimit(1000, 0);
    const workspaceId = randomUUID();
    const calls = MAX_CALLS_PER_HTTP_BATCH + 1;
    const paths = Array.from({ length: calls }, () => 'telemetry.ingest').join(',');
    const body = Object.fromEntries(Array.from({ length: calls }, (_, n) => [String(n), { json: event(workspaceId) }]));
    const response = await fetch(`${server.url}/trpc/${paths}?batch=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('Batch call exceeds maximum size');
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });
});

describe('rate limits when Redis is unreachable', () => {
  it('keep ingest going on per-instance memory budgets, and say so in the logs', async () => {
    const { logger, lines } = capturingLogger();
    const redis = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
    redis.on('error', () => {});
    await redis.connect().catch(() => {});
    const config = testConfig();
    const limiter = createRateLimiter({ redis, logger });
    const services = createServices({ db: testDb.db, config, rateLimiter: limiter });
    const down = await startTestServer(testDb.db, { services, logger });
    try {
      const key = await keyWithLimit(3, 0);
      const workspaceId = randomUUID();
      expect((await postBatch(down.url, key, [event(workspaceId), event(workspaceId), event(workspaceId)])).status).toBe(200);
      expect((await postBatch(down.url, key, [event(workspaceId)])).status).toBe(429);
      expect(limiter.store()).toBe('memory-fallback');
      expect(limiter.fallbackCount()).toBeGreaterThan(0);
      expect(lines.some((l) => l.level === 'warn' && l.line.includes('Redis unreachable'))).toBe(true);
    } finally {
      await down.close();
      redis.disconnect();
    }
  });
});

describe.runIf(process.env.TEST_REDIS_URL)('rate limits shared through Redis', () => {
  it('give two instances one budget per key', async () => {
    const prefix = `telemetry-test:${randomUUID()}`;
    const connect = () => new Redis(process.env.TEST_REDIS_URL!, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
    const [redisA, redisB] = [connect(), connect()];
    await Promise.all([redisA.ping(), redisB.ping()]);
    const config = testConfig();
    const limiterA = createRateLimiter({ redis: redisA, logger: capturingLogger().logger, keyPrefix: prefix });
    const limiterB = createRateLimiter({ redis: redisB, logger: capturingLogger().logger, keyPrefix: prefix });
    const instanceA = await startTestServer(testDb.db, { services: createServices({ db: testDb.db, config, rateLimiter: limiterA }) });
    const instanceB = await startTestServer(testDb.db, { services: createServices({ db: testDb.db, config, rateLimiter: limiterB }) });
    try {
      const key = await keyWithLimit(4, 0);
      const workspaceId = randomUUID();
      expect((await postBatch(instanceA.url, key, [event(workspaceId), event(workspaceId), event(workspaceId)])).status).toBe(200);
      expect((await postBatch(instanceB.url, key, [event(workspaceId)])).status).toBe(200);
      expect((await postBatch(instanceB.url, key, [event(workspaceId)])).status).toBe(429);
      expect((await postBatch(instanceA.url, key, [event(workspaceId)])).status).toBe(429);
      expect(limiterA.store()).toBe('redis');
      expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(4);
    } finally {
      await instanceA.close();
      await instanceB.close();
      redisA.disconnect();
      redisB.disconnect();
    }
  });
});

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../../client/index.ts';
import { createKeyService } from '../../server/services/keys/keys.ts';
import { createRateLimiter } from '../../server/services/limits/rate-limiter.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import { capturingLogger, startTestServer, testConfig, type TestServer, testServices, createTestWorkspace } from '../support/app.ts';
import { storedEvents } from '../support/events.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
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
  return (
    await createKeyService({ db: testDb.db }).createKey({
      kind: 'ingest',
      rateLimit: { eventsPerSecond, burst },
      ...(workspaceId ? { workspaceId } : { allWorkspaces: true }),
    })
  ).key;
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
    const workspaceId = await newWorkspace();
    const key = await keyWithLimit(10, 0);
    const first = await postBatch(
      server.url,
      key,
      Array.from({ length: 10 }, () => event(workspaceId)),
    );
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
    const workspaceId = await newWorkspace();
    const statuses = await Promise.all(Array.from({ length: 20 }, () => postBatch(server.url, flooder, [event(workspaceId)]).then((r) => r.status)));
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(15);
    expect((await postBatch(server.url, neighbour, [event(workspaceId)])).status).toBe(200);
  });

  it('refuse a call costing more than the whole budget with 413, since no retry could pass', async () => {
    const key = await keyWithLimit(5, 5);
    const workspaceId = await newWorkspace();
    const response = await postBatch(
      server.url,
      key,
      Array.from({ length: 11 }, () => event(workspaceId)),
    );
    expect(response.status).toBe(413);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('use the burst allowance above the sustained rate', async () => {
    const key = await keyWithLimit(5, 10);
    const workspaceId = await newWorkspace();
    expect(
      (
        await postBatch(
          server.url,
          key,
          Array.from({ length: 15 }, () => event(workspaceId)),
        )
      ).status,
    ).toBe(200);
    expect((await postBatch(server.url, key, [event(workspaceId)])).status).toBe(429);
  });

  it('count each call of a batched HTTP request on its own', async () => {
    const key = await keyWithLimit(3, 0);
    const workspaceId = await newWorkspace();
    const client = createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${key}` } });
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, n) => client.telemetry.ingest.mutate(event(workspaceId, `call-${n}`))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused.map((r) => (r.reason as { data?: { httpStatus?: number } }).data?.httpStatus)).toEqual([429, 429]);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(3);
  });

  it('refuse an HTTP batch of more calls than allowed, storing nothing', async () => {
    const key = await keyWithLimit(1000, 0);
    const workspaceId = await newWorkspace();
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
    const services = testServices(testDb.db, { config, rateLimiter: limiter });
    const down = await startTestServer(testDb.db, { services, logger });
    try {
      const key = await keyWithLimit(3, 0);
      const workspaceId = await newWorkspace();
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

// Needs a Redis (TEST_REDIS_URL): limits are shared between instances only through it.
describe.runIf(process.env.TEST_REDIS_URL)('rate limits shared through Redis', () => {
  it('give two instances one budget per key', async () => {
    const prefix = `telemetry-test:${randomUUID()}`;
    const connect = () => new Redis(process.env.TEST_REDIS_URL!, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
    const [redisA, redisB] = [connect(), connect()];
    await Promise.all([redisA.ping(), redisB.ping()]);
    const config = testConfig();
    const limiterA = createRateLimiter({ redis: redisA, logger: capturingLogger().logger, keyPrefix: prefix });
    const limiterB = createRateLimiter({ redis: redisB, logger: capturingLogger().logger, keyPrefix: prefix });
    const instanceA = await startTestServer(testDb.db, { services: testServices(testDb.db, { config, rateLimiter: limiterA }) });
    const instanceB = await startTestServer(testDb.db, { services: testServices(testDb.db, { config, rateLimiter: limiterB }) });
    try {
      const key = await keyWithLimit(4, 0);
      const workspaceId = await newWorkspace();
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

describe('per-workspace rate ceilings', () => {
  // Every workspace's ingest keys share 1 event/s plus a burst of 9 (per 10 s): one batch of 6 fits
  // (1 sustained + 5 burst) whichever second it lands in, two never do.
  const ceilingConfig = () => testConfig({ RATE_LIMIT_WORKSPACE_INGEST_EPS: '1', RATE_LIMIT_WORKSPACE_INGEST_BURST: '9' });
  const batchOf = (workspaceId: string, n: number) => Array.from({ length: n }, () => event(workspaceId));
  const admin = (url: string, key: string) => createTelemetryClient({ url, apiKey: key });

  it('keep two keys of one workspace together within its ceiling, leave other workspaces alone, and let only an unbound admin raise it', async () => {
    const ceilingServer = await startTestServer(testDb.db, { config: ceilingConfig() });
    try {
      const [workspace, other] = [await newWorkspace(), await newWorkspace()];
      const keys = createKeyService({ db: testDb.db });
      const unbound = admin(ceilingServer.url, (await keys.createKey({ kind: 'admin' })).key);
      const bound = admin(ceilingServer.url, (await keys.createKey({ kind: 'admin', workspaceId: workspace })).key);

      // A bound admin may mint keys up to the ceiling, not above it.
      await expect(bound.admin.keys.create.mutate({ kind: 'ingest', rateLimit: { eventsPerSecond: 1000, burst: 0 } })).rejects.toMatchObject({
        data: { httpStatus: 403, reason: 'above_workspace_ceiling', issues: [{ path: 'rateLimit.eventsPerSecond' }] },
      });
      await expect(bound.admin.keys.create.mutate({ kind: 'ingest', rateLimit: { eventsPerSecond: 1, burst: 50 } })).rejects.toMatchObject({
        data: { httpStatus: 403, issues: [{ path: 'rateLimit.burst' }] },
      });
      const first = await bound.admin.keys.create.mutate({ kind: 'ingest', rateLimit: { eventsPerSecond: 1, burst: 9 } });
      const second = await bound.admin.keys.create.mutate({ kind: 'ingest', name: 'default limit' });
      const elsewhere = await unbound.admin.keys.create.mutate({ kind: 'ingest', workspaceId: other });

      // Each key alone could send 6; together they cannot send 12.
      expect((await postBatch(ceilingServer.url, first.key, batchOf(workspace, 6))).status).toBe(200);
      const refused = await postBatch(ceilingServer.url, second.key, batchOf(workspace, 6));
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused.json()).toMatchObject({ message: expect.stringContaining("this key's workspace"), data: { reason: 'workspace_rate_limited' } });
      // A batch larger than the whole ceiling could never pass: 413, like one over a key's budget.
      expect((await postBatch(ceilingServer.url, second.key, batchOf(workspace, 11))).status).toBe(413);
      // Another workspace has its own ceiling.
      expect((await postBatch(ceilingServer.url, elsewhere.key, batchOf(other, 6))).status).toBe(200);
      expect(await storedEvents(testDb.db, workspace)).toHaveLength(6);

      // The bound admin can neither raise nor move its workspace's ceiling; it can see it.
      await expect(
        bound.admin.workspaceLimits.set.mutate({ workspaceId: workspace, kind: 'ingest', rateLimit: { eventsPerSecond: 1000, burst: 1000 } }),
      ).rejects.toMatchObject({ data: { httpStatus: 403 } });
      await expect(bound.admin.workspaceLimits.clear.mutate({ workspaceId: workspace })).rejects.toMatchObject({ data: { httpStatus: 403 } });
      expect((await postBatch(ceilingServer.url, second.key, batchOf(workspace, 6))).status).toBe(429);

      // An unbound admin raises it: the refused key's own budget was given back, so it sends now.
      const raised = await unbound.admin.workspaceLimits.set.mutate({ workspaceId: workspace, kind: 'ingest', rateLimit: { eventsPerSecond: 1, burst: 100 } });
      expect(raised).toMatchObject({ workspaceId: workspace, kind: 'ingest', rateLimit: { eventsPerSecond: 1, burst: 100 } });
      expect((await postBatch(ceilingServer.url, second.key, batchOf(workspace, 6))).status).toBe(200);
      expect(await storedEvents(testDb.db, workspace)).toHaveLength(12);
      // ...and the bound admin may now mint up to the new ceiling.
      await expect(bound.admin.keys.create.mutate({ kind: 'ingest', rateLimit: { eventsPerSecond: 1, burst: 100 } })).resolves.toMatchObject({
        workspaceId: workspace,
      });

      expect(await bound.admin.workspaceLimits.list.query()).toEqual({
        defaults: expect.objectContaining({ ingest: { eventsPerSecond: 1, burst: 9 } }),
        overrides: [expect.objectContaining({ workspaceId: workspace, kind: 'ingest' })],
      });
      expect(await unbound.admin.workspaceLimits.clear.mutate({ workspaceId: workspace })).toEqual({ workspaceId: workspace, cleared: ['ingest'] });
      expect((await unbound.admin.workspaceLimits.list.query()).overrides).toEqual([]);
    } finally {
      await ceilingServer.close();
    }
  });

  it('answer 404 on workspaceId for a ceiling of a workspace that does not exist, over tRPC and /api, and store nothing', async () => {
    const unknown = randomUUID();
    const adminKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'admin' })).key;
    await expect(
      admin(server.url, adminKey).admin.workspaceLimits.set.mutate({ workspaceId: unknown, kind: 'ingest', rateLimit: { eventsPerSecond: 5, burst: 5 } }),
    ).rejects.toMatchObject({ data: { httpStatus: 404, reason: 'unknown_workspace', issues: [{ path: 'workspaceId' }] } });
    const response = await fetch(`${server.url}/api/admin/workspace-limits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workspaceId: unknown, kind: 'ingest', rateLimit: { eventsPerSecond: 5, burst: 5 } }),
    });
    expect(response.status).toBe(404);
    const body = await response.text();
    expect(body).toContain('workspaceId');
    expect(body).not.toMatch(/foreign key|violates|SQLSTATE|23503/i);
    const { overrides } = await admin(server.url, adminKey).admin.workspaceLimits.list.query();
    expect(overrides.filter((override) => override.workspaceId === unknown)).toEqual([]);
  });

  it('leave keys bound to no workspace to their own budget only', async () => {
    const ceilingServer = await startTestServer(testDb.db, { config: ceilingConfig() });
    try {
      const key = await keyWithLimit(100, 0);
      const workspaceId = await newWorkspace();
      expect((await postBatch(ceilingServer.url, key, batchOf(workspaceId, 30))).status).toBe(200);
    } finally {
      await ceilingServer.close();
    }
  });
});

// Needs a Redis (TEST_REDIS_URL), like the limits above.
describe.runIf(process.env.TEST_REDIS_URL)('per-workspace rate ceilings shared through Redis', () => {
  it('give two instances one ceiling per workspace', async () => {
    const prefix = `telemetry-test:${randomUUID()}`;
    const connect = () => new Redis(process.env.TEST_REDIS_URL!, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
    const [redisA, redisB] = [connect(), connect()];
    await Promise.all([redisA.ping(), redisB.ping()]);
    const config = testConfig({ RATE_LIMIT_WORKSPACE_INGEST_EPS: '1', RATE_LIMIT_WORKSPACE_INGEST_BURST: '9' });
    const limiterA = createRateLimiter({ redis: redisA, logger: capturingLogger().logger, keyPrefix: prefix });
    const limiterB = createRateLimiter({ redis: redisB, logger: capturingLogger().logger, keyPrefix: prefix });
    const instanceA = await startTestServer(testDb.db, { config, services: testServices(testDb.db, { config, rateLimiter: limiterA }) });
    const instanceB = await startTestServer(testDb.db, { config, services: testServices(testDb.db, { config, rateLimiter: limiterB }) });
    try {
      const workspaceId = await newWorkspace();
      const [first, second] = [await keyWithLimit(1, 9, workspaceId), await keyWithLimit(1, 9, workspaceId)];
      const six = Array.from({ length: 6 }, () => event(workspaceId));
      expect((await postBatch(instanceA.url, first, six)).status).toBe(200);
      expect((await postBatch(instanceB.url, second, six)).status).toBe(429);
      expect(limiterB.store()).toBe('redis');
      expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(6);
    } finally {
      await instanceA.close();
      await instanceB.close();
      redisA.disconnect();
      redisB.disconnect();
    }
  });
});

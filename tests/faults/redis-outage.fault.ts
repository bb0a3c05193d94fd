import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildService, type ChildService } from '../support/child-service.ts';
import { createPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { createWorkspaceOver } from './support/workspaces.ts';
import { startPrivateRedis, type PrivateRedis } from './support/redis-server.ts';
import { reconcile, startLoad } from './support/load.ts';
import { waitUntil } from './support/wait.ts';

let cluster: PgCluster;
let redis: PrivateRedis;
let service: ChildService;
beforeAll(async () => {
  cluster = await createPgCluster();
  redis = await startPrivateRedis();
  service = await startChildService({
    TELEMETRY_ADMIN_KEY: `fault-admin-${randomBytes(16).toString('hex')}`,
    DATABASE_URL: cluster.url,
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ADMIN_EPS: '100000000',
    RATE_LIMIT_ADMIN_BURST: '100000000',
  });
});
afterAll(async () => {
  service?.process.kill('SIGKILL');
  await redis?.stop();
  await cluster?.destroy();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function createLimitedKey(): Promise<string> {
  const response = await fetch(`${service.url}/api/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${service.adminKey}` },
    body: JSON.stringify({
      kind: 'ingest',
      workspaceId: await createWorkspaceOver(service.url, service.adminKey),
      name: 'limited',
      rateLimit: { eventsPerSecond: 2, burst: 3 },
    }),
  });
  return ((await response.json()) as { key: string }).key;
}

/** How many of `count` rapid single-event calls with `key` were refused with 429. */
async function refusedOf(key: string, count: number): Promise<number> {
  let refused = 0;
  for (let n = 0; n < count; n += 1) {
    const response = await fetch(`${service.url}/api/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ source: 'backend', eventType: 'probe', name: 'limited' }),
    });
    await response.body?.cancel();
    if (response.status === 429) refused += 1;
  }
  return refused;
}

/** A stream ticket for one workspace, minted over the plain-JSON face. */
async function streamTicket(url: string, apiKey: string, workspaceId: string): Promise<string> {
  const response = await fetch(`${url}/api/live/ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ workspaceId }),
  });
  return ((await response.json()) as { ticket: string }).ticket;
}

/** Opens a live stream (plain SSE) of one workspace and resolves once `name` arrives. */
function awaitLiveEvent(workspaceId: string, name: string, timeoutMs: number): { arrived: Promise<boolean>; cancel(): void } {
  const controller = new AbortController();
  const input = encodeURIComponent(JSON.stringify({ json: { workspaceId } }));
  const arrived = (async () => {
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      // An admin key never goes into a URL: the stream opens with a ticket minted with it.
      const params = encodeURIComponent(JSON.stringify({ ticket: await streamTicket(service.url, service.adminKey, workspaceId) }));
      const response = await fetch(`${service.url}/trpc/telemetry.live?input=${input}&connectionParams=${params}`, {
        headers: { accept: 'text/event-stream' },
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      let text = '';
      while (!text.includes(`"${name}"`)) text += new TextDecoder().decode((await reader.read()).value);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  })();
  return { arrived, cancel: () => controller.abort() };
}

async function ingestNamed(workspaceId: string, name: string): Promise<void> {
  const response = await fetch(`${service.url}/api/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${service.adminKey}` },
    body: JSON.stringify({ workspaceId, source: 'backend', eventType: 'probe', name }),
  });
  expect(response.status).toBe(200);
}

describe('Redis stopped under load', () => {
  it('keeps ingesting; rate limits fall back to per-instance memory and still refuse; live streams pause and resume with Redis', async () => {
    const workspaceId = await createWorkspaceOver(service.url, service.adminKey);
    const limitedKey = await createLimitedKey();
    const load = startLoad({ url: service.url, key: service.adminKey, workspaceId });
    try {
      await waitUntil(() => load.acknowledgedCount() >= 2000, 'events acknowledged with Redis up');
      expect(await metric('telemetry_live_events_published_total')).toBeGreaterThan(0);

      await redis.stop();
      const acknowledgedWhenDown = load.acknowledgedCount();
      await waitUntil(() => load.acknowledgedCount() >= acknowledgedWhenDown + 3000, 'ingestion to go on without Redis', 30_000);
      await waitUntil(async () => (await metric('telemetry_rate_limit_memory_fallback')) === 1, 'the rate limiter to fall back to memory', 10_000);
      expect(await refusedOf(limitedKey, 10)).toBeGreaterThan(0);
      expect(await metric('telemetry_live_publish_failures_total')).toBeGreaterThan(0);

      await redis.start();
      await waitUntil(async () => (await metric('telemetry_rate_limit_memory_fallback')) === 0, 'the rate limiter to use Redis again', 20_000);
      // The stream carries events again once Redis answers.
      let delivered = false;
      const deadline = Date.now() + 20_000;
      while (!delivered && Date.now() < deadline) {
        const name = `after-redis-${randomUUID()}`;
        const live = awaitLiveEvent(workspaceId, name, 3000);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await ingestNamed(workspaceId, name);
        delivered = await live.arrived;
        live.cancel();
      }
      expect(delivered).toBe(true);

      const summary = await load.stop();
      const result = await reconcile(cluster.url, workspaceId, load);
      console.log(`redis outage: ${JSON.stringify({ ...result, lost: result.lost.length, failures: summary.failures })}`);
      expect(result.lost).toEqual([]);
      expect(result.duplicateRows).toBe(0);
      // Ingest calls did not fail because Redis was gone.
      expect(Object.keys(summary.failures)).toEqual([]);
    } finally {
      load.dispose();
    }
  });
});

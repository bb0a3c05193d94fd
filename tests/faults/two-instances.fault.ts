import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../client/uuid7.ts';
import { startChildService, type ChildService } from '../support/child-service.ts';
import { createPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { createWorkspaceOver } from './support/workspaces.ts';
import { startPrivateRedis, type PrivateRedis } from './support/redis-server.ts';

/** Two service processes sharing one PostgreSQL and one Redis, as two machines would. */
let cluster: PgCluster;
let redis: PrivateRedis;
let first: ChildService;
let second: ChildService;
const adminKey = `fault-admin-${randomBytes(16).toString('hex')}`;

beforeAll(async () => {
  cluster = await createPgCluster();
  redis = await startPrivateRedis();
  const env = {
    TELEMETRY_ADMIN_KEY: adminKey,
    DATABASE_URL: cluster.url,
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ADMIN_EPS: '100000000',
    RATE_LIMIT_ADMIN_BURST: '100000000',
  };
  [first, second] = await Promise.all([startChildService(env), startChildService(env)]);
});
afterAll(async () => {
  first?.process.kill('SIGKILL');
  second?.process.kill('SIGKILL');
  await redis?.stop();
  await cluster?.destroy();
});

async function post(service: ChildService, path: string, body: unknown, key = adminKey): Promise<Response> {
  return fetch(`${service.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
}

describe('two instances sharing PostgreSQL and Redis', () => {
  it('share one rate-limit budget per key', async () => {
    const workspaceId = await createWorkspaceOver(first.url, adminKey);
    const created = await post(first, '/api/admin/keys', { kind: 'ingest', workspaceId, name: 'shared-budget', rateLimit: { eventsPerSecond: 1, burst: 10 } });
    const { key } = (await created.json()) as { key: string };
    let accepted = 0;
    for (let n = 0; n < 30; n += 1) {
      const response = await post(n % 2 === 0 ? first : second, '/api/events', { source: 'backend', eventType: 'probe', name: 'budget' }, key);
      await response.body?.cancel();
      if (response.status === 200) accepted += 1;
    }
    // One budget of 10 (plus about one refill per second), not 10 per instance.
    expect(accepted).toBeGreaterThanOrEqual(10);
    expect(accepted).toBeLessThanOrEqual(14);
  });

  it('deliver an event ingested on one instance to a live stream on the other', async () => {
    const workspaceId = await createWorkspaceOver(first.url, adminKey);
    const controller = new AbortController();
    const input = encodeURIComponent(JSON.stringify({ json: { workspaceId } }));
    // An admin key never goes into a URL: the stream opens with a ticket minted with it (on the other instance).
    const minted = await fetch(`${first.url}/api/live/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workspaceId }),
    });
    const params = encodeURIComponent(JSON.stringify({ ticket: ((await minted.json()) as { ticket: string }).ticket }));
    const response = await fetch(`${second.url}/trpc/telemetry.live?input=${input}&connectionParams=${params}`, {
      headers: { accept: 'text/event-stream' },
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read(); // "connected"
    // The stream is registered on the second instance once its gauge says so.
    const deadlineOpen = Date.now() + 10_000;
    while (!(await (await fetch(`${second.url}/metrics`)).text()).includes('telemetry_live_streams 1') && Date.now() < deadlineOpen) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await post(first, '/api/events', { workspaceId, source: 'backend', eventType: 'probe', name: 'crossed' })).status).toBe(200);
    let text = '';
    const deadline = Date.now() + 10_000;
    while (!text.includes('"crossed"') && Date.now() < deadline) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    if (!text.includes('"crossed"')) console.log('FIRST', first.output(), 'SECOND', second.output());
    expect(text).toContain('"crossed"');
    expect(text).toMatch(/id: \d+-\d+/);
  });

  it('end a key’s live stream on one instance as soon as the key is revoked on the other', async () => {
    const workspaceId = await createWorkspaceOver(first.url, adminKey);
    const created = (await (await post(first, '/api/admin/keys', { kind: 'read', workspaceId })).json()) as { id: string; key: string };
    const controller = new AbortController();
    const input = encodeURIComponent(JSON.stringify({ json: {} }));
    const params = encodeURIComponent(JSON.stringify({ apiKey: created.key }));
    const response = await fetch(`${second.url}/trpc/telemetry.live?input=${input}&connectionParams=${params}`, {
      headers: { accept: 'text/event-stream' },
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read(); // "connected"
    const deadlineOpen = Date.now() + 10_000;
    while (!(await (await fetch(`${second.url}/metrics`)).text()).includes('telemetry_live_streams 1') && Date.now() < deadlineOpen) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await post(first, `/api/admin/keys/${created.id}/revoke`, {})).status).toBe(200);
    let text = '';
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
      if (/event: serialized-error\ndata: .*\n/.test(text)) break;
    }
    controller.abort();
    expect(text).toMatch(/event: serialized-error\ndata: .*"UNAUTHORIZED".*"key_revoked"/);
  });

  it('store and count an event sent to both instances at once exactly once', async () => {
    const workspaceId = await createWorkspaceOver(first.url, adminKey);
    const events = Array.from({ length: 500 }, () => ({ id: uuidv7(), workspaceId, source: 'backend', eventType: 'probe', name: 'twice' }));
    // The same 500 ids, to both instances, three times each, concurrently.
    const responses = await Promise.all([first, second, first, second, first, second].map((service) => post(service, '/api/events/batch', { events })));
    const bodies = (await Promise.all(responses.map((response) => response.json()))) as { accepted: number; duplicates: number }[];
    expect(bodies.reduce((sum, body) => sum + body.accepted, 0)).toBe(500);
    expect(bodies.reduce((sum, body) => sum + body.duplicates, 0)).toBe(2500);

    const sql = postgres(cluster.url, { max: 1, onnotice: () => {} });
    try {
      const [events_] = await sql<{ count: number }[]>`select count(*)::int as count from telemetry.events where workspace_id = ${workspaceId}`;
      const [minute] = await sql<
        { count: number }[]
      >`select coalesce(sum(count), 0)::int as count from telemetry.event_counts_minute where workspace_id = ${workspaceId}`;
      const [hour] = await sql<
        { count: number }[]
      >`select coalesce(sum(count), 0)::int as count from telemetry.event_counts_hour where workspace_id = ${workspaceId}`;
      expect({ events: events_!.count, minuteRollup: minute!.count, hourRollup: hour!.count }).toEqual({ events: 500, minuteRollup: 500, hourRollup: 500 });
    } finally {
      await sql.end({ timeout: 1 });
    }
    // And the statistics read through either instance agree.
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    for (const service of [first, second]) {
      const top = await post(service, '/api/stats/top', { workspaceId, from, to, by: 'name' });
      expect(await top.json()).toMatchObject({ items: [{ key: 'twice', count: 500 }] });
    }
  });
});

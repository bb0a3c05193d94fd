import { gzipSync } from 'node:zlib';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignUserId, ID_NAMESPACES, uuidv5 } from '../server/ingest-adapters/deterministic-ids.ts';
import type { Services } from '../server/trpc/context.ts';
import {
  appFailingToIngest,
  createWorkspaceWithIngestAndReadKeys,
  createWorkspaceWithKey,
  databaseOutage,
  openAdapterApp,
  type AdapterApp,
} from './support/adapters.ts';
import { createTestKeys, procedureCaller, testConfig } from './support/app.ts';
import type { TestDatabase } from './support/database.ts';
import { countEventsWithId, storedEvents } from './support/events.ts';

const MAX_BODY_BYTES = 64 * 1024;
const config = testConfig({ MAX_BODY_BYTES: String(MAX_BODY_BYTES), MAX_INFLIGHT_BODY_BYTES: String(16 * MAX_BODY_BYTES), MAX_BATCH_EVENTS: '50' });

let testDb: TestDatabase;
let app: AdapterApp['app'];
let services: Services;

beforeAll(async () => {
  ({ testDb, app, services } = await openAdapterApp(config));
});
afterAll(async () => {
  await testDb.drop();
});

const workspaceWithKey = (kind: 'ingest' | 'read' = 'ingest') => createWorkspaceWithKey(testDb.db, kind);

function post(path: string, body: BodyInit, headers: Record<string, string>) {
  return app.request(path, { method: 'POST', body, headers });
}

const basic = (key: string) => ({ 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` });
const messageId = (workspaceId: string, raw: string) => uuidv5(ID_NAMESPACES.segmentMessage, `${workspaceId}\n${raw}`);

describe('Segment batches', () => {
  it('stores every call of a batch once, mapped onto the event model, and an identical resend stores nothing twice', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const at = new Date(Date.now() - 60_000).toISOString();
    const library = { name: '@segment/analytics-node', version: '3.1.0' };
    const body = JSON.stringify({
      batch: [
        {
          type: 'track',
          event: 'Order Completed',
          userId: 'user-42',
          properties: { total: 30, currency: 'EUR' },
          context: { library, ip: '203.0.113.9' },
          integrations: { Amplitude: false },
          timestamp: at,
          messageId: 'node-next-1-a',
        },
        { type: 'page', name: 'Pricing', category: 'Docs', anonymousId: 'anon-1', properties: { path: '/pricing' }, timestamp: at, messageId: 'm-page' },
        { type: 'screen', name: 'Home', anonymousId: 'anon-2', context: { library: { name: 'analytics-ios' } }, timestamp: at, messageId: 'm-screen' },
        { type: 'identify', userId: 'user-42', anonymousId: 'anon-1', traits: { plan: 'pro' }, timestamp: at, messageId: 'm-identify' },
        { type: 'group', userId: 'user-42', groupId: 'acme', traits: { seats: 5 }, timestamp: at, messageId: 'm-group' },
        { type: 'alias', userId: 'user-42', previousId: 'anon-1', timestamp: at, messageId: 'm-alias' },
      ],
      context: { library },
      sentAt: new Date().toISOString(),
    });
    const first = await post('/v1/batch', body, basic(key));
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ success: true });
    expect((await post('/v1/batch', body, basic(key))).status).toBe(200);

    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(6);
    for (const event of stored) expect(await countEventsWithId(testDb.db, event.id)).toBe(1);
    const byType = new Map(stored.map((event) => [event.eventType, event]));
    const user = foreignUserId(workspaceId, 'user-42');
    expect(byType.get('custom')).toMatchObject({
      id: messageId(workspaceId, 'node-next-1-a'),
      name: 'Order Completed',
      source: 'backend',
      userId: user,
      metadata: {
        type: 'track',
        messageId: 'node-next-1-a',
        userId: 'user-42',
        event: 'Order Completed',
        properties: { total: 30, currency: 'EUR' },
        context: { library, ip: '203.0.113.9' },
        integrations: { Amplitude: false },
        timestamp: at,
      },
    });
    expect(byType.get('page.view')).toMatchObject({
      name: 'Pricing',
      userId: foreignUserId(workspaceId, 'anon-1'),
      metadata: expect.objectContaining({ anonymousId: 'anon-1', category: 'Docs', properties: { path: '/pricing' } }),
    });
    expect(byType.get('screen.view')).toMatchObject({ name: 'Home', source: 'mobile' });
    expect(byType.get('identify')).toMatchObject({
      name: 'identify',
      userId: user,
      metadata: expect.objectContaining({ traits: { plan: 'pro' }, anonymousId: 'anon-1' }),
    });
    expect(byType.get('group')).toMatchObject({ name: 'group', metadata: expect.objectContaining({ groupId: 'acme', traits: { seats: 5 } }) });
    expect(byType.get('alias')).toMatchObject({ name: 'alias', userId: user, metadata: expect.objectContaining({ previousId: 'anon-1' }) });
  });

  it("corrects the sender's clock skew with sentAt, as telemetry.ingestBatch does", async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const skewMs = 3_600_000;
    // The sender's clock runs an hour fast: it says the event happened 10 s before it sent the batch.
    const senderNow = Date.now() + skewMs;
    const before = Date.now();
    const response = await post(
      '/v1/batch',
      JSON.stringify({
        batch: [{ type: 'track', event: 'Skewed', userId: 'u', timestamp: new Date(senderNow - 10_000).toISOString(), messageId: 'skew-1' }],
        sentAt: new Date(senderNow).toISOString(),
      }),
      basic(key),
    );
    const after = Date.now();
    expect(response.status).toBe(200);
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event?.createdAt.getTime()).toBeGreaterThanOrEqual(before - 10_000);
    expect(event?.createdAt.getTime()).toBeLessThanOrEqual(after - 10_000);
  });

  it('keeps a timestamp given to the microsecond (or finer, cut to the microsecond) when no sentAt is sent', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const second = new Date(Date.now() - 5_000).toISOString().slice(0, 19);
    const response = await post(
      '/v1/batch',
      JSON.stringify({ batch: [{ type: 'track', event: 'Precise', userId: 'u', timestamp: `${second}.123456789+00:00`, messageId: 'p-1' }] }),
      basic(key),
    );
    expect(response.status).toBe(200);
    const rows = await testDb.db.rows<{ t: string }>(
      sql`select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as t from telemetry.events where workspace_id = ${workspaceId}`,
    );
    expect(rows[0]?.t).toBe(`${second}.123456`);
  });

  it('derives the id of a message without messageId from the body and its place, so an identical retry stores it once', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const body = JSON.stringify({
      batch: [
        { type: 'track', event: 'No Id', userId: 'u' },
        { type: 'track', event: 'No Id', userId: 'u' },
      ],
    });
    expect((await post('/v1/batch', body, basic(key))).status).toBe(200);
    expect((await post('/v1/batch', body, basic(key))).status).toBe(200);
    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(2);
    expect(new Set(stored.map((event) => event.id)).size).toBe(2);
  });

  it('refuses a message that cannot be mapped on its own, stores the others and counts the refusals for the workspace', async () => {
    const { workspaceId, ingestKey: key, readKey } = await createWorkspaceWithIngestAndReadKeys(testDb.db);
    const response = await post(
      '/v1/batch',
      JSON.stringify({
        batch: [
          { type: 'track', userId: 'u', messageId: 'no-event' },
          { type: 'track', event: 'Kept', userId: 'u', messageId: 'kept' },
          { type: 'launch', userId: 'u', messageId: 'unknown-type' },
          { type: 'track', event: 'Nobody', messageId: 'no-user' },
          { type: 'track', event: 'Huge', userId: 'u', properties: { blob: 'x'.repeat(33 * 1024) }, messageId: 'huge' },
          { type: 'track', event: 'Bad time', userId: 'u', timestamp: 'yesterday', messageId: 'bad-time' },
          'not a message',
          { type: 'track', event: 'Ancient', userId: 'u', timestamp: '1970-01-01T00:00:01Z', messageId: 'ancient' },
        ],
      }),
      basic(key),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ success: true });
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name)).toEqual(['Kept']);

    const { recent } = await procedureCaller(testDb.db, { apiKey: readKey, services, config }).telemetry.adapterRejections({ limit: 20 });
    expect(recent.map((refusal) => [refusal.recordIndex, refusal.reason, refusal.path]).sort()).toEqual([
      [0, 'invalid_event', 'event'],
      [2, 'invalid_event', 'type'],
      [3, 'invalid_event', 'userId'],
      [4, 'invalid_event', ''],
      [5, 'invalid_event', 'timestamp'],
      [6, 'invalid_event', ''],
      [7, 'created_at_out_of_range', 'createdAt'],
    ]);
    expect(recent.find((refusal) => refusal.recordIndex === 4)?.message).toMatch(/at most 32768 bytes/);
  });

  it('truncates context, properties or traits over the metadata limits with a marker instead of refusing the message', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const properties = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`p${i}`, i]));
    const response = await post(
      '/v1/batch',
      JSON.stringify({ batch: [{ type: 'track', event: 'Wide', userId: 'u', properties, messageId: 'wide' }] }),
      basic(key),
    );
    expect(response.status).toBe(200);
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event?.metadata).toMatchObject({ properties: expect.stringMatching(/…\[truncated]$/), truncated: ['properties'], event: 'Wide' });
  });
});

describe("Segment single calls and the browser's paths", () => {
  it('stores /v1/track, /v1/import and the one-letter paths of analytics-next, with the write key in a text/plain body', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const track = await post('/v1/track', JSON.stringify({ event: 'Signed Up', userId: 'u', writeKey: key, messageId: 'single-1' }), {
      'content-type': 'application/json',
    });
    expect(track.status).toBe(200);
    const browser = { name: 'analytics.js', version: 'npm:next-1.84.3' };
    for (const [path, message] of [
      ['/v1/t', { type: 'track', event: 'Clicked', anonymousId: 'a', messageId: 'ajs-t' }],
      ['/v1/p', { type: 'page', name: 'Home', anonymousId: 'a', messageId: 'ajs-p' }],
      ['/v1/i', { type: 'identify', userId: 'u', messageId: 'ajs-i' }],
      ['/v1/g', { type: 'group', userId: 'u', groupId: 'g1', messageId: 'ajs-g' }],
      ['/v1/a', { type: 'alias', userId: 'u', previousId: 'a', messageId: 'ajs-a' }],
      ['/v1/s', { type: 'screen', name: 'Settings', userId: 'u', messageId: 'ajs-s' }],
    ] as const) {
      const response = await post(path, JSON.stringify({ ...message, context: { library: browser }, writeKey: key, sentAt: new Date().toISOString() }), {
        'content-type': 'text/plain',
      });
      expect(response.status, path).toBe(200);
    }
    const imported = await post(
      '/v1/import',
      JSON.stringify({ batch: [{ type: 'track', event: 'Imported', userId: 'u', messageId: 'import-1' }] }),
      basic(key),
    );
    expect(imported.status).toBe(200);
    const batch = await post('/v1/b', JSON.stringify({ batch: [{ type: 'track', event: 'Batched', userId: 'u', messageId: 'ajs-b' }], writeKey: key }), {
      'content-type': 'text/plain',
    });
    expect(batch.status).toBe(200);

    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored.map((event) => `${event.eventType}:${event.name}`).sort()).toEqual([
      'alias:alias',
      'custom:Batched',
      'custom:Clicked',
      'custom:Imported',
      'custom:Signed Up',
      'group:group',
      'identify:identify',
      'page.view:Home',
      'screen.view:Settings',
    ]);
    expect(stored.find((event) => event.name === 'Clicked')?.source).toBe('web');
    // The write key is a credential: never kept with the event.
    for (const event of stored) expect(JSON.stringify(event.metadata)).not.toContain(key);
  });

  it('accepts the key as a Bearer token, and a gzip body', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const body = gzipSync(JSON.stringify({ batch: [{ type: 'track', event: 'Zipped', userId: 'u', messageId: 'gz' }] }));
    const response = await post('/v1/batch', body, { 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: `Bearer ${key}` });
    expect(response.status).toBe(200);
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name)).toEqual(['Zipped']);
  });

  it("answers analytics-next's settings request with only the Segment.io destination pointed back at this service", async () => {
    const response = await app.request('http://telemetry.example:8080/v1/projects/tlm_ingest_abc/settings', { headers: { host: 'telemetry.example:8080' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('private, max-age=300');
    expect(await response.json()).toEqual({
      integrations: { 'Segment.io': { apiKey: 'tlm_ingest_abc', apiHost: 'telemetry.example:8080/v1', protocol: 'http' } },
      plan: { track: { __default: { enabled: true } } },
      remotePlugins: [],
      enabledMiddleware: {},
      metrics: { sampleRate: 0 },
      middlewareSettings: {},
    });
    const proxied = await app.request('http://10.0.0.5:3000/v1/projects/k/settings', {
      headers: { host: '10.0.0.5:3000', 'x-forwarded-host': 'telemetry.example.com', 'x-forwarded-proto': 'https' },
    });
    expect(((await proxied.json()) as { integrations: Record<string, unknown> }).integrations).toEqual({
      'Segment.io': { apiKey: 'k', apiHost: 'telemetry.example.com/v1', protocol: 'https' },
    });
    expect((await app.request(`/v1/projects/${'k'.repeat(600)}/settings`)).status).toBe(404);
  });
});

describe('Segment refusals', () => {
  const oneTrack = JSON.stringify({ batch: [{ type: 'track', event: 'x', userId: 'u', messageId: 'r' }] });

  it('refuses a missing or unknown write key with 401 and keys that cannot write to one workspace with 403', async () => {
    const missing = await post('/v1/batch', oneTrack, { 'content-type': 'application/json' });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ success: false, message: expect.stringMatching(/^Missing write key/) });
    const unknown = await post('/v1/batch', oneTrack, basic('tlm_ingest_unknown'));
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual({ success: false, message: 'Unknown or revoked API key' });

    const { ingest } = await createTestKeys(testDb.db);
    const unbound = await post('/v1/batch', oneTrack, basic(ingest));
    expect(unbound.status).toBe(403);
    expect(((await unbound.json()) as { message: string }).message).toMatch(/bound to one workspace/);
    const { key: readKey } = await workspaceWithKey('read');
    expect((await post('/v1/batch', oneTrack, basic(readKey))).status).toBe(403);
  });

  it("stores events only in the write key's workspace, whatever the body says", async () => {
    const mine = await workspaceWithKey();
    const theirs = await workspaceWithKey();
    const body = JSON.stringify({
      batch: [{ type: 'track', event: 'Mine', userId: 'u', messageId: 'same-id', workspaceId: theirs.workspaceId }],
      writeKey: theirs.key,
    });
    expect((await post('/v1/batch', body, basic(mine.key))).status).toBe(200);
    expect((await post('/v1/batch', body.replace('Mine', 'Theirs'), basic(theirs.key))).status).toBe(200);
    const [stored] = await storedEvents(testDb.db, mine.workspaceId);
    expect(stored).toMatchObject({ name: 'Mine', workspaceId: mine.workspaceId });
    // The same messageId in another workspace is another event.
    const [other] = await storedEvents(testDb.db, theirs.workspaceId);
    expect(other).toMatchObject({ name: 'Theirs' });
    expect(other?.id).not.toBe(stored?.id);
  });

  it('refuses malformed JSON and bodies of the wrong shape with 400, storing nothing and counting each for the workspace', async () => {
    const { workspaceId, ingestKey: key, readKey } = await createWorkspaceWithIngestAndReadKeys(testDb.db);
    const cases: [string, string, string][] = [
      ['/v1/batch', '{"batch": [', 'Malformed JSON: the body is not valid JSON'],
      ['/v1/batch', '[1, 2]', 'The body must be a JSON object'],
      ['/v1/batch', '{"batch": {"type": "track"}}', 'A batch body needs "batch": an array of messages'],
      ['/v1/track', '"track"', 'The body must be a JSON object'],
      ['/v1/batch', JSON.stringify({ batch: Array.from({ length: 51 }, () => ({})) }), 'A batch holds at most 50 messages; this one has 51'],
    ];
    for (const [path, body, message] of cases) {
      const response = await post(path, body, basic(key));
      expect(response.status, body).toBe(400);
      expect(await response.json()).toEqual({ success: false, message });
    }
    const invalidUtf8 = await post('/v1/batch', Uint8Array.of(0x7b, 0xff, 0x7d), basic(key));
    expect(invalidUtf8.status).toBe(400);
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
    const { counts } = await procedureCaller(testDb.db, { apiKey: readKey, services, config }).telemetry.adapterRejections({});
    expect(counts).toEqual([{ adapter: 'segment', reason: 'malformed_request', refused: cases.length + 1, lastAt: expect.any(Date) }]);
  });

  it('refuses JSON nested past what can be read with 400, never 500', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const depth = 30_000;
    const deep = `{"batch":[{"type":"track","event":"deep","userId":"u","properties":${'['.repeat(depth)}${']'.repeat(depth)}}]}`;
    const response = await post('/v1/batch', deep, basic(key));
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ success: false, message: 'Malformed JSON: nested too deeply' });
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });

  it('refuses an oversize body and a gzip bomb with 413', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const oversize = await post('/v1/batch', JSON.stringify({ batch: [{ type: 'track', event: 'x'.repeat(MAX_BODY_BYTES), userId: 'u' }] }), basic(key));
    expect(oversize.status).toBe(413);
    const bomb = gzipSync(new Uint8Array(MAX_BODY_BYTES * 16));
    const inflated = await post('/v1/batch', bomb, { ...basic(key), 'content-encoding': 'gzip' });
    expect(inflated.status).toBe(413);
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });

  it('answers 429 with Retry-After once the key has spent its rate limit, storing nothing of that batch', async () => {
    const { workspaceId, key } = await createWorkspaceWithKey(testDb.db, 'ingest', { eventsPerSecond: 1, burst: 1 });
    const batch = (name: string) =>
      JSON.stringify({ batch: [1, 2].map((n) => ({ type: 'track', event: `${name} ${n}`, userId: 'u', messageId: `${name}-${n}` })) });
    expect((await post('/v1/batch', batch('first'), basic(key))).status).toBe(200);
    const limited = await post('/v1/batch', batch('second'), basic(key));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited.json()) as { success: boolean }).success).toBe(false);
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name).sort()).toEqual(['first 1', 'first 2']);
  });

  it('answers 503 with Retry-After when the database is unavailable, so the SDKs retry', async () => {
    const { key } = await workspaceWithKey();
    const outage = appFailingToIngest(testDb.db, config, services, databaseOutage());
    const response = await outage.request('/v1/batch', { method: 'POST', body: oneTrack, headers: basic(key) });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('2');
    expect(await response.json()).toEqual({ success: false, message: 'The database is unavailable; retry shortly' });
  });
});

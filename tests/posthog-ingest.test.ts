import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignUserId } from '../server/ingest-adapters/deterministic-ids.ts';
import type { Services } from '../server/trpc/context.ts';
import { appFailingToIngest, createWorkspaceWithKey, databaseOutage, openAdapterApp, type AdapterApp } from './support/adapters.ts';
import { createTestKeys, testConfig } from './support/app.ts';
import type { TestDatabase } from './support/database.ts';
import { countEventsWithId, storedEvents } from './support/events.ts';

const MAX_BODY_BYTES = 64 * 1024;
const config = testConfig({ MAX_BODY_BYTES: String(MAX_BODY_BYTES), MAX_INFLIGHT_BODY_BYTES: String(16 * MAX_BODY_BYTES) });

let testDb: TestDatabase;
let app: AdapterApp['app'];
let services: Services;

beforeAll(async () => {
  ({ testDb, app, services } = await openAdapterApp(config));
});
afterAll(async () => {
  await testDb.drop();
});

const workspaceWithKey = (kind: 'ingest' | 'read' = 'ingest', rateLimit?: { eventsPerSecond: number; burst: number }) =>
  createWorkspaceWithKey(testDb.db, kind, rateLimit);

function post(path: string, body: BodyInit, headers: Record<string, string> = { 'content-type': 'application/json' }, on = app) {
  return on.request(path, { method: 'POST', body, headers });
}

const json = (value: unknown) => JSON.stringify(value);
const secondsAgo = (seconds: number) => new Date(Date.now() - seconds * 1000);

/** An event as posthog-node sends it in a batch. */
function nodeEvent(event: string, properties: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    event,
    distinct_id: 'user-42',
    properties: { $lib: 'posthog-node', $lib_version: '5.70.0', ...properties },
    uuid: randomUUID(),
    timestamp: secondsAgo(5).toISOString(),
    type: 'capture',
    ...extra,
  };
}

async function byName(workspaceId: string) {
  return new Map((await storedEvents(testDb.db, workspaceId)).map((event) => [event.name, event]));
}

describe('PostHog capture', () => {
  it('stores a gzip batch once per event with its uuid, workspace, user, time and mapped type', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const at = secondsAgo(30);
    const events = [
      nodeEvent('$pageview', { $current_url: 'https://shop.example/cart?x=1' }, { timestamp: at.toISOString() }),
      nodeEvent('$pageleave', { $pathname: '/checkout' }),
      nodeEvent('order placed', { total: 12.5, items: ['a', 'b'] }),
      nodeEvent('$identify', { $set: { email: 'a@example.com' }, $anon_distinct_id: 'anon-1' }),
      nodeEvent('$autocapture', { $lib: 'web', $event_type: 'click', $elements: [{ tag_name: 'button', $el_text: 'Buy' }] }),
    ];
    const response = await post('/batch/', gzipSync(json({ api_key: key, batch: events })), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 1 });

    const stored = await byName(workspaceId);
    expect(stored.size).toBe(5);
    expect(stored.get('/cart')).toMatchObject({
      id: events[0]!.uuid,
      eventType: 'page.view',
      source: 'backend',
      userId: foreignUserId(workspaceId, 'user-42'),
      createdAt: at,
    });
    expect(stored.get('/cart')?.metadata).toMatchObject({
      event: '$pageview',
      distinctId: 'user-42',
      properties: { $current_url: 'https://shop.example/cart?x=1' },
    });
    expect(stored.get('/checkout')).toMatchObject({ eventType: 'page.leave' });
    expect(stored.get('order placed')).toMatchObject({
      eventType: 'custom',
      metadata: expect.objectContaining({ properties: expect.objectContaining({ total: 12.5, items: ['a', 'b'] }) }),
    });
    expect(stored.get('$identify')).toMatchObject({
      eventType: 'identify',
      metadata: expect.objectContaining({ properties: expect.objectContaining({ $set: { email: 'a@example.com' } }) }),
    });
    expect(stored.get('click')).toMatchObject({ eventType: 'ui.interaction', targetType: 'button', source: 'web' });

    const again = await post('/batch', gzipSync(json({ api_key: key, batch: events })), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(again.status).toBe(200);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(5);
    expect(await countEventsWithId(testDb.db, events[2]!.uuid)).toBe(1);
  });

  it('corrects the client clock skew that sent_at shows', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const hourAhead = 3_600_000;
    const before = Date.now();
    const clientNow = before + hourAhead;
    const response = await post(
      '/batch/',
      json({
        api_key: key,
        sent_at: new Date(clientNow).toISOString(),
        batch: [nodeEvent('skewed', {}, { timestamp: new Date(clientNow - 5_000).toISOString() })],
      }),
    );
    const after = Date.now();
    expect(response.status).toBe(200);
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event!.createdAt.getTime()).toBeGreaterThanOrEqual(before - 5_000);
    expect(event!.createdAt.getTime()).toBeLessThanOrEqual(after - 5_000);
  });

  it('never stores the token with the event properties', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    expect((await post('/e/', json({ event: 'signed up', distinct_id: 'u', properties: { token: key, plan: 'pro' } }))).status).toBe(200);
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event?.metadata).toMatchObject({ properties: { plan: 'pro' } });
    expect(JSON.stringify(event?.metadata)).not.toContain(key);
  });

  it('answers every capture path with and without the trailing slash', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const paths = ['/batch', '/e', '/i/v0/e', '/capture'].flatMap((path) => [path, `${path}/`]);
    for (const path of paths) {
      const response = await post(path, json({ api_key: key, batch: [nodeEvent(`via ${path}`)] }));
      expect(response.status, path).toBe(200);
    }
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name).sort()).toEqual(paths.map((path) => `via ${path}`).sort());
  });

  it('reads gzip recognised by its magic bytes, base64, the data= form of beacons and a GET with data=', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const body = (name: string) => json({ api_key: key, batch: [nodeEvent(name, { $lib: 'web' })] });
    const gzipped = await post('/e/?compression=gzip-js&ver=1.449.2', gzipSync(body('gzip-js')), { 'content-type': 'text/plain' });
    expect(gzipped.status).toBe(200);
    const base64 = Buffer.from(body('base64 form')).toString('base64');
    const form = await post('/e/?compression=base64', `data=${encodeURIComponent(base64)}`, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(200);
    const formField = await post('/e/', `data=${encodeURIComponent(Buffer.from(body('compression in form')).toString('base64'))}&compression=base64`, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(formField.status).toBe(200);
    const plain = await post('/i/v0/e/?compression=base64', Buffer.from(body('base64 text')).toString('base64'), { 'content-type': 'text/plain' });
    expect(plain.status).toBe(200);
    const get = await app.request(`/e/?data=${encodeURIComponent(Buffer.from(body('get data')).toString('base64'))}`);
    expect(get.status).toBe(200);
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name).sort()).toEqual([
      'base64 form',
      'base64 text',
      'compression in form',
      'get data',
      'gzip-js',
    ]);
    expect((await storedEvents(testDb.db, workspaceId)).every((event) => event.source === 'web')).toBe(true);
  });

  it('maps $exception to an error with message, stack and kind from $exception_list', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const exception = nodeEvent('$exception', {
      $exception_list: [
        {
          type: 'TypeError',
          value: 'cart is undefined',
          mechanism: { handled: false, type: 'onerror' },
          stacktrace: {
            type: 'raw',
            frames: [
              { filename: 'https://shop.example/app.js', function: 'main', lineno: 1, colno: 10 },
              { filename: 'https://shop.example/cart.js', function: 'total', lineno: 42, colno: 7 },
            ],
          },
        },
      ],
      $exception_level: 'error',
    });
    const legacy = nodeEvent('$exception', { $exception_message: 'boom', $exception_type: 'RangeError' });
    expect((await post('/batch/', json({ api_key: key, batch: [exception, legacy] }))).status).toBe(200);
    const stored = await byName(workspaceId);
    expect(stored.get('TypeError')).toMatchObject({ eventType: 'error' });
    expect(stored.get('TypeError')?.metadata).toMatchObject({
      message: 'cart is undefined',
      kind: 'TypeError',
      stack: 'TypeError: cart is undefined\n    at total (https://shop.example/cart.js:42:7)\n    at main (https://shop.example/app.js:1:10)',
    });
    expect(stored.get('RangeError')?.metadata).toMatchObject({ message: 'boom', kind: 'RangeError' });
  });

  it('maps $web_vitals to one perf.metric per vital present, named and measured like the tracker does', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const vitals = nodeEvent('$web_vitals', {
      $lib: 'web',
      $current_url: 'https://shop.example/',
      $web_vitals_LCP_value: 1234.5,
      $web_vitals_LCP_event: { name: 'LCP', value: 1234.5, delta: 1234.5, rating: 'good', id: 'v5-1', navigationType: 'navigate' },
      $web_vitals_CLS_value: 0.02,
      $web_vitals_CLS_event: { name: 'CLS', value: 0.02, delta: 0.01, rating: 'good', id: 'v5-2' },
      $web_vitals_INP_value: null,
    });
    expect((await post('/e/', json({ api_key: key, batch: [vitals] }))).status).toBe(200);
    expect((await post('/e/', json({ api_key: key, batch: [vitals] }))).status).toBe(200);
    const stored = await byName(workspaceId);
    expect([...stored.keys()].sort()).toEqual(['CLS', 'LCP']);
    expect(stored.get('LCP')).toMatchObject({
      eventType: 'perf.metric',
      source: 'web',
      metadata: expect.objectContaining({ value: 1234.5, unit: 'ms', rating: 'good', metricId: 'v5-1', navigationType: 'navigate' }),
    });
    expect(stored.get('CLS')?.metadata).toMatchObject({ value: 0.02, unit: 'score', delta: 0.01 });
    expect(stored.get('LCP')?.metadata?.['properties']).toEqual({ $lib: 'web', $lib_version: '5.70.0', $current_url: 'https://shop.example/' });
  });

  it('derives ids for events without a uuid so an identical resend stores nothing twice', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const body = json({ api_key: key, batch: [1, 2].map((n) => ({ ...nodeEvent(`no id ${n}`), uuid: 'not-a-uuid' })) });
    expect((await post('/batch/', body)).status).toBe(200);
    expect((await post('/batch/', body)).status).toBe(200);
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name).sort()).toEqual(['no id 1', 'no id 2']);
  });

  it('refuses an event it cannot map, or one naming another key, and stores the others', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const other = await workspaceWithKey();
    const batch = [
      nodeEvent('kept'),
      { distinct_id: 'no name' },
      'not an event',
      nodeEvent('bad time', {}, { timestamp: 'yesterday' }),
      nodeEvent('elsewhere', { token: other.key }),
      nodeEvent('$web_vitals', { $web_vitals_LCP_value: 'slow' }),
      nodeEvent('also kept'),
    ];
    const response = await post('/batch/', json({ api_key: key, batch }));
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { status: number; refused: number; errors: string[] };
    expect(answer).toMatchObject({ status: 1, refused: 5 });
    expect(answer.errors[0]).toBe('event 1: Missing "event" (the event name) (event)');
    expect(answer.errors[3]).toBe('event 4: This event names another API key than the request (properties.token)');
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name).sort()).toEqual(['also kept', 'kept']);
    expect(await storedEvents(testDb.db, other.workspaceId)).toEqual([]);
  });

  it('stores events sent with another workspace key in that workspace only, and the same uuid in each workspace once', async () => {
    const first = await workspaceWithKey();
    const second = await workspaceWithKey();
    const event = nodeEvent('mine');
    expect((await post('/batch/', json({ api_key: second.key, batch: [event] }))).status).toBe(200);
    expect(await storedEvents(testDb.db, first.workspaceId)).toEqual([]);
    expect(await storedEvents(testDb.db, second.workspaceId)).toMatchObject([{ id: event.uuid, workspaceId: second.workspaceId }]);
    // Ids are unique per workspace: the same uuid through the first workspace's key is that workspace's own event.
    const reused = await post('/batch/', json({ api_key: first.key, batch: [event] }));
    expect(await reused.json()).toEqual({ status: 1 });
    expect(await storedEvents(testDb.db, first.workspaceId)).toMatchObject([{ id: event.uuid, workspaceId: first.workspaceId }]);
    expect(await storedEvents(testDb.db, second.workspaceId)).toHaveLength(1);
  });

  it('truncates properties over the metadata limits with a marker instead of refusing the event, and replaces what the database cannot store', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const huge = nodeEvent('huge', { blob: 'x'.repeat(40_000), nul: 'a\u0000b' });
    expect((await post('/batch/', json({ api_key: key, batch: [huge] }))).status).toBe(200);
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event?.metadata).toMatchObject({ event: 'huge', truncated: ['properties'], properties: expect.stringContaining('…[truncated]') });
    const small = nodeEvent('nul', { nul: 'a\u0000b' });
    expect((await post('/batch/', json({ api_key: key, batch: [small] }))).status).toBe(200);
    expect((await byName(workspaceId)).get('nul')?.metadata).toMatchObject({ properties: { nul: 'a\uFFFDb' } });
  });

  it('keeps an exception whose stack alone passes the metadata limits, its stack truncated', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    // Quotes take two characters each in JSON: a stack within its 16,384 characters, over 32 KB as metadata.
    const frames = [{ filename: '"'.repeat(16_000), function: 'render', lineno: 1, colno: 1 }];
    const exception = nodeEvent('$exception', { $exception_list: [{ type: 'Error', value: 'deep', stacktrace: { type: 'raw', frames } }] });
    expect((await post('/batch/', json({ api_key: key, batch: [exception] }))).status).toBe(200);
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event).toMatchObject({ eventType: 'error', metadata: expect.objectContaining({ message: 'deep', stack: expect.stringContaining('…[truncated]') }) });
  });

  it('keeps an event whose properties hold a "__proto__" key (as text: the event model refuses such keys), touching no prototype', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const body = `{"api_key":"${key}","batch":[{"event":"proto","distinct_id":"u","properties":{"__proto__":{"polluted":true},"plan":"pro"}}]}`;
    expect((await post('/batch/', body)).status).toBe(200);
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event?.metadata).toMatchObject({ event: 'proto', truncated: ['properties'], properties: '{"__proto__":{"polluted":true},"plan":"pro"}' });
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('places an event sent with an offset instead of a timestamp that long before arrival', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const before = Date.now();
    const { timestamp: _dropped, ...withoutTimestamp } = nodeEvent('offset');
    expect((await post('/e/', json({ api_key: key, batch: [{ ...withoutTimestamp, offset: 10_000 }] }))).status).toBe(200);
    const after = Date.now();
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event!.createdAt.getTime()).toBeGreaterThanOrEqual(before - 10_000);
    expect(event!.createdAt.getTime()).toBeLessThanOrEqual(after - 10_000);
  });

  it('refuses the events a sent_at far off moves out of range, answering 200 rather than failing', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const response = await post('/batch/', json({ api_key: key, sent_at: '0001-01-01T00:00:00Z', batch: [nodeEvent('far off')] }));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 1, refused: 1 });
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });

  it('accepts the key as a Bearer header when the body names none', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const response = await post('/capture/', json({ batch: [nodeEvent('bearer')] }), { 'content-type': 'application/json', authorization: `Bearer ${key}` });
    expect(response.status).toBe(200);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
  });
});

describe('PostHog capture refusals', () => {
  it('refuses a missing or unknown key with 401, and keys that cannot write to one workspace with 403', async () => {
    const batch = [nodeEvent('x')];
    const missing = await post('/batch/', json({ batch }));
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ type: 'authentication_error', code: 'missing_api_key' });
    const unknown = await post('/batch/', json({ api_key: 'tlm_ingest_unknown', batch }));
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual({ type: 'authentication_error', code: 'invalid_api_key', detail: 'Unknown or revoked API key' });
    const { ingest } = await createTestKeys(testDb.db);
    const unbound = await post('/batch/', json({ api_key: ingest, batch }));
    expect(unbound.status).toBe(403);
    expect(((await unbound.json()) as { detail: string }).detail).toMatch(/bound to one workspace/);
    const { key: readKey } = await workspaceWithKey('read');
    expect((await post('/batch/', json({ api_key: readKey, batch }))).status).toBe(403);
  });

  it('refuses malformed JSON, bad gzip, a wrong shape and lz64 with 400, counting it for the key that sent it', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const bearer = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const counted = async () =>
      (await services.metrics.adapterRejections.get()).values.find(
        (value) => value.labels['reason'] === 'malformed_request' && value.labels['adapter'] === 'posthog',
      )?.value ?? 0;
    const before = await counted();
    const badJson = await post('/batch/', '{"api_key": "x", "batch": [', bearer);
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toEqual({ type: 'validation_error', code: 'invalid_payload', detail: 'Request body is not valid JSON' });
    expect(await counted()).toBe(before + 1);

    const truncatedGzip = gzipSync(json({ api_key: key, batch: [nodeEvent('x')] })).subarray(0, 20);
    const badGzip = await post('/e/?compression=gzip-js', truncatedGzip, { 'content-type': 'text/plain' });
    expect(badGzip.status).toBe(400);
    expect(((await badGzip.json()) as { detail: string }).detail).toBe('Request body starts like gzip but is not valid gzip data');
    const declaredBadGzip = await post('/batch/', Uint8Array.of(1, 2, 3), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(declaredBadGzip.status).toBe(400);

    for (const shape of [json({ api_key: key, batch: 5 }), json({ api_key: key }), json('text'), json(null)]) {
      const response = await post('/batch/', shape);
      expect(response.status, shape).toBe(400);
    }
    expect(await counted()).toBe(before + 3);
    const lz64 = await post('/e/?compression=lz64', 'data=N4Ig', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(lz64.status).toBe(400);
    expect(((await lz64.json()) as { detail: string }).detail).toMatch(/lz64 is not accepted/);
    expect((await post('/e/', 'data=%%%', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(400);
    expect((await post('/e/', '', { 'content-type': 'text/plain' })).status).toBe(400);
    expect((await app.request('/e/')).status).toBe(400);
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });

  it('refuses JSON nested deeper than 256 levels with 400 saying so, and keeps shallower nesting truncated', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const nested = (depth: number) => `{"api_key":"${key}","batch":[{"event":"deep ${depth}","properties":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}]}`;
    for (const depth of [300, 30_000]) {
      const response = await post('/batch/', nested(depth));
      expect(response.status).toBe(400);
      expect(((await response.json()) as { detail: string }).detail).toBe('Request body nests JSON deeper than 256 levels');
    }
    expect((await post('/batch/', nested(200))).status).toBe(200);
    expect(await storedEvents(testDb.db, workspaceId)).toMatchObject([{ name: 'deep 200', metadata: expect.objectContaining({ truncated: ['properties'] }) }]);
  });

  it('refuses an oversize body and gzip bombs (declared or recognised by magic bytes) with 413 without inflating them whole', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const oversize = await post('/batch/', 'x'.repeat(MAX_BODY_BYTES + 1));
    expect(oversize.status).toBe(413);
    const bomb = gzipSync(Buffer.from(`{"api_key":"${key}","batch":[${' '.repeat(MAX_BODY_BYTES * 16)}]}`));
    expect(bomb.length).toBeLessThan(MAX_BODY_BYTES);
    const declared = await post('/batch/', bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(declared.status).toBe(413);
    const undeclared = await post('/e/?compression=gzip-js', bomb, { 'content-type': 'text/plain' });
    expect(undeclared.status).toBe(413);
    expect(((await undeclared.json()) as { detail: string }).detail).toBe(`Decompressed request body exceeds ${MAX_BODY_BYTES} bytes`);
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });

  it('answers a spent rate limit with 503 and Retry-After, which posthog-js retries (it drops 429)', async () => {
    const { workspaceId, key } = await workspaceWithKey('ingest', { eventsPerSecond: 1, burst: 1 });
    const batch = (name: string) => json({ api_key: key, batch: [nodeEvent(name), nodeEvent(`${name} again`)] });
    expect((await post('/batch/', batch('first'))).status).toBe(200);
    const limited = await post('/batch/', batch('second'));
    expect(limited.status).toBe(503);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ type: 'server_error', code: 'too_many_requests' });
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.name).sort()).toEqual(['first', 'first again']);
  });

  it('answers 503 with Retry-After when the database is unavailable, and 500 without detail on an internal error', async () => {
    const { key } = await workspaceWithKey();
    const failingWith = (error: Error) => appFailingToIngest(testDb.db, config, services, error);
    const outage = await post('/batch/', json({ api_key: key, batch: [nodeEvent('x')] }), undefined, failingWith(databaseOutage()));
    expect(outage.status).toBe(503);
    expect(outage.headers.get('retry-after')).toBe('2');
    const broken = await post('/batch/', json({ api_key: key, batch: [nodeEvent('x')] }), undefined, failingWith(new Error('secret internals')));
    expect(broken.status).toBe(500);
    expect(await broken.text()).not.toContain('secret');
  });
});

describe('PostHog feature flags and remote config', () => {
  it('answers /flags and /decide with empty flags in both the v2 and the older shape', async () => {
    for (const path of ['/flags/?v=2&config=true', '/flags', '/decide/?v=3', '/decide']) {
      const response = await post(path, json({ token: 'any', distinct_id: 'u' }));
      expect(response.status, path).toBe(200);
      expect(await response.json()).toEqual({
        flags: {},
        featureFlags: {},
        featureFlagPayloads: {},
        errorsWhileComputingFlags: false,
        quotaLimited: [],
        requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
    }
  });

  it('answers the remote config as JSON and as the script posthog-js loads, naming the gzip it reads', async () => {
    const config = await app.request('/array/phc_token/config');
    expect(config.status).toBe(200);
    expect(await config.json()).toMatchObject({ supportedCompression: ['gzip', 'gzip-js'] });
    const script = await app.request('/array/phc_token/config.js');
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    const window: { _POSTHOG_REMOTE_CONFIG?: Record<string, { config: unknown }> } = {};
    new Function('window', await script.text())(window);
    expect(window._POSTHOG_REMOTE_CONFIG?.['phc_token']?.config).toMatchObject({ supportedCompression: ['gzip', 'gzip-js'] });
    expect((await app.request('/array/%3Cscript%3E/config.js')).status).toBe(404);
  });

  it('lets browsers on other origins call the capture and flags paths', async () => {
    const preflight = await app.request('/flags/?v=2', {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    const capture = await post('/e/', json({}), { 'content-type': 'text/plain', origin: 'https://shop.example' });
    expect(capture.headers.get('access-control-allow-origin')).toBe('*');
  });
});

import { gzipSync } from 'node:zlib';
import { sql as sqlTag } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignUserId } from '../server/ingest-adapters/deterministic-ids.ts';
import { ProtobufReader, ProtobufWriter } from '../server/ingest-adapters/otlp/protobuf-wire.ts';
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

const workspaceWithKey = (kind: 'ingest' | 'read' = 'ingest') => createWorkspaceWithKey(testDb.db, kind);

/** Nanoseconds since the epoch, `msAgo` before now, with sub-millisecond digits. */
function nanosAgo(msAgo: number, extraNanos = 123_456n): bigint {
  return BigInt(Date.now() - msAgo) * 1_000_000n + extraNanos;
}

function isoMicros(nanos: bigint): string {
  const micros = nanos / 1000n;
  return `${new Date(Number(micros / 1000n)).toISOString().slice(0, -1)}${(micros % 1000n).toString().padStart(3, '0')}Z`;
}

function post(path: string, body: BodyInit, headers: Record<string, string>) {
  // `duplex` is what a streamed (chunked) request body needs; DOM's RequestInit type predates it.
  return app.request(path, { method: 'POST', body, headers, ...(body instanceof ReadableStream && { duplex: 'half' }) } as RequestInit);
}

const json = (key: string, extra: Record<string, string> = {}) => ({ 'content-type': 'application/json', authorization: `Bearer ${key}`, ...extra });
const proto = (key: string, extra: Record<string, string> = {}) => ({ 'content-type': 'application/x-protobuf', authorization: `Bearer ${key}`, ...extra });

/** A body sent as a stream with no Content-Length, the way the JS exporter sends gzip. */
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      const half = Math.floor(bytes.length / 2);
      controller.enqueue(bytes.subarray(0, half));
      controller.enqueue(bytes.subarray(half));
      controller.close();
    },
  });
}

function jsonLogs(logRecords: unknown[], resourceAttributes: unknown[] = [{ key: 'service.name', value: { stringValue: 'checkout' } }]) {
  return JSON.stringify({
    resourceLogs: [{ resource: { attributes: resourceAttributes }, scopeLogs: [{ scope: { name: 'orders', version: '2.1.0' }, logRecords }] }],
  });
}

const w = () => new ProtobufWriter();
const kv = (key: string, value: string) => w().string(1, key).message(2, w().string(1, value));

function protoLogs(records: ProtobufWriter[]): Uint8Array<ArrayBuffer> {
  const scope = w().message(1, w().string(1, 'payments'));
  for (const record of records) scope.message(2, record);
  return w()
    .message(
      1,
      w()
        .message(1, w().message(1, kv('service.name', 'billing')))
        .message(2, scope),
    )
    .finish();
}

function readStatus(bytes: Uint8Array): { code: number; message: string } {
  const reader = new ProtobufReader(bytes);
  const status = { code: 0, message: '' };
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (field === 1) status.code = reader.varint();
    else if (field === 2) status.message = reader.string();
    else reader.skipField(wireType);
  }
  return status;
}

describe('OTLP/HTTP logs', () => {
  it('stores each JSON log record once as a log event with its time to the microsecond, workspace, user and metadata', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const userId = '0b9e3c1a-6f42-4f0e-9c77-3b2d9a1e5f10';
    const time = nanosAgo(60_000);
    const body = jsonLogs([
      {
        timeUnixNano: time.toString(),
        severityNumber: 9,
        severityText: 'INFO',
        body: { stringValue: 'order placed' },
        eventName: 'order.placed',
        attributes: [
          { key: 'user.id', value: { stringValue: userId } },
          { key: 'items', value: { intValue: 3 } },
          { key: 'total', value: { intValue: '9007199254740993' } },
        ],
        traceId: '5B8EFFF798038103D269B633813FC60C',
        spanId: 'EEE19B7EC3C1B174',
      },
      { observedTimeUnixNano: time.toString(), body: { stringValue: 'no time' }, attributes: [{ key: 'user.id', value: { stringValue: 'alice' } }] },
    ]);
    const response = await post('/v1/logs', body, json(key));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toEqual({});

    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(2);
    const [first, second] = stored.sort((a, b) => a.name.localeCompare(b.name));
    expect(first).toMatchObject({ workspaceId, userId, source: 'backend', eventType: 'log', name: 'order.placed' });
    expect(first?.createdAt.toISOString()).toBe(new Date(Number(time / 1_000_000n)).toISOString());
    expect(first?.metadata).toMatchObject({
      body: 'order placed',
      severityNumber: 9,
      severityText: 'INFO',
      attributes: { 'user.id': userId, items: 3, total: '9007199254740993' },
      serviceName: 'checkout',
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      timeUnixNano: time.toString(),
      scope: { name: 'orders', version: '2.1.0' },
    });
    // Not a UUID: the workspace's name-based id for it, the raw value kept in the attributes; the name falls back to the scope.
    expect(second).toMatchObject({
      userId: foreignUserId(workspaceId, 'alice'),
      eventType: 'log',
      name: 'orders',
      metadata: expect.objectContaining({ attributes: { 'user.id': 'alice' } }),
    });
  });

  it('keeps the microseconds of timeUnixNano in createdAt', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const time = nanosAgo(5_000, 654_321n);
    const response = await post('/v1/logs', jsonLogs([{ timeUnixNano: time.toString(), body: { stringValue: 'x' } }]), json(key));
    expect(response.status).toBe(200);
    const { rows } = { rows: await testDb.db.rows<{ t: string }>(sqlCreatedAtMicros(workspaceId)) };
    expect(rows[0]?.t).toBe(isoMicros(time));
  });

  it('stores a gzip protobuf export sent in chunks once, and an identical resend stores nothing twice', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const time = nanosAgo(1_000);
    const record = w()
      .fixed64(1, time)
      .varint(2, 17)
      .string(3, 'ERROR')
      .message(5, w().string(1, 'charge failed'))
      .message(6, kv('exception.type', 'CardDeclined'))
      .message(6, kv('exception.message', 'card declined'))
      .message(6, kv('exception.stacktrace', 'CardDeclined: card declined\n    at charge (billing.ts:10:5)'));
    const bytes = gzipSync(protoLogs([record, w().fixed64(1, time).message(5, w().string(1, 'retrying'))]));
    const send = () => post('/v1/logs', chunked(bytes), proto(key, { 'content-encoding': 'gzip' }));

    const first = await send();
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('application/x-protobuf');
    expect((await first.arrayBuffer()).byteLength).toBe(0);
    const again = await send();
    expect(again.status).toBe(200);

    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(2);
    for (const event of stored) expect(await countEventsWithId(testDb.db, event.id)).toBe(1);
    const error = stored.find((event) => event.eventType === 'error');
    expect(error).toMatchObject({ name: 'payments', source: 'backend' });
    expect(error?.metadata).toMatchObject({
      message: 'card declined',
      kind: 'CardDeclined',
      stack: 'CardDeclined: card declined\n    at charge (billing.ts:10:5)',
      serviceName: 'billing',
      severityNumber: 17,
    });
    expect(stored.find((event) => event.eventType === 'log')?.metadata).toMatchObject({ body: 'retrying' });
  });

  it('answers partialSuccess with the refused count and reason when some records cannot be stored', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const body = jsonLogs([
      { timeUnixNano: nanosAgo(1_000).toString(), body: { stringValue: 'fine' } },
      { timeUnixNano: '1000000000', body: { stringValue: 'from 1970' } },
    ]);
    const response = await post('/v1/logs', body, json(key));
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { partialSuccess: { rejectedLogRecords: string; errorMessage: string } };
    expect(answer.partialSuccess.rejectedLogRecords).toBe('1');
    expect(answer.partialSuccess.errorMessage).toMatch(/record 1: createdAt is more than .* in the past \(createdAt\)/);
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.metadata)).toEqual([expect.objectContaining({ body: 'fine' })]);

    const protoResponse = await post('/v1/logs', protoLogs([w().fixed64(1, 1_000_000_000n)]), proto(key));
    const partial = new ProtobufReader(new Uint8Array(await protoResponse.arrayBuffer()));
    const { field } = partial.tag();
    expect(field).toBe(1);
    const inner = partial.message();
    expect(inner.tag().field).toBe(1);
    expect(inner.varint()).toBe(1);
  });

  it('truncates metadata over the limits with a marker instead of refusing the record', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const response = await post('/v1/logs', jsonLogs([{ timeUnixNano: nanosAgo(1_000).toString(), body: { stringValue: 'x'.repeat(40_000) } }]), json(key));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    const [event] = await storedEvents(testDb.db, workspaceId);
    expect(event?.metadata).toMatchObject({ body: expect.stringMatching(/^x+…\[truncated]$/), truncated: ['body'] });
  });
});

describe('OTLP/HTTP traces', () => {
  it('stores JSON and protobuf spans as perf.span events with their duration in ms, ids, kind, status and route', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const start = nanosAgo(2_000);
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] },
          scopeSpans: [
            {
              scope: { name: '@opentelemetry/instrumentation-http' },
              spans: [
                {
                  traceId: '5b8efff798038103d269b633813fc60c',
                  spanId: 'eee19b7ec3c1b174',
                  parentSpanId: 'eee19b7ec3c1b173',
                  name: 'GET',
                  kind: 2,
                  startTimeUnixNano: start.toString(),
                  endTimeUnixNano: (start + 12_500_000n).toString(),
                  attributes: [
                    { key: 'http.route', value: { stringValue: '/orders/:id' } },
                    { key: 'http.request.method', value: { stringValue: 'GET' } },
                    { key: 'http.response.status_code', value: { intValue: 200 } },
                  ],
                  status: { code: 2, message: 'boom' },
                  flags: 257,
                },
              ],
            },
          ],
        },
      ],
    });
    const response = await post('/v1/traces', body, json(key));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});

    const span = w()
      .bytes(
        1,
        Uint8Array.from({ length: 16 }, () => 0x11),
      )
      .bytes(
        2,
        Uint8Array.from({ length: 8 }, () => 0x22),
      )
      .string(5, 'charge card')
      .varint(6, 3)
      .fixed64(7, start)
      .fixed64(8, start + 1_500_000n);
    const protoBody = w()
      .message(1, w().message(2, w().message(1, w().string(1, 'billing')).message(2, span)))
      .finish();
    expect((await post('/v1/traces', protoBody, proto(key))).status).toBe(200);
    expect((await post('/v1/traces', protoBody, proto(key))).status).toBe(200);

    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(2);
    const server = stored.find((event) => event.name === 'GET /orders/:id');
    expect(server).toMatchObject({ eventType: 'perf.span', source: 'backend' });
    expect(server?.createdAt.toISOString()).toBe(new Date(Number(start / 1_000_000n)).toISOString());
    expect(server?.metadata).toMatchObject({
      value: 12.5,
      unit: 'ms',
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: 'eee19b7ec3c1b173',
      kind: 'server',
      status: { code: 'error', message: 'boom' },
      'http.route': '/orders/:id',
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      serviceName: 'api',
    });
    expect(stored.find((event) => event.name === 'charge card')?.metadata).toMatchObject({ value: 1.5, unit: 'ms', kind: 'client', traceId: '11'.repeat(16) });
  });
});

describe('OTLP/HTTP refusals', () => {
  it('refuses a missing or unknown key with 401 and keys that cannot write to one workspace with 403', async () => {
    const body = jsonLogs([{ body: { stringValue: 'x' } }]);
    expect((await post('/v1/logs', body, { 'content-type': 'application/json' })).status).toBe(401);
    const unknown = await post('/v1/logs', body, json('tlm_ingest_unknown'));
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual({ code: 16, message: 'Unknown or revoked API key' });

    const { ingest } = await createTestKeys(testDb.db);
    const unbound = await post('/v1/logs', body, json(ingest));
    expect(unbound.status).toBe(403);
    expect(((await unbound.json()) as { message: string }).message).toMatch(/bound to one workspace/);
    const { key: readKey } = await workspaceWithKey('read');
    expect((await post('/v1/logs', body, json(readKey))).status).toBe(403);
  });

  it('refuses malformed protobuf and JSON with 400 and a message in the request format', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const badProto = await post('/v1/logs', Uint8Array.of(0x0a, 0x05, 0x01), proto(key));
    expect(badProto.status).toBe(400);
    expect(readStatus(new Uint8Array(await badProto.arrayBuffer()))).toEqual({ code: 3, message: expect.stringMatching(/^Malformed protobuf: Truncated/) });
    const badJson = await post('/v1/traces', '{"resourceSpans": [', json(key));
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toEqual({ code: 3, message: 'Malformed JSON: the body is not valid UTF-8 JSON' });
    const badField = await post('/v1/logs', jsonLogs([{ timeUnixNano: 'soon' }]), json(key));
    expect(badField.status).toBe(400);
    expect(((await badField.json()) as { message: string }).message).toBe(
      'resourceLogs.0.scopeLogs.0.logRecords.0.timeUnixNano must be an integer (a number or a decimal string)',
    );
    expect((await post('/v1/logs', 'x', { authorization: `Bearer ${key}`, 'content-type': 'text/plain' })).status).toBe(415);
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });

  it('refuses an oversize body and a gzip bomb with 413', async () => {
    const { workspaceId, key } = await workspaceWithKey();
    const oversize = await post('/v1/logs', chunked(new Uint8Array(MAX_BODY_BYTES + 1)), proto(key));
    expect(oversize.status).toBe(413);
    const bomb = gzipSync(new Uint8Array(MAX_BODY_BYTES * 16));
    expect(bomb.length).toBeLessThan(MAX_BODY_BYTES);
    const inflated = await post('/v1/logs', chunked(bomb), proto(key, { 'content-encoding': 'gzip' }));
    expect(inflated.status).toBe(413);
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });

  it('answers 429 with Retry-After once the key has spent its rate limit, storing nothing of that export', async () => {
    const { workspaceId, key } = await createWorkspaceWithKey(testDb.db, 'ingest', { eventsPerSecond: 1, burst: 1 });
    const records = (text: string) =>
      jsonLogs([text, `${text} again`].map((body) => ({ timeUnixNano: nanosAgo(1_000).toString(), body: { stringValue: body } })));
    expect((await post('/v1/logs', records('first'), json(key))).status).toBe(200);
    const limited = await post('/v1/logs', records('second'), json(key));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited.json()) as { code: number }).code).toBe(8);
    expect((await storedEvents(testDb.db, workspaceId)).map((event) => event.metadata?.['body'])).toEqual(expect.arrayContaining(['first', 'first again']));
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(2);
  });

  it('answers /v1/metrics with 501 saying metrics are not accepted yet', async () => {
    const { key } = await workspaceWithKey();
    const response = await post('/v1/metrics', '{}', json(key));
    expect(response.status).toBe(501);
    expect(await response.json()).toEqual({ code: 12, message: 'Metrics are not accepted yet: send logs to /v1/logs and traces to /v1/traces' });
  });

  it('answers 503 with Retry-After when the database is unavailable, so exporters retry', async () => {
    const { key } = await workspaceWithKey();
    const outage = appFailingToIngest(testDb.db, config, services, databaseOutage());
    const response = await outage.request('/v1/logs', { method: 'POST', body: protoLogs([w().fixed64(1, nanosAgo(1_000))]), headers: proto(key) });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('2');
    expect(readStatus(new Uint8Array(await response.arrayBuffer()))).toEqual({ code: 14, message: 'The database is unavailable; retry shortly' });
  });
});

function sqlCreatedAtMicros(workspaceId: string) {
  return sqlTag`select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t from telemetry.events where workspace_id = ${workspaceId}`;
}

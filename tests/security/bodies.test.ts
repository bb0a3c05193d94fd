import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appRouter } from '../../server/routers/index.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  capturingLogger,
  createTestKeys,
  servicesWith,
  startTestServer,
  testConfig,
  type TestKeys,
  type TestServer,
  createTestWorkspace,
} from '../support/app.ts';
import { storedEvents } from '../support/events.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let server: TestServer;
let keys: TestKeys;
const BODY_LIMIT = 64 * 1024;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  server = await startTestServer(testDb.db, {
    config: testConfig({
      MAX_BODY_BYTES: String(BODY_LIMIT),
      MAX_BATCH_EVENTS: '100',
      REQUEST_TIMEOUT_MS: '1000',
      HEADERS_TIMEOUT_MS: '1000',
      RATE_LIMIT_ADMIN_EPS: '10000',
    }),
  });
});
afterAll(async () => {
  agent.destroy();
  await server?.close();
  await testDb?.drop();
});

interface RawResponse {
  status: number;
  body: string;
  reusedSocket: boolean;
}

/** A POST over a keep-alive agent, so a test can see whether the connection survived. */
function post(path: string, body: Buffer | string | undefined, headers: Record<string, string> = {}, chunks?: Buffer[]): Promise<RawResponse> {
  // A streamed body refused midway leaves its connection closed: give it one of its own.
  const connection = chunks ? false : agent;
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${server.url}${path}`,
      {
        method: 'POST',
        agent: connection,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${keys.admin}`,
          ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }),
          ...headers,
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text, reusedSocket: request.reusedSocket }));
      },
    );
    request.on('error', reject);
    if (chunks) {
      for (const chunk of chunks) request.write(chunk);
      request.end();
    } else {
      request.end(body);
    }
  });
}

const event = (workspaceId: string, extra: Record<string, unknown> = {}) => ({ workspaceId, source: 'web', eventType: 'custom', name: 'x', ...extra });

/** A JSON body of exactly `size` bytes, padded inside the first event's metadata. */
function paddedBody(size: number, envelope: (events: unknown[]) => unknown, workspaceId: string): string {
  const template = JSON.stringify(envelope([event(workspaceId, { metadata: { pad: '' } })]));
  return template.replace('"pad":""', `"pad":"${'x'.repeat(size - Buffer.byteLength(template))}"`);
}

describe('body limits on every route', () => {
  const mutations = Object.entries(appRouter._def.procedures)
    .filter(([, procedure]) => (procedure as unknown as { _def: { type: string } })._def.type === 'mutation')
    .map(([path]) => path);
  const routes: [string, (events: unknown[]) => unknown][] = [
    ['/api/events', (events) => events[0]],
    ['/api/events/batch', (events) => ({ events })],
    ['/api/admin/keys', (events) => ({ kind: 'ingest', extra: events })],
    [`/api/admin/keys/${randomUUID()}/revoke`, (events) => ({ note: events })],
    [`/api/admin/keys/${randomUUID()}/rotate`, (events) => ({ note: events })],
    ...mutations.map((path): [string, (events: unknown[]) => unknown] => [`/trpc/${path}`, (events) => ({ json: { events, ...(events[0] as object) } })]),
  ];

  it.each(routes)('%s answers 413 for one byte over the limit, stores nothing, and keeps the connection usable', async (path, envelope) => {
    const workspaceId = await newWorkspace();
    const atLimit = paddedBody(BODY_LIMIT + 1, envelope, workspaceId);
    expect(Buffer.byteLength(atLimit)).toBe(BODY_LIMIT + 1);
    const response = await post(path, atLimit);
    expect(response.status).toBe(413);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
    const next = await post('/api/events', JSON.stringify(event(await newWorkspace())));
    expect(next.status).toBe(200);
    expect(next.reusedSocket).toBe(true);
  });

  it('accepts a body of exactly the limit', async () => {
    const workspaceId = await newWorkspace();
    const body = paddedBody(BODY_LIMIT, (events) => ({ events }), workspaceId);
    // 32 KB of metadata is the per-event bound, so the padding is refused there, not by the body limit.
    const response = await post('/api/events/batch', body);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ rejected: 1 });
  });

  it('answers 413 for a chunked body that grows past the limit', async () => {
    const workspaceId = await newWorkspace();
    const body = Buffer.from(paddedBody(BODY_LIMIT * 3, (events) => ({ events }), workspaceId));
    const chunks = Array.from({ length: 12 }, (_, n) => body.subarray((n * body.length) / 12, ((n + 1) * body.length) / 12));
    const response = await post('/api/events/batch', undefined, { 'transfer-encoding': 'chunked' }, chunks);
    expect(response.status).toBe(413);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('accepts a gzip-compressed body', async () => {
    const workspaceId = await newWorkspace();
    const response = await post('/api/events/batch', gzipSync(JSON.stringify({ events: [event(workspaceId), event(workspaceId)] })), {
      'content-encoding': 'gzip',
    });
    expect(response.status).toBe(200);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(2);
  });

  it('answers 413 for a gzip bomb without inflating it past the limit', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(BODY_LIMIT);
    const response = await post('/api/events/batch', bomb, { 'content-encoding': 'gzip' });
    expect(response.status).toBe(413);
    expect(response.body).toContain('Decompressed');
  });

  it('answers 400 for a body that claims gzip but is not', async () => {
    expect((await post('/api/events', 'not gzip at all', { 'content-encoding': 'gzip' })).status).toBe(400);
  });

  it('answers 415 for an unsupported content encoding', async () => {
    expect((await post('/api/events', 'x', { 'content-encoding': 'br' })).status).toBe(415);
  });

  it('answers 413 for a batch of one event more than allowed, storing none of them', async () => {
    const workspaceId = await newWorkspace();
    const response = await post('/api/events/batch', JSON.stringify({ events: Array.from({ length: 101 }, () => event(workspaceId)) }));
    expect(response.status).toBe(413);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('cuts off a request whose body stalls', async () => {
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const closed = new Promise<string>((resolve) => {
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('close', () => resolve(received));
    });
    socket.write(`POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"source":`);
    // Only the service closes this socket (the test's own timeout bounds the wait).
    const received = await closed;
    expect(received === '' || received.startsWith('HTTP/1.1 408')).toBe(true);
  });
});

describe('malformed and hostile input', () => {
  const ingest = (body: string, extraHeaders: Record<string, string> = {}) =>
    post('/api/events', body, { authorization: `Bearer ${keys.ingest}`, ...extraHeaders });

  it.each([
    ['invalid JSON', '{"source":"web",'],
    ['an empty body', ''],
    ['a JSON array instead of an object', '[1,2,3]'],
    ['null', 'null'],
  ])('answers 400 to %s', async (_label, body) => {
    const response = await ingest(body);
    expect(response.status).toBe(400);
    expect(response.body).not.toMatch(/at .+\.(ts|js):\d+/);
  });

  it('answers 400 to invalid JSON on the tRPC face', async () => {
    expect((await post('/trpc/telemetry.ingest', '{"json":', { authorization: `Bearer ${keys.ingest}` })).status).toBe(400);
  });

  it('answers 415 to a wrong content type on both faces', async () => {
    expect((await ingest('source=web', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBeGreaterThanOrEqual(400);
    expect((await ingest('hello', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post('/trpc/telemetry.ingest', '{"json":{}}', { 'content-type': 'text/plain', authorization: `Bearer ${keys.ingest}` })).status).toBe(415);
  });

  it.each([
    ['NUL in a metadata key', '{"a\\u0000b":1}', 'metadata'],
    ['NUL in a metadata value', '{"a":"x\\u0000"}', 'metadata.a'],
    ['a lone high surrogate in a value', '{"a":"\\ud800"}', 'metadata.a'],
    ['a lone low surrogate in a key', '{"\\udc00":1}', 'metadata'],
    ['a __proto__ key', '{"__proto__":{"polluted":true}}', 'metadata.__proto__'],
    ['a constructor key', '{"constructor":{"prototype":{"polluted":true}}}', 'metadata.constructor'],
  ])('answers 400 naming the field for %s, stores nothing, leaves prototypes alone', async (_label, metadata, path) => {
    const workspaceId = await newWorkspace();
    const response = await ingest(`{"workspaceId":"${workspaceId}","source":"web","eventType":"custom","name":"x","metadata":${metadata}}`);
    expect(response.status).toBe(400);
    expect((JSON.parse(response.body) as { data: { issues: { path: string }[] } }).data.issues[0]?.path).toBe(path);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('answers 400 for a name with NUL or a lone surrogate', async () => {
    expect((await ingest('{"source":"web","eventType":"custom","name":"a\\u0000"}')).status).toBe(400);
    expect((await ingest('{"source":"web","eventType":"custom","name":"\\udfff"}')).status).toBe(400);
  });

  it.each([
    ['arrays', (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`],
    ['objects', (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`],
  ])('answers 400 to metadata nested 10,000 deep in %s, on both faces', async (_label, nest) => {
    const deep = nest(10_000);
    const rest = await ingest(`{"source":"web","eventType":"custom","name":"x","metadata":{"a":${deep}}}`);
    expect(rest.status).toBe(400);
    const trpc = await post('/trpc/telemetry.ingest', `{"json":{"source":"web","eventType":"custom","name":"x","metadata":{"a":${deep}}}}`, {
      authorization: `Bearer ${keys.ingest}`,
    });
    expect(trpc.status).toBe(400);
  });

  it.each([
    ['a huge string', { name: 'n'.repeat(60_000) }],
    ['a huge array', { metadata: { list: Array.from({ length: 5_000 }, (_, n) => n) } }],
    ['a huge object', { metadata: Object.fromEntries(Array.from({ length: 3_000 }, (_, n) => [`k${n}`, n])) }],
    ['a number too large for JSON (1e400)', '1e400'],
    ['a createdAt in the year 275760', { createdAt: '+275760-09-13T00:00:00.000Z' }],
    ['a createdAt in the year 1', { createdAt: '0001-01-01T00:00:00.000Z' }],
    ['a createdAt given as a number', { createdAt: 1_700_000_000_000 }],
    ['a perf.metric with a value of 1e400', 'perf'],
  ])('answers 4xx, never 500, to %s and stores nothing', async (_label, override) => {
    const workspaceId = await newWorkspace();
    let body: string;
    if (override === '1e400') body = `{"workspaceId":"${workspaceId}","source":"web","eventType":"custom","name":"x","metadata":{"n":1e400}}`;
    else if (override === 'perf')
      body = `{"workspaceId":"${workspaceId}","source":"web","eventType":"perf.metric","name":"x","metadata":{"value":1e400,"unit":"ms"}}`;
    else body = JSON.stringify(event(workspaceId, override as Record<string, unknown>));
    const response = await ingest(body);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });
});

describe('the same id', () => {
  it('twice in one batch and again in another call is stored once', async () => {
    const workspaceId = await newWorkspace();
    const id = randomUUID();
    const first = await post('/api/events/batch', JSON.stringify({ events: [event(workspaceId, { id }), event(workspaceId, { id })] }), {
      authorization: `Bearer ${keys.ingest}`,
    });
    const again = await post('/api/events/batch', JSON.stringify({ events: [event(workspaceId, { id })] }), { authorization: `Bearer ${keys.ingest}` });
    expect((JSON.parse(first.body) as { receipts: { status: string }[] }).receipts.map((r) => r.status)).toEqual(['accepted', 'duplicate']);
    expect((JSON.parse(again.body) as { receipts: { status: string }[] }).receipts.map((r) => r.status)).toEqual(['duplicate']);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
  });

  it('in two workspaces is two events, one in each: ids are unique per workspace', async () => {
    const id = randomUUID();
    const [first, second] = [await newWorkspace(), await newWorkspace()];
    expect((await post('/api/events', JSON.stringify(event(first, { id })), { authorization: `Bearer ${keys.ingest}` })).status).toBe(200);
    expect((await post('/api/events', JSON.stringify(event(second, { id })), { authorization: `Bearer ${keys.ingest}` })).status).toBe(200);
    expect(await storedEvents(testDb.db, first)).toHaveLength(1);
    expect(await storedEvents(testDb.db, second)).toHaveLength(1);
  });
});

describe('production mode', () => {
  it('answers a forced internal error with a generic message on both faces', async () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    const { logger } = capturingLogger();
    const boom = () => Promise.reject(Object.assign(new Error('syntax error at or near "SELECT" in telemetry.events'), { code: '42601' }));
    const failing = await startTestServer(testDb.db, { logger, services: servicesWith(testDb.db, { ingestor: { ingestEvent: boom, ingestBatch: boom } }) });
    try {
      for (const [path, body] of [
        ['/api/events', JSON.stringify(event(await newWorkspace()))],
        ['/trpc/telemetry.ingest', JSON.stringify({ json: event(randomUUID()) })],
      ] as const) {
        const response = await fetch(`${failing.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}` },
          body,
        });
        const text = await response.text();
        expect(response.status).toBe(500);
        expect(text).toContain('Internal server error');
        expect(text).not.toMatch(/SELECT|telemetry\.events|42601|stack|\.ts:\d/);
      }
    } finally {
      process.env.NODE_ENV = previous;
      await failing.close();
    }
  });
});

describe('browser access', () => {
  it('answers CORS preflights for browser ingest', async () => {
    const response = await fetch(`${server.url}/api/events`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-headers')).toContain('authorization');
  });

  it('allows only the configured origins when a list is set', async () => {
    const restricted = await startTestServer(testDb.db, { config: testConfig({ CORS_ORIGINS: 'https://app.example.com' }) });
    try {
      const preflight = (origin: string) =>
        fetch(`${restricted.url}/api/events`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      expect((await preflight('https://app.example.com')).headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      expect((await preflight('https://evil.example.net')).headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await restricted.close();
    }
  });

  it('sends security headers with the HTML explorer', async () => {
    const response = await fetch(`${server.url}/docs`);
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });
});

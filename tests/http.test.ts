import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type AppRouter } from '../client/index.ts';
import { DomainError } from '../server/errors.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import {
  capturingLogger,
  createTestKeys,
  servicesWith,
  startTestServer,
  testConfig,
  type TestKeys,
  type TestServer,
  createTestWorkspace,
} from './support/app.ts';
import { storedEvents } from './support/events.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let server: TestServer;
let keys: TestKeys;
const BODY_LIMIT = 64 * 1024;

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  await maintainPartitions(testDb.db, { daysAhead: 2 });
  server = await startTestServer(testDb.db, { config: testConfig({ MAX_BODY_BYTES: String(BODY_LIMIT) }) });
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

function postJson(path: string, body: unknown, headers: Record<string, string> = {}, baseUrl = server.url) {
  return fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('typed tRPC client over HTTP', () => {
  it('stores an event sent by the typed client, readable back from the database', async () => {
    const workspaceId = await newWorkspace();
    const client = createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${keys.ingest}` } });
    const receipt = await client.telemetry.ingest.mutate({
      workspaceId,
      source: 'web',
      eventType: 'perf.metric',
      name: 'LCP',
      metadata: { value: 2100, unit: 'ms', route: '/home' },
    });
    expect(receipt.createdAt).toBeInstanceOf(Date);
    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: receipt.id, name: 'LCP', metadata: { value: 2100, unit: 'ms', route: '/home' } });
  });

  it('sends a batch and gets one receipt per event in input order', async () => {
    const workspaceId = await newWorkspace();
    const client = createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${keys.ingest}` } });
    const result = await client.telemetry.ingestBatch.mutate({
      sentAt: new Date(),
      events: [
        { workspaceId, source: 'cli', eventType: 'custom', name: 'a', createdAt: new Date() },
        { workspaceId, source: 'cli', eventType: 'custom', name: '' },
      ],
    });
    expect(result.receipts.map((r) => r.status)).toEqual(['accepted', 'rejected']);
    expect(result.receipts[1]).toMatchObject({ index: 1, code: 'invalid_event', path: 'name' });
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
  });

  it('reports invalid input as a 400 whose data names the field path', async () => {
    const client = createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${keys.ingest}` } });
    const error = await client.telemetry.ingest
      .mutate({ source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: Number.NaN, unit: 'ms' } })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TRPCClientError);
    const clientError = error as TRPCClientError<AppRouter>;
    expect(clientError.data?.httpStatus).toBe(400);
    expect(clientError.data?.issues?.[0]?.path).toBe('metadata.value');
    expect(clientError.message).toContain('metadata.value');
    expect(JSON.stringify(clientError.shape)).not.toMatch(/stack|at .*\.ts/);
  });
});

describe('plain-JSON face', () => {
  it('stores an event posted as plain JSON (as curl would), readable back from the database', async () => {
    const workspaceId = await newWorkspace();
    const response = await postJson('/api/events', {
      workspaceId,
      source: 'backend',
      eventType: 'custom',
      name: 'deploy.finished',
      metadata: { version: '1.2.3' },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { id: string; createdAt: string };
    expect(Object.keys(body).sort()).toEqual(['createdAt', 'id']);
    expect(new Date(body.createdAt).toISOString()).toBe(body.createdAt);
    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toMatchObject([{ id: body.id, name: 'deploy.finished', metadata: { version: '1.2.3' } }]);
  });

  it('accepts a batch as plain JSON with ISO timestamps', async () => {
    const workspaceId = await newWorkspace();
    const response = await postJson('/api/events/batch', {
      sentAt: new Date().toISOString(),
      events: [{ workspaceId, source: 'mobile', eventType: 'ui.interaction', name: 'tap', createdAt: new Date().toISOString() }],
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { accepted: number };
    expect(body.accepted).toBe(1);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
  });

  it('answers invalid input with 400 and the field path', async () => {
    const workspaceId = await newWorkspace();
    const response = await postJson('/api/events', { workspaceId, source: 'web', eventType: 'custom', name: 'x', metadata: { note: 'a\u0000b' } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { data: { issues: { path: string }[] } };
    expect(body.data.issues[0]?.path).toBe('metadata.note');
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('answers malformed JSON with 400', async () => {
    const response = await postJson('/api/events', '{"source":');
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('PARSE_ERROR');
  });

  it('answers a non-JSON content type with 415', async () => {
    const response = await fetch(`${server.url}/api/events`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${keys.ingest}` },
      body: 'hello',
    });
    expect(response.status).toBe(415);
  });
});

describe('limits and failures over HTTP', () => {
  it.each(['/api/events/batch', '/trpc/telemetry.ingestBatch'])(
    'refuses a body one byte over the limit on %s with 413, and the connection stays usable',
    async (path) => {
      const workspaceId = await newWorkspace();
      const event = { workspaceId, source: 'web', eventType: 'custom', name: 'x' };
      const envelope = path.startsWith('/trpc') ? (events: unknown[]) => ({ json: { events } }) : (events: unknown[]) => ({ events });
      let body = JSON.stringify(envelope([{ ...event, metadata: { pad: '' } }]));
      body = body.replace('"pad":""', `"pad":"${'x'.repeat(BODY_LIMIT + 1 - body.length)}"`);
      expect(Buffer.byteLength(body)).toBe(BODY_LIMIT + 1);
      const response = await postJson(path, body);
      expect(response.status).toBe(413);
      expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
      const next = await postJson('/api/events', event);
      expect(next.status).toBe(200);
    },
  );

  it('hides an internal failure behind a generic 500 on both faces', async () => {
    const { logger, lines } = capturingLogger();
    const secret = 'duplicate key value violates unique constraint "events_pkey"';
    const failing = await startTestServer(testDb.db, {
      logger,
      services: servicesWith(testDb.db, {
        ingestor: { ingestEvent: () => Promise.reject(new Error(secret)), ingestBatch: () => Promise.reject(new Error(secret)) },
      }),
    });
    try {
      const rest = await postJson('/api/events', { source: 'web', eventType: 'custom', name: 'x' }, {}, failing.url);
      expect(rest.status).toBe(500);
      const restBody = await rest.text();
      expect(restBody).not.toContain('events_pkey');
      expect(restBody).not.toMatch(/stack/i);

      const error = await createTelemetryClient({ url: failing.url, headers: { authorization: `Bearer ${keys.ingest}` } })
        .telemetry.ingest.mutate({ source: 'web', eventType: 'custom', name: 'x' })
        .then(
          () => undefined,
          (caught: unknown) => caught as TRPCClientError<AppRouter>,
        );
      expect(error).toBeInstanceOf(TRPCClientError);
      if (!error) return;
      expect(error.message).toBe('Internal server error');
      expect(JSON.stringify(error.shape)).not.toContain('events_pkey');
      expect(lines.some((line) => line.line.includes('events_pkey'))).toBe(true);
    } finally {
      await failing.close();
    }
  });

  it('answers an outage with 503 and Retry-After on both faces', async () => {
    const unavailable = () => Promise.reject(new DomainError('unavailable', 'The database is unavailable; retry shortly', { retryAfterSeconds: 2 }));
    const down = await startTestServer(testDb.db, { services: servicesWith(testDb.db, { ingestor: { ingestEvent: unavailable, ingestBatch: unavailable } }) });
    try {
      const rest = await postJson('/api/events', { source: 'web', eventType: 'custom', name: 'x' }, {}, down.url);
      expect(rest.status).toBe(503);
      expect(rest.headers.get('retry-after')).toBe('2');
      const trpc = await postJson('/trpc/telemetry.ingest', { json: { source: 'web', eventType: 'custom', name: 'x' } }, {}, down.url);
      expect(trpc.status).toBe(503);
      expect(trpc.headers.get('retry-after')).toBe('2');
    } finally {
      await down.close();
    }
  });
});

describe('deadlines', () => {
  it('answers a call that cannot finish within PROCEDURE_TIMEOUT_MS with a retryable 503, never a hang', async () => {
    const config = testConfig({ PROCEDURE_TIMEOUT_MS: '200' });
    const stalled = () => new Promise<never>(() => {});
    const slow = await startTestServer(testDb.db, {
      config,
      services: servicesWith(testDb.db, { ingestor: { ingestEvent: stalled, ingestBatch: stalled } }, config),
    });
    try {
      // The call never finishes on its own: only the deadline can answer it.
      const response = await postJson('/api/events', { source: 'web', eventType: 'custom', name: 'x' }, {}, slow.url);
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      const trpc = await postJson('/trpc/telemetry.ingest', { json: { source: 'web', eventType: 'custom', name: 'x' } }, {}, slow.url);
      expect(trpc.status).toBe(503);
      expect(JSON.stringify(await trpc.json())).toContain('deadline_exceeded');
    } finally {
      await slow.close();
    }
  });
});

describe('long-running operator jobs', () => {
  it('are not cut off by the procedure deadline: a retention run longer than it still answers its report', async () => {
    const config = testConfig({ PROCEDURE_TIMEOUT_MS: '100' });
    const stalled = () => new Promise<never>(() => {});
    const real = servicesWith(testDb.db, { ingestor: { ingestEvent: stalled, ingestBatch: stalled } }, config);
    let slow: TestServer | undefined;
    // The run outlives the deadline: it returns only after an ingest call started after it was cut off.
    const slowRun: typeof real.retention.run = async (options) => {
      const cutOff = await postJson('/api/events', { source: 'web', eventType: 'custom', name: 'x' }, {}, slow!.url);
      expect(cutOff.status).toBe(503);
      return real.retention.run(options);
    };
    slow = await startTestServer(testDb.db, { config, services: { ...real, retention: { ...real.retention, run: slowRun } } });
    try {
      const response = await postJson('/api/admin/retention/run', { dryRun: true }, { authorization: `Bearer ${keys.admin}` }, slow.url);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ dryRun: true });
    } finally {
      await slow.close();
    }
  });
});

describe('health, readiness and docs', () => {
  it('answers /healthz and /readyz when the database is migrated', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('serves an OpenAPI document listing telemetry.ingest and an explorer whose script is served locally', async () => {
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, { post?: { operationId?: string } }> };
    expect(document.paths['/events']?.post?.operationId).toBe('telemetry-ingest');
    expect(document.paths['/events/batch']?.post?.operationId).toBe('telemetry-ingestBatch');

    const page = await (await fetch(`${server.url}/docs`)).text();
    expect(page).toContain('/openapi.json');
    expect(page).toContain('src="/docs/standalone.js"');
    expect(page).not.toMatch(/https?:\/\/(cdn|fonts)\./);
    const script = await fetch(`${server.url}/docs/standalone.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  it('answers an unknown route with a JSON 404', async () => {
    const response = await fetch(`${server.url}/nope`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});

import { randomUUID } from 'node:crypto';
import SuperJSON from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../../client/index.ts';
import { createKeyService } from '../../server/services/keys/keys.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  capturingLogger,
  createTestKeys,
  createTestWorkspace,
  procedureCaller,
  registerTestWorkspaces,
  startTestServer,
  type LogRecord,
  type TestKeys,
  type TestServer,
} from '../support/app.ts';
import { storedEvents } from '../support/events.ts';

let testDb: TestDatabase;
let server: TestServer;
let keys: TestKeys & { read: string };
let logLines: LogRecord[];
const workspaceId = randomUUID();

beforeAll(async () => {
  testDb = await openTestDatabase();
  await registerTestWorkspaces(testDb.db, workspaceId);
  const read = await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId });
  keys = { ...(await createTestKeys(testDb.db)), read: read.key };
  const { logger, lines } = capturingLogger();
  logLines = lines;
  server = await startTestServer(testDb.db, { logger });
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

interface TrpcErrorBody {
  error: { json: { message: string; data: { httpStatus: number; issues?: { path: string; message: string }[] } } };
}

const trpcPost = (path: string, body: unknown, key: string) =>
  fetch(`${server.url}/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const trpcGet = (path: string, input: unknown, key: string) =>
  fetch(`${server.url}/trpc/${path}?input=${encodeURIComponent(typeof input === 'string' ? input : JSON.stringify(input))}`, {
    headers: { authorization: `Bearer ${key}` },
  });
const apiPost = (path: string, body: string, key: string) =>
  fetch(`${server.url}/api/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body });

const event = (extra: Record<string, unknown> = {}) => ({ workspaceId, source: 'web', eventType: 'custom', name: 'input.test', ...extra });

/**
 * Nested arrays where every item is the same array: `levels` levels of `fanOut` items stand for
 * fanOut^levels paths. superjson with dedupe writes each array once and declares the rest as
 * shared references, so the body stays a few hundred bytes.
 */
function sharedGraph(levels: number, fanOut: number): unknown {
  let node: unknown = 0;
  for (let level = 0; level < levels; level += 1) node = new Array(fanOut).fill(node);
  return node;
}
const deduping = new SuperJSON({ dedupe: true });

describe('shared references in procedure input', () => {
  it('a small ingest body declaring a million metadata paths is refused with 400 naming where, and the service answers the next call', async () => {
    const payload = deduping.serialize(event({ metadata: { graph: sharedGraph(6, 10) } }));
    expect(payload.meta?.referentialEqualities).toBeDefined();
    const body = JSON.stringify(payload);
    expect(body.length).toBeLessThan(2_000);

    const response = await trpcPost('telemetry.ingest', body, keys.ingest);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as TrpcErrorBody;
    expect(error.json.message).toContain('Shared references');
    expect(error.json.data.issues?.[0]?.path).toMatch(/^metadata\.graph\./);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);

    const next = await trpcPost('telemetry.ingest', { json: event({ name: 'after' }) }, keys.ingest);
    expect(next.status).toBe(200);
  });

  it('an events.list metadata filter declaring a million paths is refused with 400 for a read key, and the service answers the next call', async () => {
    const response = await trpcGet('telemetry.events.list', deduping.serialize({ metadata: { graph: sharedGraph(6, 10) } }), keys.read);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as TrpcErrorBody;
    expect(error.json.message).toContain('Shared references');
    expect(error.json.data.issues?.[0]?.path).toMatch(/^metadata\.graph\./);

    const next = await trpcGet('telemetry.events.list', { json: { limit: 1 } }, keys.read);
    expect(next.status).toBe(200);
    expect(logLines.filter((line) => line.line.includes('procedure failed'))).toEqual([]);
  });

  it('the typed client sends the same metadata object in two events of a batch, and both are stored', async () => {
    const client = createTelemetryClient({ url: server.url, apiKey: keys.ingest });
    const shared = { plan: 'pro', nested: { seats: 3 } };
    const batchWorkspace = await createTestWorkspace(testDb.db);
    const result = await client.telemetry.ingestBatch.mutate({
      events: [
        { workspaceId: batchWorkspace, source: 'web', eventType: 'custom', name: 'first', metadata: shared },
        { workspaceId: batchWorkspace, source: 'web', eventType: 'custom', name: 'second', metadata: shared },
      ],
    });
    expect(result).toMatchObject({ accepted: 2, rejected: 0 });
    expect((await storedEvents(testDb.db, batchWorkspace)).map((row) => row.metadata)).toEqual([shared, shared]);
  });

  it('value annotations no input can hold (BigInt, Map) are refused with 400', async () => {
    for (const value of [10n ** 50n, new Map([[1, 2]])]) {
      const response = await trpcPost('telemetry.ingest', SuperJSON.serialize(event({ metadata: { value } })), keys.ingest);
      expect(response.status).toBe(400);
    }
  });
});

describe('the metadata walk has a budget of visited values', () => {
  it('metadata with more values than the budget is refused at the value where the walk stopped, on /api', async () => {
    const metadata = { list: Array.from({ length: 21 }, () => new Array(1000).fill(0)) };
    const response = await apiPost('events', JSON.stringify(event({ metadata })), keys.ingest);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { message: string; data: { issues: { path: string; message: string }[] } };
    expect(body.data.issues[0]).toMatchObject({ message: 'More than 20000 values in total' });
    expect(body.data.issues[0]?.path).toMatch(/^metadata\.list\.\d+\.\d+$/);
  });

  it('a graph of shared references handed to a procedure in process stops at the budget before anything serializes it', async () => {
    const caller = procedureCaller(testDb.db, { apiKey: keys.ingest });
    // 10^8 paths: a walk without a budget would take minutes, and serializing it would not fit in memory.
    await expect(caller.telemetry.ingest(event({ metadata: { graph: sharedGraph(8, 10) } }) as never)).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringContaining('More than 20000 values'),
    });
  });
});

describe('__proto__ keys', () => {
  const withProto = `{"workspaceId":"${workspaceId}","source":"web","eventType":"custom","name":"proto","metadata":{"__proto__":{"polluted":true},"kept":1}}`;

  it('are refused with the same 400, message and path on the tRPC face as on /api, and nothing is stored', async () => {
    const api = await apiPost('events', withProto, keys.ingest);
    const trpc = await trpcPost('telemetry.ingest', `{"json":${withProto}}`, keys.ingest);
    expect(api.status).toBe(400);
    expect(trpc.status).toBe(400);
    const apiBody = (await api.json()) as { message: string; data: { issues: { path: string; message: string }[] } };
    const { error } = (await trpc.json()) as TrpcErrorBody;
    expect(apiBody.data.issues[0]).toEqual({ path: 'metadata.__proto__', message: 'Key "__proto__" is not allowed' });
    expect(error.json.data.issues?.[0]).toEqual(apiBody.data.issues[0]);
    expect((await storedEvents(testDb.db, workspaceId)).filter((row) => row.name === 'proto')).toEqual([]);
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('are refused in a batch on the tRPC face with a rejected receipt naming the path', async () => {
    const response = await trpcPost('telemetry.ingestBatch', `{"json":{"events":[${withProto}]}}`, keys.ingest);
    expect(response.status).toBe(200);
    const { result } = (await response.json()) as { result: { data: { json: { receipts: unknown[] } } } };
    expect(result.data.json.receipts).toEqual([
      { index: 0, status: 'rejected', code: 'invalid_event', message: 'Key "__proto__" is not allowed', path: 'metadata.__proto__' },
    ]);
  });

  it('are refused in an events.list metadata filter on both faces', async () => {
    const filter = '{"metadata":{"__proto__":{"x":1}}}';
    const api = await apiPost('events/list', filter, keys.read);
    const trpc = await trpcGet('telemetry.events.list', `{"json":${filter}}`, keys.read);
    expect(api.status).toBe(400);
    expect(trpc.status).toBe(400);
    const { error } = (await trpc.json()) as TrpcErrorBody;
    expect(error.json.data.issues?.[0]?.path).toBe('metadata.__proto__');
  });
});

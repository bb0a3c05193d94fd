import { gzipSync } from 'node:zlib';
import { TRPCClientError } from '@trpc/client';
import fc from 'fast-check';
import { Hono } from 'hono';
import SuperJSON from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type AppRouter } from '../client/index.ts';
import { serializeInput } from '../client/transformer.ts';
import type { Config } from '../server/config.ts';
import { leanIngestTrpc } from '../server/http/lean-ingest-trpc.ts';
import { createLogger } from '../server/logger.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { appRouter } from '../server/routers/index.ts';
import { bearerToken, createKeyService, generateKeySecret } from '../server/services/keys/keys.ts';
import type { Services } from '../server/trpc/context.ts';
import { procedureTransformer } from '../server/trpc/transformer.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import {
  capturingLogger,
  type LogRecord,
  registerTestWorkspaces,
  servicesWith,
  startTestServer,
  testConfig,
  testServices,
  type TestServer,
} from './support/app.ts';
import { storedEvents } from './support/events.ts';

/**
 * The same calls sent to an app answering the ingest procedures with the lean handler and to one
 * answering everything with @hono/trpc-server: status, headers and bytes must be the same. Each
 * app has its own database holding the same keys (same secrets), so the same event ids and times
 * give the same receipts on both.
 */

const MAX_BATCH_EVENTS = 5;
const MAX_TRPC_BATCH_CALLS = 4;
const WORKSPACE = '0193a0c4-2f6e-7a10-8b3c-5d1e2f3a4b5c';
const TYPED_CLIENT_WORKSPACE = '0193a0c4-2f6e-7a10-8b3c-aaaaaaaaaaaa';
// A minute ago, to the millisecond (a receipt's time is the event's own when no sentAt is given).
const CREATED_AT = new Date(Math.floor((Date.now() - 60_000) / 1000) * 1000);

const secrets = {
  ingest: generateKeySecret('ingest'),
  read: generateKeySecret('read'),
  admin: generateKeySecret('admin'),
  /** One event per second, no burst: the second event within a second is refused with 429. */
  limited: generateKeySecret('ingest'),
};
type KeyName = keyof typeof secrets;

interface Side {
  testDb: TestDatabase;
  server: TestServer;
  /** The same app over the same database, with an ingestor that fails unexpectedly, logging into `logLines`. */
  failing: TestServer;
  logLines: LogRecord[];
}

/** An unexpected failure (a bug, say): answered 500 with a generic message, the cause logged. */
const brokenIngestor = {
  ingestEvent: () => Promise.reject(new Error('ingestor bug: SELECT secret FROM somewhere')),
  ingestBatch: () => Promise.reject(new Error('ingestor bug: SELECT secret FROM somewhere')),
} as unknown as Services['ingestor'];

async function startSide(leanHandler: boolean): Promise<Side> {
  const testDb = await openTestDatabase();
  await maintainPartitions(testDb.db, { daysAhead: 2 });
  // The workspaces events name (the typed-client test names one of its own).
  await registerTestWorkspaces(testDb.db, WORKSPACE, TYPED_CLIENT_WORKSPACE);
  const keys = createKeyService({ db: testDb.db });
  await keys.createKey({ kind: 'ingest', allWorkspaces: true, secret: secrets.ingest });
  await keys.createKey({ kind: 'read', workspaceId: WORKSPACE, secret: secrets.read });
  await keys.createKey({ kind: 'admin', secret: secrets.admin });
  await keys.createKey({ kind: 'ingest', allWorkspaces: true, secret: secrets.limited, rateLimit: { eventsPerSecond: 1, burst: 0 } });
  const config = testConfig({
    INGEST_LEAN_HANDLER: String(leanHandler),
    MAX_BATCH_EVENTS: String(MAX_BATCH_EVENTS),
    MAX_TRPC_BATCH_CALLS: String(MAX_TRPC_BATCH_CALLS),
  });
  const { logger, lines } = capturingLogger();
  const failing = await startTestServer(testDb.db, { config, logger, services: servicesWith(testDb.db, { ingestor: brokenIngestor }, config) });
  return { testDb, server: await startTestServer(testDb.db, { config }), failing, logLines: lines };
}

let lean: Side;
let adapter: Side;

beforeAll(async () => {
  [lean, adapter] = await Promise.all([startSide(true), startSide(false)]);
});
afterAll(async () => {
  await Promise.all([lean?.server.close(), adapter?.server.close(), lean?.failing.close(), adapter?.failing.close()]);
  await Promise.all([lean?.testDb.drop(), adapter?.testDb.drop()]);
});

let nextEventNumber = 1;
/** A fresh event id (each test sends its own), the same for both apps. */
const eventId = () => `0193a0c4-2f6e-7a10-8b3c-${(nextEventNumber++).toString(16).padStart(12, '0')}`;

const event = (extra: Record<string, unknown> = {}) => ({
  id: eventId(),
  workspaceId: WORKSPACE,
  source: 'web',
  eventType: 'custom',
  name: 'contract',
  createdAt: CREATED_AT.toISOString(),
  ...extra,
});

/** An event as the typed client encodes it: createdAt a Date, annotated in `meta`. */
const annotated = (value: ReturnType<typeof event>) => serializeInput({ ...value, createdAt: new Date(value.createdAt) });

interface Call {
  path: string;
  method?: 'GET' | 'POST';
  body?: unknown;
  key?: KeyName | null;
  headers?: Record<string, string>;
  gzip?: boolean;
}

/** Headers that differ from one response to the next whatever answers. */
const UNCOMPARED_HEADERS = new Set(['date', 'connection', 'keep-alive']);

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

let requestNumber = 0;

async function send(side: Pick<Side, 'server'>, call: Call, requestId: string): Promise<Answer> {
  const text = call.body === undefined ? undefined : typeof call.body === 'string' ? call.body : JSON.stringify(call.body);
  const key = call.key === undefined ? 'ingest' : call.key;
  const response = await fetch(`${side.server.url}/trpc/${call.path}`, {
    method: call.method ?? 'POST',
    headers: {
      'content-type': 'application/json',
      'x-request-id': requestId,
      ...(key && { authorization: `Bearer ${secrets[key]}` }),
      ...(call.gzip && { 'content-encoding': 'gzip' }),
      ...call.headers,
    },
    body: text === undefined ? undefined : call.gzip ? gzipSync(text) : text,
  });
  const headers = Object.fromEntries([...response.headers].filter(([name]) => !UNCOMPARED_HEADERS.has(name)));
  return { status: response.status, headers, body: await response.text() };
}

/** Sends `call` to both apps (same request id) and requires the same answer; returns it. */
async function sameAnswer(call: Call): Promise<Answer> {
  requestNumber += 1;
  const requestId = `contract-${requestNumber}`;
  const [fromLean, fromAdapter] = await Promise.all([send(lean, call, requestId), send(adapter, call, requestId)]);
  expect(fromLean).toEqual(fromAdapter);
  return fromLean;
}

const json = (answer: Answer) => JSON.parse(answer.body) as unknown;

/** The URL path of an HTTP batch of `procedures`. */
const batchOf = (...procedures: string[]) => `${procedures.join(',')}?batch=1`;

describe('the lean ingest handler answers exactly what the tRPC adapter answers', () => {
  it('a valid single ingest, as plain JSON and with the Date annotation the typed client sends, and its retry', async () => {
    const plain = event();
    const first = await sameAnswer({ path: 'telemetry.ingest', body: { json: plain } });
    expect(first.status).toBe(200);
    expect(json(first)).toEqual({ result: { data: { json: { id: plain.id, createdAt: plain.createdAt }, meta: { values: { createdAt: ['Date'] }, v: 1 } } } });
    // A retry of the same event answers the same receipt.
    expect((await sameAnswer({ path: 'telemetry.ingest', body: { json: plain } })).body).toBe(first.body);

    const withDate = await sameAnswer({ path: 'telemetry.ingest', body: annotated(event()) });
    expect(withDate.status).toBe(200);
  });

  it('a valid batch with a rejected event answers receipts in order, and an over-size batch is refused alike', async () => {
    const events = [event(), event({ name: '' }), event({ metadata: { nested: { list: [1, 'two', null, true] } } })];
    const batch = await sameAnswer({ path: 'telemetry.ingestBatch', body: { json: { events } } });
    expect(batch.status).toBe(200);
    expect(json(batch)).toMatchObject({ result: { data: { json: { accepted: 2, rejected: 1, receipts: [{ status: 'accepted' }, { path: 'name' }, {}] } } } });

    // Dates annotated as the typed client does, sentAt included (events refused, so no time depends on the clock).
    const dated = serializeInput({ sentAt: new Date(), events: [{ ...event({ name: '' }), createdAt: CREATED_AT }] });
    expect(dated.meta?.values).toEqual({ sentAt: ['Date'], 'events.0.createdAt': ['Date'] });
    expect((await sameAnswer({ path: 'telemetry.ingestBatch', body: dated })).status).toBe(200);

    const tooMany = await sameAnswer({
      path: 'telemetry.ingestBatch',
      body: { json: { events: Array.from({ length: MAX_BATCH_EVENTS + 1 }, () => event()) } },
    });
    expect(tooMany.status).toBeGreaterThanOrEqual(400);
  });

  it('an invalid event is a 400 naming the field path', async () => {
    const answer = await sameAnswer({ path: 'telemetry.ingest', body: { json: event({ eventType: 'perf.metric', metadata: { unit: 'ms' } }) } });
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('metadata.value');
    expect(answer.headers['x-request-id']).toBe(`contract-${requestNumber}`);
  });

  it('bodies that do not parse or deserialize: malformed JSON, malformed superjson, refused annotations, shared references, none', async () => {
    const same = { plan: 'pro' };
    const shared = new SuperJSON({ dedupe: true }).serialize({ events: [event({ metadata: same }), event({ metadata: same })] });
    expect(shared.meta?.referentialEqualities).toBeDefined();
    const calls: [Call, number][] = [
      [{ path: 'telemetry.ingest', body: '{"json": {' }, 400],
      [{ path: 'telemetry.ingest', body: 'null' }, 400],
      [{ path: 'telemetry.ingest', body: '' }, 400],
      [{ path: 'telemetry.ingest', body: { json: event(), meta: 5 } }, 400],
      [{ path: 'telemetry.ingest', body: { json: event(), meta: { values: { createdAt: ['bigint'] } } } }, 400],
      [{ path: 'telemetry.ingest', body: { json: event(), meta: { referentialEqualities: { metadata: ['name'] } } } }, 400],
      [{ path: 'telemetry.ingestBatch', body: shared }, 400],
      // Annotations naming a place the input does not have change nothing, on either path.
      [{ path: 'telemetry.ingest', body: { json: event(), meta: { values: { 'events.0.createdAt': ['Date'] } } } }, 200],
      [{ path: 'telemetry.ingestBatch', body: { json: { events: [event()] }, meta: { values: { 'events.7.createdAt': ['Date'] } } } }, 200],
      [
        {
          path: batchOf('telemetry.ingest', 'telemetry.ingest'),
          body: { 0: { json: event() }, 1: { json: event(), meta: { values: { createdAt: ['Map'] } } } },
        },
        400,
      ],
    ];
    const statuses: number[] = [];
    for (const [call] of calls) statuses.push((await sameAnswer(call)).status);
    expect(statuses).toEqual(calls.map(([, status]) => status));
  });

  it('missing, unknown and wrong-kind keys', async () => {
    expect((await sameAnswer({ path: 'telemetry.ingest', body: { json: event() }, key: null })).status).toBe(401);
    expect((await sameAnswer({ path: 'telemetry.ingest', body: { json: event() }, headers: { authorization: 'Bearer tk_ingest_unknown' } })).status).toBe(401);
    expect((await sameAnswer({ path: 'telemetry.ingestBatch', body: { json: { events: [event()] } }, key: 'read' })).status).toBe(403);
    expect((await sameAnswer({ path: 'telemetry.ingest', body: { json: event() }, key: 'admin' })).status).toBe(200);
  });

  it('over the rate limit: 429 with Retry-After, and a call costing more than the whole budget', async () => {
    // One event a second passes: each app is sent events until it refuses one (the two budgets
    // are separate, and which call is the first of a second depends on the clock), and the
    // refusals are compared.
    const refusal = async (side: Side) => {
      for (let attempt = 0; attempt < 10; attempt += 1) {
        const answer = await send(side, { path: 'telemetry.ingest', body: { json: event() }, key: 'limited' }, 'contract-rate');
        if (answer.status !== 200) return answer;
      }
      throw new Error('ten events in a row passed a budget of one a second');
    };
    const [fromLean, fromAdapter] = await Promise.all([refusal(lean), refusal(adapter)]);
    expect(fromLean).toEqual(fromAdapter);
    expect(fromLean.status).toBe(429);
    expect(fromLean.headers['retry-after']).toBe('1');

    const overBudget = await sameAnswer({ path: 'telemetry.ingestBatch', body: { json: { events: [event(), event()] } }, key: 'limited' });
    expect(overBudget.status).toBe(413);
  });

  it('HTTP batches of ingest calls: all passing, mixed (207), all failing alike, a missing input, and gzip', async () => {
    const ok = await sameAnswer({
      path: batchOf('telemetry.ingest', 'telemetry.ingestBatch'),
      body: { 0: { json: event() }, 1: serializeInput({ events: [{ ...event(), createdAt: CREATED_AT }] }) },
    });
    expect(ok.status).toBe(200);
    expect(json(ok)).toMatchObject([{ result: { data: { meta: { values: { createdAt: ['Date'] } } } } }, { result: { data: { json: { accepted: 1 } } } }]);
    const mixed = await sameAnswer({
      path: batchOf('telemetry.ingestBatch', 'telemetry.ingest', 'telemetry.ingest'),
      body: { 0: { json: { events: [event(), event({ source: 'nowhere' })] } }, 1: { json: event({ name: '' }) }, 2: annotated(event()) },
    });
    expect(mixed.status).toBe(207);
    const failing = await sameAnswer({
      path: batchOf('telemetry.ingest', 'telemetry.ingest'),
      body: { 0: { json: event({ name: '' }) }, 1: { json: { nope: 1 } } },
    });
    expect(failing.status).toBe(400);
    expect((await sameAnswer({ path: batchOf('telemetry.ingest', 'telemetry.ingest'), body: { 0: { json: event() } } })).status).toBe(207);
    expect((await sameAnswer({ path: batchOf('telemetry.ingest', 'telemetry.ingest'), body: [] })).status).toBe(400);
    expect((await sameAnswer({ path: 'telemetry.ingest', body: { json: event() }, gzip: true })).status).toBe(200);
  });

  it('calls the lean handler leaves to the adapter: other procedures in a batch, GET, a batch over the call limit, streaming, other media types', async () => {
    const withOther = await sameAnswer({ path: batchOf('telemetry.ingest', 'telemetry.liveTicket'), body: { 0: { json: event() }, 1: { json: {} } } });
    expect(withOther.status).toBe(207);
    const get = await sameAnswer({ path: `telemetry.ingest?input=${encodeURIComponent(JSON.stringify({ json: event() }))}`, method: 'GET' });
    expect(get.status).toBe(405);
    const calls = Array.from({ length: MAX_TRPC_BATCH_CALLS + 1 }, () => 'telemetry.ingest');
    const inputs = Object.fromEntries(calls.map((_, index) => [index, { json: event() }]));
    expect((await sameAnswer({ path: batchOf(...calls), body: inputs })).status).toBe(400);
    // One call: a stream of two would order its parts by which call ends first.
    const streamed = await sameAnswer({ path: batchOf('telemetry.ingest'), body: { 0: { json: event() } }, headers: { 'trpc-accept': 'application/jsonl' } });
    expect(streamed.status).toBe(200);
    expect((await sameAnswer({ path: 'telemetry.ingest', body: { json: event() }, headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await sameAnswer({ path: 'telemetry.ingest', body: { json: event() }, headers: { origin: 'https://app.example' } })).status).toBe(200);
    expect((await sameAnswer({ path: 'telemetry.nothing', body: { json: {} } })).status).toBe(404);
  });

  it('an unexpected failure is the same generic 500, logged the same way, with nothing internal in the answer', async () => {
    const call: Call = { path: batchOf('telemetry.ingest', 'telemetry.ingestBatch'), body: { 0: { json: event() }, 1: { json: { events: [event()] } } } };
    const [fromLean, fromAdapter] = await Promise.all([
      send({ server: lean.failing }, call, 'contract-bug'),
      send({ server: adapter.failing }, call, 'contract-bug'),
    ]);
    expect(fromLean).toEqual(fromAdapter);
    expect(fromLean.status).toBe(500);
    expect(fromLean.body).not.toContain('SELECT');
    // What was logged, without times: the same lines, in the same levels, naming the same paths.
    const logged = (side: Side) =>
      side.logLines
        .map(({ line }) => JSON.parse(line) as { level: string; msg: string; path?: string; requestId?: string })
        .filter((record) => record.requestId === 'contract-bug' || record.msg === 'trpc error')
        .map(({ level, msg, path }) => `${level} ${msg} ${path}`)
        .sort();
    expect(logged(lean)).toEqual(logged(adapter));
    expect(logged(lean)).toContain('error trpc error telemetry.ingestBatch');
  });
});

/** The lean handler alone, with every call it leaves behind answered 599, to see which calls it answers itself. */
function leanOnly(config: Config, services: Services) {
  const logger = createLogger('silent');
  const app = new Hono();
  app.use(
    '/trpc/*',
    leanIngestTrpc({
      router: appRouter,
      endpoint: '/trpc',
      maxBatchSize: config.maxTrpcBatchCalls,
      createContext: (c) => ({ config, services, logger, requestId: 'lean', apiKey: bearerToken(c.req.header('authorization')) }),
    }),
  );
  app.all('/trpc/*', () => new Response('left to the adapter', { status: 599 }));
  return app;
}

describe('the typed client through the lean handler', () => {
  it('ingests, batches and reads errors exactly as through the adapter, with no call left to the adapter', async () => {
    const config = testConfig({ MAX_BATCH_EVENTS: String(MAX_BATCH_EVENTS) });
    const app = leanOnly(config, testServices(lean.testDb.db, { config }));
    const client = createTelemetryClient({ url: 'http://lean.test', apiKey: secrets.ingest, fetch: async (input, init) => app.request(input, init) });

    const workspaceId = TYPED_CLIENT_WORKSPACE;
    const receipt = await client.telemetry.ingest.mutate({ workspaceId, source: 'web', eventType: 'custom', name: 'typed', createdAt: CREATED_AT });
    expect(receipt.createdAt).toEqual(CREATED_AT);
    const [batch, single] = await Promise.all([
      client.telemetry.ingestBatch.mutate({
        sentAt: new Date(),
        events: [{ workspaceId, source: 'cli', eventType: 'custom', name: 'b', createdAt: new Date() }],
      }),
      client.telemetry.ingest.mutate({ workspaceId, source: 'web', eventType: 'custom', name: 'batched with the other call' }),
    ]);
    expect(batch).toMatchObject({ accepted: 1, receipts: [{ status: 'accepted' }] });
    expect(single.createdAt).toBeInstanceOf(Date);
    expect(await storedEvents(lean.testDb.db, workspaceId)).toHaveLength(3);

    const error = await client.telemetry.ingest.mutate({ workspaceId, source: 'web', eventType: 'custom', name: '' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<AppRouter>).data).toMatchObject({ httpStatus: 400, issues: [{ path: 'name' }] });
  });

  it('leaves malformed bodies, shared references and other procedures to the adapter', async () => {
    const config = testConfig();
    const app = leanOnly(config, testServices(lean.testDb.db, { config }));
    const post = (path: string, body: string) =>
      app.request(`http://lean.test/trpc/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets.ingest}` },
        body,
      });
    expect((await post('telemetry.ingest', '{')).status).toBe(599);
    expect((await post('telemetry.ingest', JSON.stringify({ json: event(), meta: { referentialEqualities: { a: ['b'] } } }))).status).toBe(599);
    expect((await post('telemetry.ingest,telemetry.liveTicket?batch=1', '{}')).status).toBe(599);
    expect((await post('telemetry.ingest', JSON.stringify({ json: event() }))).status).toBe(200);
  });
});

/** Values superjson annotates or refuses, mixed with plain JSON, to compare the fast envelope with. */
const outputValue = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.constant(-0),
    fc.date({ noInvalidDate: false }),
    fc.bigInt(),
  ),
  node: fc.oneof(
    { depthSize: 'small' },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie('node'), { maxKeys: 4 }),
  ),
}));

/** A value with its Dates spelled out (an invalid Date too, which equality would not tell from another). */
function comparable(value: unknown): unknown {
  if (value instanceof Date) return { date: String(value.getTime()) };
  if (Array.isArray(value)) return value.map(comparable);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, comparable(child)]));
  return value;
}

describe("the transformer's fast paths give superjson's results", () => {
  it('output: the same JSON text as superjson.serialize, or the same refusal', () => {
    const withKeys = fc.oneof(
      outputValue.node,
      fc.record({ id: fc.uuid(), createdAt: fc.date({ noInvalidDate: false }), extra: outputValue.node }),
      fc.constantFrom({ 'a.b': new Date(0), 'c\\d': new Date(1), 1: new Date(2) }, JSON.parse('{"__proto__":1}'), { constructor: 1 }, { at: new Date(5) }),
    );
    const shared = { same: 1 };
    const date = new Date(3);
    const withExtra = Object.assign([1, 2], { at: new Date(4) });
    const sparse = new Array<number>(3);
    sparse[0] = 1;
    for (const value of [{ a: shared, b: shared }, [shared, shared], { a: date, b: date }, { a: date, b: [date] }, Object.create(null), withExtra, sparse]) {
      expect(JSON.stringify(procedureTransformer.output.serialize(value))).toBe(JSON.stringify(SuperJSON.serialize(value)));
    }
    fc.assert(
      fc.property(withKeys, (value) => {
        const expected = (() => {
          try {
            return JSON.stringify(SuperJSON.serialize(value));
          } catch (error) {
            return `refused: ${(error as Error).message}`;
          }
        })();
        const actual = (() => {
          try {
            return JSON.stringify(procedureTransformer.output.serialize(value));
          } catch (error) {
            return `refused: ${(error as Error).message}`;
          }
        })();
        expect(actual).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('input: ingest Dates restored as superjson restores them, whatever the annotations say', () => {
    const timeish = fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.integer(),
      fc.constant(null),
      fc.string({ maxLength: 3 }),
    );
    const batchEvent = fc.oneof(
      fc.record({ name: fc.string({ maxLength: 3 }), createdAt: timeish }),
      fc.constant(null),
      fc.constant('text'),
      fc.array(fc.integer()),
    );
    const input = fc.record({
      sentAt: timeish,
      createdAt: timeish,
      events: fc.oneof(fc.array(batchEvent, { maxLength: 4 }), fc.constant({ 0: { createdAt: 1 } })),
    });
    const annotationKey = fc.oneof(
      fc.constantFrom('sentAt', 'createdAt', 'events.0.createdAt', 'events.1.createdAt', 'events.01.createdAt', 'events.0.name', 'name'),
      fc.nat(5).map((n) => `events.${n}.createdAt`),
    );
    const annotations = fc.dictionary(annotationKey, fc.constantFrom(['Date'], ['undefined'], ['Date', {}]), { maxKeys: 4 });
    fc.assert(
      fc.property(input, annotations, (json, values) => {
        const payload = JSON.stringify({ json, meta: { values, v: 1 } });
        const run = (deserialize: (value: never) => unknown) => {
          try {
            return comparable(deserialize(JSON.parse(payload) as never));
          } catch {
            return 'refused';
          }
        };
        expect(run((value) => procedureTransformer.input.deserialize(value))).toEqual(run((value) => SuperJSON.deserialize(value, { inPlace: true })));
      }),
      { numRuns: 500 },
    );
  });
});

import { randomUUID } from 'node:crypto';
import type { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../server/logger.ts';
import { createLeanIngestApiHandler, type LeanIngestApiHandler } from '../server/http/lean-ingest-api.ts';
import { createOpenApiRequestHandler, type OpenApiRequestContext } from '../server/http/openapi-handler.ts';
import { OPENAPI_BASE_PATH } from '../server/openapi.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { appRouter } from '../server/routers/index.ts';
import { bearerToken, createKeyService } from '../server/services/keys/keys.ts';
import { createContextInner, type Services } from '../server/trpc/context.ts';
import { databaseUnavailable } from '../server/errors.ts';
import { retryAfterMeta } from '../server/http/face-options.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { registerTestWorkspaces, testConfig, testServices } from './support/app.ts';

/**
 * The lean handler of POST /api/events and /api/events/batch against trpc-to-openapi's, in one
 * process over one database: the same request goes to each, and the answers must match in status,
 * the headers clients read, and every byte of the body. Successful answers hold the ids they
 * stored, so each side sends its own fresh ids and the comparison maps one side's ids onto the
 * other's; everything else must be equal as sent.
 */

const MAX_BATCH_EVENTS = 5;
const config = testConfig({ MAX_BATCH_EVENTS: String(MAX_BATCH_EVENTS) });
const logger = createLogger('silent');
// The service's clock is pinned: a batch's sentAt corrects createdAt against it (clock skew), and
// the two paths must compute the same times.
const serverTime = new Date();
const createdAt = new Date(serverTime.getTime() - 60_000).toISOString();
const workspaceId = randomUUID();

let testDb: TestDatabase;
let services: Services;
let ingestKey: string;
let readKey: string;

interface HandlerPair {
  lean: LeanIngestApiHandler;
  generic: (request: Request, context: OpenApiRequestContext) => Promise<Response>;
}

function handlersOver(servicesUsed: Services, errors: TRPCError[][] = [[], []]): HandlerPair {
  const createContext = ({ requestId, authorization }: OpenApiRequestContext) =>
    createContextInner({ config, services: servicesUsed, logger, requestId, apiKey: bearerToken(authorization) });
  const [leanErrors = [], genericErrors = []] = errors;
  return {
    lean: createLeanIngestApiHandler({
      router: appRouter,
      endpoint: OPENAPI_BASE_PATH,
      createContext,
      responseMeta: retryAfterMeta,
      onError: ({ error }) => leanErrors.push(error),
    }),
    generic: createOpenApiRequestHandler({
      router: appRouter,
      endpoint: OPENAPI_BASE_PATH,
      createContext,
      responseMeta: retryAfterMeta,
      onError: ({ error }) => void genericErrors.push(error),
    }),
  };
}

let handlers: HandlerPair;

beforeAll(async () => {
  testDb = await openTestDatabase();
  await maintainPartitions(testDb.db, { daysAhead: 2 });
  await registerTestWorkspaces(testDb.db, workspaceId);
  const keys = createKeyService({ db: testDb.db });
  ingestKey = (await keys.createKey({ kind: 'ingest', allWorkspaces: true })).key;
  readKey = (await keys.createKey({ kind: 'read', workspaceId })).key;
  services = testServices(testDb.db, { config, now: () => serverTime });
  handlers = handlersOver(services);
});
afterAll(async () => {
  await testDb?.drop();
});

/** One side of a comparison: its own fresh ids, by position. */
class Side {
  readonly ids: string[] = [];
  id(position: number): string {
    this.ids[position] ??= randomUUID();
    return this.ids[position];
  }
}

interface RequestSpec {
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | undefined;
  host?: string;
}

function toRequest({ path = '/api/events', method = 'POST', headers, body, host = 'localhost:3000' }: RequestSpec, key = ingestKey): Request {
  return new Request(`http://${host}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    ...(body !== undefined && { body }),
  });
}

interface Answer {
  status: number;
  contentType: string | null;
  retryAfter: string | null;
  body: string;
  /** Whether the lean handler answered (rather than leaving the request to trpc-to-openapi). */
  lean: boolean;
}

async function answer(response: Response, lean: boolean): Promise<Answer> {
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    retryAfter: response.headers.get('retry-after'),
    body: await response.text(),
    lean,
  };
}

let requestCounter = 0;
const contextOf = (request: Request): OpenApiRequestContext => {
  requestCounter += 1;
  return { requestId: `contract-${requestCounter}`, authorization: request.headers.get('authorization') ?? undefined };
};

/** As app.ts mounts them: the lean handler first, trpc-to-openapi for what it leaves. */
async function throughLeanFirst(pair: HandlerPair, request: Request): Promise<Answer> {
  const context = contextOf(request);
  const lean = await pair.lean(request, context);
  return answer(lean ?? (await pair.generic(request, context)), lean !== undefined);
}

async function throughGeneric(pair: HandlerPair, request: Request): Promise<Answer> {
  return answer(await pair.generic(request, contextOf(request)), false);
}

/**
 * Sends the request built for each side to each path and returns both answers, the generic one's
 * ids replaced by the lean side's at the same position.
 */
async function bothWays(build: (side: Side) => Request, pair: HandlerPair = handlers): Promise<{ lean: Answer; generic: Answer }> {
  const leanSide = new Side();
  const genericSide = new Side();
  const lean = await throughLeanFirst(pair, build(leanSide));
  const generic = await throughGeneric(pair, build(genericSide));
  let body = generic.body;
  genericSide.ids.forEach((id, position) => {
    body = body.replaceAll(id, leanSide.id(position));
  });
  return { lean, generic: { ...generic, body } };
}

async function expectSameAnswer(build: (side: Side) => Request, options: { handledByLean: boolean; status: number }, pair?: HandlerPair) {
  const { lean, generic } = await bothWays(build, pair);
  expect({ ...lean, lean: undefined }).toEqual({ ...generic, lean: undefined });
  expect(lean.status).toBe(options.status);
  expect(lean.lean).toBe(options.handledByLean);
  return lean;
}

const event = (side: Side, position = 0, extra: Record<string, unknown> = {}) => ({
  id: side.id(position),
  workspaceId,
  source: 'web',
  eventType: 'ui.interaction',
  name: `click-${position}`,
  createdAt,
  ...extra,
});

const single =
  (body: (side: Side) => unknown, spec: RequestSpec = {}, key?: string) =>
  (side: Side) =>
    toRequest({ body: JSON.stringify(body(side)), ...spec }, key);
const batch = (body: (side: Side) => unknown, spec: RequestSpec = {}, key?: string) => single(body, { path: '/api/events/batch', ...spec }, key);

describe('the lean /api ingest handler answers byte for byte what trpc-to-openapi answers', () => {
  it('for a valid event, with its receipt', async () => {
    const answer = await expectSameAnswer(single(event), { handledByLean: true, status: 200 });
    expect(answer.contentType).toBe('application/json');
  });

  it('for a valid batch, with one receipt per event', async () => {
    await expectSameAnswer(
      batch((side) => ({ sentAt: createdAt, events: [event(side, 0), event(side, 1), event(side, 2, { name: '' })] })),
      { handledByLean: true, status: 200 },
    );
  });

  it('for an event resent with an id already stored, answered as a duplicate', async () => {
    const stored = new Side();
    await throughLeanFirst(handlers, single(event)(stored));
    // Both sides resend the same stored event: the same id, so no id mapping is needed.
    await expectSameAnswer(() => single(event)(stored), { handledByLean: true, status: 200 });
    await expectSameAnswer((side) => batch(() => ({ events: [event(stored), event(side, 1)] }))(side), { handledByLean: true, status: 200 });
  });

  it('for an invalid event, with the Zod issues and their field path', async () => {
    const answer = await expectSameAnswer(
      single((side) => event(side, 0, { name: '', metadata: { value: 'x' } })),
      { handledByLean: true, status: 400 },
    );
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'BAD_REQUEST', message: 'Input validation failed', data: { issues: [{ path: 'name' }] } });
  });

  it('for typed metadata that does not match its event type, with the nested path', async () => {
    await expectSameAnswer(
      single((side) => event(side, 0, { eventType: 'perf.metric', metadata: { value: 'slow', unit: 'ms' } })),
      {
        handledByLean: true,
        status: 400,
      },
    );
  });

  it('for an event with an unknown field', async () => {
    await expectSameAnswer(
      single((side) => event(side, 0, { colour: 'blue' })),
      { handledByLean: true, status: 400 },
    );
  });

  it('for fields of the wrong type, including a batch whose events are not an array', async () => {
    await expectSameAnswer(
      single((side) => event(side, 0, { source: 5, createdAt: 12, workspaceId: false })),
      { handledByLean: true, status: 400 },
    );
    await expectSameAnswer(
      batch(() => ({ events: { 0: {} } })),
      { handledByLean: true, status: 400 },
    );
    await expectSameAnswer(
      batch(() => ({ events: [] })),
      { handledByLean: true, status: 400 },
    );
  });

  it('for bodies that are JSON but not an object: an array, a string, null, a number', async () => {
    for (const body of ['[1,2]', '"ingest"', 'null', '42', '{"__proto__":{"source":"web"},"name":"x"}']) {
      await expectSameAnswer(() => toRequest({ body }), { handledByLean: true, status: 400 });
    }
  });

  it('for malformed JSON and an empty body', async () => {
    for (const body of ['{"source": "web",', '', 'undefined']) {
      await expectSameAnswer(() => toRequest({ body }), { handledByLean: true, status: 400 });
      await expectSameAnswer(() => toRequest({ path: '/api/events/batch', body }), { handledByLean: true, status: 400 });
    }
  });

  it('for content types: JSON with a charset is read, anything else is left to trpc-to-openapi', async () => {
    await expectSameAnswer(single(event, { headers: { 'content-type': 'application/json; charset=utf-8' } }), { handledByLean: true, status: 200 });
    await expectSameAnswer(single(event, { headers: { 'content-type': 'text/plain' } }), { handledByLean: false, status: 415 });
    await expectSameAnswer(single(event, { headers: { 'content-type': 'APPLICATION/JSON' } }), { handledByLean: false, status: 415 });
    await expectSameAnswer(
      (side) => {
        const request = single(event)(side);
        const headers = new Headers(request.headers);
        headers.delete('content-type');
        return new Request(request.url, { method: 'POST', headers, body: JSON.stringify(event(side)) });
      },
      { handledByLean: false, status: 415 },
    );
  });

  it('for query parameters, which a POST ignores', async () => {
    await expectSameAnswer(single(event, { path: '/api/events?source=mobile&name=override' }), { handledByLean: true, status: 200 });
  });

  it('for other methods and paths, left to trpc-to-openapi', async () => {
    await expectSameAnswer(() => toRequest({ method: 'GET' }), { handledByLean: false, status: 404 });
    await expectSameAnswer(() => toRequest({ method: 'PUT', body: '{}' }), { handledByLean: false, status: 404 });
    await expectSameAnswer(single(event, { path: '/api/events/' }), { handledByLean: false, status: 200 });
    await expectSameAnswer(single(event, { path: '/api/EVENTS' }), { handledByLean: false, status: 200 });
  });

  it('for a host whose name starts with "api", routed by the path alone', async () => {
    await expectSameAnswer(single(event, { host: 'api.example.com' }), { handledByLean: true, status: 200 });
  });

  it('for a missing, unknown or malformed key, and a key of the wrong kind', async () => {
    await expectSameAnswer(
      (side) => {
        const request = single(event)(side);
        const headers = new Headers(request.headers);
        headers.delete('authorization');
        return new Request(request.url, { method: 'POST', headers, body: JSON.stringify(event(side)) });
      },
      { handledByLean: true, status: 401 },
    );
    await expectSameAnswer(single(event, {}, 'tk_unknown_key'), { handledByLean: true, status: 401 });
    await expectSameAnswer(single(event, { headers: { authorization: 'Basic abc' } }), { handledByLean: true, status: 401 });
    const answer = await expectSameAnswer(
      batch((side) => ({ events: [event(side)] }), {}, readKey),
      { handledByLean: true, status: 403 },
    );
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('for a batch over MAX_BATCH_EVENTS', async () => {
    const answer = await expectSameAnswer(
      batch((side) => ({ events: Array.from({ length: MAX_BATCH_EVENTS + 1 }, (_, position) => event(side, position)) })),
      { handledByLean: true, status: 413 },
    );
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('for a key over its rate limit, with Retry-After, and a call costing more than its whole budget', async () => {
    const keys = createKeyService({ db: testDb.db });
    // One event a second plus a burst of two. Each side spends its own key: a batch of three
    // events with a bad sentAt costs three units (the rate's one and the whole burst) and is then
    // refused by validation; a batch of two then needs the burst whatever the second, so the 429
    // does not depend on when the rate's window turns.
    const [leanKey, genericKey] = (await Promise.all(
      [0, 1].map(async () => (await keys.createKey({ kind: 'ingest', allWorkspaces: true, rateLimit: { eventsPerSecond: 1, burst: 2 } })).key),
    )) as [string, string];
    const spend = (key: string) => batch((side) => ({ sentAt: 'yesterday', events: [event(side, 0), event(side, 1), event(side, 2)] }), {}, key);
    const over = (key: string) => batch((side) => ({ events: [event(side, 0), event(side, 1)] }), {}, key);
    const leanAnswers = [await throughLeanFirst(handlers, spend(leanKey)(new Side())), await throughLeanFirst(handlers, over(leanKey)(new Side()))];
    const genericAnswers = [await throughGeneric(handlers, spend(genericKey)(new Side())), await throughGeneric(handlers, over(genericKey)(new Side()))];
    expect(leanAnswers.map((a) => ({ ...a, lean: undefined }))).toEqual(genericAnswers.map((a) => ({ ...a, lean: undefined })));
    expect(leanAnswers.map((a) => a.status)).toEqual([400, 429]);
    expect(leanAnswers[1]?.retryAfter).toBe('1');
    expect(leanAnswers.every((a) => a.lean)).toBe(true);

    // A call costing more than the whole budget (rate plus burst) is refused before any is spent.
    const [leanOver, genericOver] = (await Promise.all(
      [0, 1].map(async () => (await keys.createKey({ kind: 'ingest', allWorkspaces: true, rateLimit: { eventsPerSecond: 1, burst: 1 } })).key),
    )) as [string, string];
    const threeEvents = (key: string) => batch((side) => ({ events: [event(side, 0), event(side, 1), event(side, 2)] }), {}, key)(new Side());
    const leanRefused = await throughLeanFirst(handlers, threeEvents(leanOver));
    const genericRefused = await throughGeneric(handlers, threeEvents(genericOver));
    expect({ ...leanRefused, lean: undefined }).toEqual({ ...genericRefused, lean: undefined });
    expect(leanRefused).toMatchObject({ status: 413, lean: true });
  });

  it('for a database that cannot be reached: 503 with Retry-After', async () => {
    const unreachable = handlersOver({
      ...services,
      ingestor: {
        ...services.ingestor,
        ingestEvent: () => Promise.reject(databaseUnavailable(new Error('connect ECONNREFUSED'))),
        ingestBatch: () => Promise.reject(databaseUnavailable(new Error('connect ECONNREFUSED'))),
      },
    });
    const answer = await expectSameAnswer(single(event), { handledByLean: true, status: 503 }, unreachable);
    expect(answer.retryAfter).toBe('2');
    await expectSameAnswer(
      batch((side) => ({ events: [event(side)] })),
      { handledByLean: true, status: 503 },
      unreachable,
    );
  });

  it('for an unexpected failure: a generic 500 that names nothing internal, reported to onError on both paths', async () => {
    const errors: TRPCError[][] = [[], []];
    const failing = handlersOver(
      { ...services, ingestor: { ...services.ingestor, ingestEvent: () => Promise.reject(new Error('relation "events" does not exist')) } },
      errors,
    );
    const answer = await expectSameAnswer(single(event), { handledByLean: true, status: 500 }, failing);
    expect(answer.body).not.toContain('relation');
    expect(errors.map((list) => list.map((error) => error.code))).toEqual([['INTERNAL_SERVER_ERROR'], ['INTERNAL_SERVER_ERROR']]);
  });
});

import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { type BodyBudget, createBodyBudget, decompressRequestBody, limitRequestBody, reserveRequestBody } from '../server/http/request-body.ts';
import { waitUntil } from './faults/support/wait.ts';
import { startTestServer, testConfig } from './support/app.ts';
import { openTestDatabase } from './support/database.ts';

const MAX_BODY = 64 * 1024;

interface BudgetServer {
  url: URL;
  budget: BodyBudget;
  /** Resolves once `count` requests have passed the budget. */
  arrivals(count: number): Promise<void>;
  close(): Promise<void>;
}

const servers: BudgetServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** The body middlewares in the order the app mounts them (arrivals counted past the budget), in front of a handler that reads the whole body. */
async function startBudgetServer(budgetBytes: number): Promise<BudgetServer> {
  const budget = createBodyBudget(budgetBytes);
  let arrived = 0;
  const waiting: { count: number; resolve: () => void }[] = [];
  const app = new Hono();
  app.use(
    '*',
    reserveRequestBody({
      budget,
      maxBodyBytes: MAX_BODY,
      onBusy: (c) => c.json({ error: { code: 'SERVICE_UNAVAILABLE', message: 'busy' } }, 503, { 'Retry-After': '1' }),
    }),
    async (_c, next) => {
      arrived += 1;
      for (const waiter of waiting.filter((w) => w.count <= arrived)) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.resolve();
      }
      await next();
    },
    limitRequestBody({ maxBytes: MAX_BODY, onTooLarge: (c) => c.json({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'too large' } }, 413) }),
    decompressRequestBody({ maxBytes: MAX_BODY }),
  );
  app.post('/echo', async (c) => {
    const text = await c.req.text();
    return c.json({ bytes: text.length });
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const started: BudgetServer = {
    url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/echo`),
    budget,
    arrivals: (count) => (arrived >= count ? Promise.resolve() : new Promise((resolve) => waiting.push({ count, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
  servers.push(started);
  return started;
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** A POST whose body the test finishes (or abandons) when it chooses: the server holds it meanwhile. */
function heldRequest(url: URL, headers: Record<string, string>, firstChunk: Buffer | string) {
  const request = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, agent: false });
  const answer = new Promise<Answer>((resolve, reject) => {
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'], body }));
    });
    request.on('error', reject);
  });
  request.write(firstChunk);
  return {
    answer,
    finish: (rest: Buffer | string = '') => request.end(rest),
    abandon: () => {
      answer.catch(() => {});
      request.destroy();
    },
  };
}

function post(url: URL, body: string): Promise<Answer> {
  const held = heldRequest(url, { 'content-length': String(Buffer.byteLength(body)) }, body);
  held.finish();
  return held.answer;
}

describe('the budget of request bodies in flight', () => {
  it('answers 503 with Retry-After once held chunked bodies spend the budget, and serves again when one is answered', async () => {
    const server = await startBudgetServer(2 * MAX_BODY);
    // Chunked bodies may grow to the body limit, so each holds that much of the budget until answered.
    const first = heldRequest(server.url, { 'transfer-encoding': 'chunked' }, '{"a":');
    const second = heldRequest(server.url, { 'transfer-encoding': 'chunked' }, '{"b":');
    await server.arrivals(2);
    expect(server.budget.reservedBytes()).toBe(2 * MAX_BODY);

    const refused = await post(server.url, '{"c":1}');
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('1');
    expect(JSON.parse(refused.body)).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: 'busy' } });

    first.finish('1}');
    expect(await first.answer).toMatchObject({ status: 200, body: JSON.stringify({ bytes: 7 }) });
    expect(server.budget.reservedBytes()).toBe(MAX_BODY);
    const served = await post(server.url, '{"c":1}');
    expect(served.status).toBe(200);

    second.finish('2}');
    expect((await second.answer).status).toBe(200);
    expect(server.budget.reservedBytes()).toBe(0);
  });

  it('counts a body by its Content-Length, so small calls still fit beside large held ones', async () => {
    const server = await startBudgetServer(100 * 1024);
    const large = 40 * 1024;
    const body = `"${'x'.repeat(large - 2)}"`;
    // Both send half of what they declare: the server holds them, waiting for the rest.
    const held = [1, 2].map(() => heldRequest(server.url, { 'content-length': String(large) }, body.slice(0, large / 2)));
    await server.arrivals(2);
    expect(server.budget.reservedBytes()).toBe(2 * large);

    expect((await post(server.url, `"${'y'.repeat(large - 2)}"`)).status).toBe(503);
    const small = await post(server.url, `"${'z'.repeat(10 * 1024 - 2)}"`);
    expect(small).toMatchObject({ status: 200, body: JSON.stringify({ bytes: 10 * 1024 }) });

    for (const request of held) request.finish(body.slice(large / 2));
    expect((await Promise.all(held.map((request) => request.answer))).map((answer) => answer.status)).toEqual([200, 200]);
    expect(server.budget.reservedBytes()).toBe(0);
  });

  it('counts a compressed body as the body limit, since it may inflate that far', async () => {
    const server = await startBudgetServer(MAX_BODY + 1024);
    const compressed = gzipSync(JSON.stringify({ a: 'b'.repeat(1000) }));
    const held = heldRequest(server.url, { 'content-length': String(compressed.length), 'content-encoding': 'gzip' }, compressed.subarray(0, 10));
    await server.arrivals(1);
    expect(server.budget.reservedBytes()).toBe(MAX_BODY);
    // Counted by its Content-Length (a few dozen bytes), the held body would leave room for this one.
    expect((await post(server.url, `"${'y'.repeat(2046)}"`)).status).toBe(503);
    held.finish(compressed.subarray(10));
    expect((await held.answer).status).toBe(200);
    expect(server.budget.reservedBytes()).toBe(0);
  });

  it('gives the bytes back when a client hangs up before sending its whole body', async () => {
    const server = await startBudgetServer(2 * MAX_BODY);
    const held = heldRequest(server.url, { 'transfer-encoding': 'chunked' }, '{"a":');
    await server.arrivals(1);
    expect(server.budget.reservedBytes()).toBe(MAX_BODY);
    held.abandon();
    await waitUntil(() => server.budget.reservedBytes() === 0, 'the abandoned body released');
  });

  it('never refuses a body when nothing else is held, even one larger than the budget', () => {
    const budget = createBodyBudget(1000);
    expect(budget.tryReserve(5000)).toBe(true);
    expect(budget.tryReserve(1)).toBe(false);
    budget.release(5000);
    expect(budget.tryReserve(1000)).toBe(true);
  });
});

describe('the service with its body budget', () => {
  it('answers 503 on both faces while held bodies spend the budget, and serves again once they end', async () => {
    const { db, drop } = await openTestDatabase();
    const service = await startTestServer(db, { config: testConfig({ MAX_BODY_BYTES: String(MAX_BODY), MAX_INFLIGHT_BODY_BYTES: String(2 * MAX_BODY) }) });
    try {
      const ingest = new URL('/trpc/telemetry.ingest', service.url);
      const apiIngest = new URL('/api/events', service.url);
      const held = [1, 2].map(() => heldRequest(ingest, { 'transfer-encoding': 'chunked' }, '{"json":'));
      // Without a key a served call is answered 401; once both held bodies have their bytes, 503.
      await waitUntil(async () => (await post(ingest, '{"json":{}}')).status === 503, 'the held bodies to spend the budget');
      const refused = await post(apiIngest, '{}');
      expect(refused.status).toBe(503);
      expect(refused.retryAfter).toBe('1');
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'SERVICE_UNAVAILABLE' } });

      for (const request of held) request.finish('{}}');
      expect((await Promise.all(held.map((request) => request.answer))).map((answer) => answer.status)).toEqual([401, 401]);
      expect((await post(apiIngest, '{}')).status).toBe(401);
      expect((await post(ingest, '{"json":{}}')).status).toBe(401);
    } finally {
      await service.close();
      await drop();
    }
  });
});

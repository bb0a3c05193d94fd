import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { sql } from 'drizzle-orm';
import { Hono } from 'hono';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type TelemetryClient } from '../client/index.ts';
import { createApp } from '../server/app.ts';
import { createLogger } from '../server/logger.ts';
import { createStreamTickets } from '../server/services/live/stream-tickets.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import type { Services } from '../server/trpc/context.ts';
import type { TestDatabase } from './support/database.ts';
import { startTestServer, testConfig, type TestKeys, type TestServer, testWiring, createTestWorkspace, openTestDatabaseWithKeys } from './support/app.ts';
import { waitUntil } from './faults/support/wait.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let keys: TestKeys;
beforeAll(async () => {
  ({ testDb, keys } = await openTestDatabaseWithKeys());
});
afterAll(async () => {
  await testDb?.drop();
});

function subscribe(client: TelemetryClient, input: Parameters<TelemetryClient['telemetry']['live']['subscribe']>[0]) {
  const received: { id: string; name: string }[] = [];
  const errors: unknown[] = [];
  let started = 0;
  const subscription = client.telemetry.live.subscribe(input, {
    onStarted: () => (started += 1),
    onData: (envelope) => received.push({ id: envelope.id, name: envelope.data.name }),
    onError: (error) => errors.push(error),
  });
  return { received, errors, started: () => started, stop: () => subscription.unsubscribe() };
}

interface Instance {
  services: Services;
  server: TestServer;
  client(apiKey: string): TelemetryClient;
  close(): Promise<void>;
}

/** An app instance over the shared test database that follows revocations, as `startService` does. */
async function startInstance(overrides: Record<string, string> = {}): Promise<Instance> {
  const config = testConfig(overrides);
  const { services, lifecycle } = testWiring(testDb.db, { config });
  const stopFollowing = await services.keys.followRevocations();
  const server = await startTestServer(testDb.db, { config, services });
  return {
    services,
    server,
    client: (apiKey) => createTelemetryClient({ url: server.url, apiKey, EventSource }),
    async close() {
      lifecycle.endLiveStreams();
      await server.close();
      await stopFollowing();
      await lifecycle.close();
    },
  };
}

async function newReadKey(workspaceId: string) {
  return createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId });
}

describe('revoking or rotating a key', () => {
  let first: Instance;
  let second: Instance;
  beforeAll(async () => {
    first = await startInstance();
    second = await startInstance();
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
  });

  it('ends the key’s open live streams at once with UNAUTHORIZED, and the client does not reconnect with it', async () => {
    const workspaceId = await newWorkspace();
    const read = await newReadKey(workspaceId);
    const otherRead = await newReadKey(workspaceId);
    const stream = subscribe(first.client(read.key), {});
    const bystander = subscribe(first.client(otherRead.key), {});
    await waitUntil(() => first.services.live.openStreams() === 2, 'two open streams');

    await first.client(keys.admin).admin.keys.revoke.mutate({ id: read.id });
    await waitUntil(() => stream.errors.length === 1, 'the revoked key’s stream to end');
    expect(stream.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', httpStatus: 401, reason: 'key_revoked' } });
    await waitUntil(() => first.services.live.openStreams() === 1, 'its slot to be freed');

    // Other keys' streams go on.
    await first.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'still-live' });
    await waitUntil(() => bystander.received.length === 1, 'the bystander’s event');
    expect(stream.received).toEqual([]);
    expect(stream.started()).toBe(1);
    bystander.stop();
    await waitUntil(() => first.services.live.openStreams() === 0, 'every stream to be freed');
  });

  it('ends the streams of a rotated-away key too, while the new key streams', async () => {
    const workspaceId = await newWorkspace();
    const read = await newReadKey(workspaceId);
    const stream = subscribe(first.client(read.key), {});
    await waitUntil(() => first.services.live.openStreams() === 1, 'an open stream');

    const rotated = await first.client(keys.admin).admin.keys.rotate.mutate({ id: read.id });
    await waitUntil(() => stream.errors.length === 1, 'the old key’s stream to end');
    expect(stream.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', reason: 'key_revoked' } });

    const renewed = subscribe(first.client(rotated.key), {});
    await waitUntil(() => first.services.live.openStreams() === 1, 'the new key’s stream');
    await first.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'after-rotation' });
    await waitUntil(() => renewed.received.length === 1, 'the event on the new key’s stream');
    renewed.stop();
    await waitUntil(() => first.services.live.openStreams() === 0, 'every stream to be freed');
  });

  it('ends the key’s streams on every instance sharing the database, not only where it was revoked', async () => {
    const workspaceId = await newWorkspace();
    const read = await newReadKey(workspaceId);
    const onFirst = subscribe(first.client(read.key), {});
    const onSecond = subscribe(second.client(read.key), {});
    await waitUntil(() => first.services.live.openStreams() === 1 && second.services.live.openStreams() === 1, 'a stream on each instance');

    await first.client(keys.admin).admin.keys.revoke.mutate({ id: read.id });
    await waitUntil(() => onFirst.errors.length === 1 && onSecond.errors.length === 1, 'both streams to end');
    expect(onSecond.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', reason: 'key_revoked' } });
    await waitUntil(() => second.services.live.openStreams() === 0, 'the second instance’s slot to be freed');
  });

  it('ends a stream whose key was revoked without a notice reaching this instance, at the next key check', async () => {
    const instance = await startInstance({ LIVE_KEY_CHECK_S: '1' });
    try {
      const workspaceId = await newWorkspace();
      const read = await newReadKey(workspaceId);
      const stream = subscribe(instance.client(read.key), {});
      await waitUntil(() => instance.services.live.openStreams() === 1, 'an open stream');
      // Revoked behind the service's back: no NOTIFY is sent.
      await testDb.db.rows(sql`update telemetry.api_keys set revoked_at = now() where id = ${read.id}`);
      await waitUntil(() => stream.errors.length === 1, 'the stream to end at the key check');
      expect(stream.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', reason: 'key_revoked' } });
    } finally {
      await instance.close();
    }
  });
});

/** Opens `telemetry.live` as any HTTP client would, credentials in connectionParams. */
async function rawStream(baseUrl: string, input: object, params: Record<string, string>) {
  const controller = new AbortController();
  const query = `input=${encodeURIComponent(JSON.stringify({ json: input }))}&connectionParams=${encodeURIComponent(JSON.stringify(params))}`;
  const response = await fetch(`${baseUrl}/trpc/telemetry.live?${query}`, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
  const reader = response.body!.getReader();
  let text = '';
  return {
    status: response.status,
    /** Reads until `done(text)` holds or the stream ends; returns everything read. */
    async readUntil(done: (text: string) => boolean): Promise<string> {
      while (!done(text)) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += new TextDecoder().decode(chunk.value);
      }
      return text;
    },
    close: () => controller.abort(),
  };
}

/** The serialized error an SSE stream ended with (tRPC's `serialized-error` event). */
async function streamError(stream: Awaited<ReturnType<typeof rawStream>>): Promise<{ code: string; httpStatus: number; reason?: string; message: string }> {
  const text = await stream.readUntil((read) => /event: serialized-error\ndata: .*\n/.test(read));
  stream.close();
  const data = /event: serialized-error\ndata: (.*)\n/.exec(text)?.[1];
  if (!data) throw new Error(`no error in the stream: ${text}`);
  const parsed = JSON.parse(data) as { json: { message: string; data: { code: string; httpStatus: number; reason?: string } } };
  return { ...parsed.json.data, message: parsed.json.message };
}

describe('secrets stay out of URLs', () => {
  let instance: Instance;
  let clock = Date.now();
  beforeAll(async () => {
    const config = testConfig({ LIVE_MAX_DURATION_S: '1' });
    // The real services, with the ticket clock in the test's hands (expiry without waiting).
    const { services: wired, lifecycle } = testWiring(testDb.db, { config });
    const services: Services = { ...wired, streamTickets: createStreamTickets({ db: testDb.db, ttlMs: config.live.ticketTtlMs, now: () => clock }) };
    const server = await startTestServer(testDb.db, { config, services });
    instance = {
      services,
      server,
      client: (apiKey) => createTelemetryClient({ url: server.url, apiKey, EventSource }),
      async close() {
        lifecycle.endLiveStreams();
        await server.close();
        await lifecycle.close();
      },
    };
  });
  afterAll(async () => {
    await instance?.close();
  });

  it('refuses an admin key in connectionParams, bound or not, with 403 and a message pointing to stream tickets', async () => {
    const workspaceId = await newWorkspace();
    const bound = await createKeyService({ db: testDb.db }).createKey({ kind: 'admin', workspaceId });
    for (const apiKey of [keys.admin, bound.key]) {
      const refused = await streamError(await rawStream(instance.server.url, { workspaceId }, { apiKey }));
      expect(refused).toMatchObject({ code: 'FORBIDDEN', httpStatus: 403 });
      expect(refused.message).toMatch(/read key bound to one workspace.*stream ticket/);
    }
    // A read key (always bound to its workspace) may still travel there.
    const read = await newReadKey(workspaceId);
    const allowed = await rawStream(instance.server.url, {}, { apiKey: read.key });
    expect(await allowed.readUntil((text) => text.includes('event: connected'))).not.toContain('serialized-error');
    allowed.close();
    await waitUntil(() => instance.services.live.openStreams() === 0, 'the stream to be freed');
  });

  it('opens a live stream with a ticket an admin key minted, for the workspace it names and no other', async () => {
    const workspaceId = await newWorkspace();
    const { ticket, expiresAt } = await instance.client(keys.admin).telemetry.liveTicket.mutate({ workspaceId });
    expect(ticket).not.toContain(keys.admin);
    expect(expiresAt.getTime()).toBe(clock + 60_000);

    const stream = await rawStream(instance.server.url, {}, { ticket });
    await waitUntil(() => instance.services.live.openStreams() === 1, 'the ticket’s stream');
    await instance.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'with-a-ticket' });
    expect(await stream.readUntil((text) => text.includes('with-a-ticket'))).toMatch(/data: .*"with-a-ticket".*\nid: \d+-\d+\n/);
    stream.close();

    const elsewhere = await streamError(await rawStream(instance.server.url, { workspaceId: randomUUID() }, { ticket }));
    expect(elsewhere).toMatchObject({ code: 'FORBIDDEN' });
    await waitUntil(() => instance.services.live.openStreams() === 0, 'every stream to be freed');
  });

  it('refuses an expired, forged or malformed ticket, and one whose key was revoked, with 401', async () => {
    const workspaceId = await newWorkspace();
    const read = await newReadKey(workspaceId);
    const minted = await instance.client(read.key).telemetry.liveTicket.mutate({});
    const [payload, mac] = minted.ticket.slice('tlmt_'.length).split('.') as [string, string];
    const otherWorkspace = Buffer.from(Buffer.from(payload, 'base64url').toString().replace(workspaceId, randomUUID())).toString('base64url');
    const refusals = [`tlmt_${otherWorkspace}.${mac}`, `tlmt_${payload}.${'A'.repeat(43)}`, 'tlmt_bm90LWEtdGlja2V0.xyz', 'not a ticket'];
    for (const ticket of refusals) {
      expect(await streamError(await rawStream(instance.server.url, {}, { ticket }))).toMatchObject({
        code: 'UNAUTHORIZED',
        httpStatus: 401,
        reason: 'ticket_invalid',
      });
    }

    const now = clock;
    try {
      clock = now + 61_000;
      expect(await streamError(await rawStream(instance.server.url, {}, { ticket: minted.ticket }))).toMatchObject({
        code: 'UNAUTHORIZED',
        reason: 'ticket_invalid',
      });
    } finally {
      clock = now;
    }

    await instance.client(keys.admin).admin.keys.revoke.mutate({ id: read.id });
    expect(await streamError(await rawStream(instance.server.url, {}, { ticket: minted.ticket }))).toMatchObject({
      code: 'UNAUTHORIZED',
      reason: 'ticket_invalid',
    });
    expect(instance.services.live.openStreams()).toBe(0);
  });

  it('mints tickets only for keys that may read the workspace', async () => {
    const workspaceId = await newWorkspace();
    const read = await newReadKey(workspaceId);
    await expect(instance.client(keys.ingest).telemetry.liveTicket.mutate({ workspaceId })).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
    await expect(instance.client(read.key).telemetry.liveTicket.mutate({ workspaceId: randomUUID() })).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
    await expect(instance.client(keys.admin).telemetry.liveTicket.mutate({})).rejects.toMatchObject({ data: { code: 'BAD_REQUEST' } });
    // The plain-JSON face mints them too, for clients without the typed client.
    const response = await fetch(`${instance.server.url}/api/live/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${read.key}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ticket: expect.stringMatching(/^tlmt_/) });
  });

  it('keeps a typed client’s stream going past its ticket’s expiry: reconnects with a fresh ticket and loses nothing', async () => {
    const workspaceId = await newWorkspace();
    const stream = subscribe(instance.client(keys.admin), { workspaceId });
    await waitUntil(() => instance.services.live.openStreams() === 1, 'an open stream');
    const ingest = instance.client(keys.ingest);
    await ingest.telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'before' });
    await waitUntil(() => stream.received.length === 1, 'the first event');

    // The ticket expires; the stream then reaches its maximum duration (1 s) and the EventSource
    // reconnects with its old URL: refused, so the client resubscribes with a new ticket.
    clock += 61_000;
    await waitUntil(() => stream.started() >= 2, 'a new subscription', 15_000);
    await ingest.telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'after' });
    await waitUntil(() => stream.received.length === 2, 'the event after reconnecting');
    stream.stop();
    expect(stream.received.map((record) => record.name)).toEqual(['before', 'after']);
    expect(stream.errors).toEqual([]);
  });

  it('telemetry tail with an admin key never puts the key in a URL: its stream opens with a ticket', async () => {
    const urls: string[] = [];
    const config = testConfig();
    const { services, lifecycle } = testWiring(testDb.db, { config });
    const app = new Hono();
    app.use('*', async (c, next) => {
      urls.push(c.req.url);
      await next();
    });
    app.route('/', createApp({ db: testDb.db, config, logger: createLogger('silent'), services }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const workspaceId = await newWorkspace();
      const { TELEMETRY_KEY: _key, TELEMETRY_URL: _url, ...env } = process.env;
      const child = spawn(
        process.execPath,
        [fileURLToPath(new URL('../bin/telemetry.mjs', import.meta.url)), 'tail', '--workspace', workspaceId, '--count', '1', '--json'],
        {
          env: { ...env, TELEMETRY_URL: url, TELEMETRY_KEY: keys.admin },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      await waitUntil(() => services.live.openStreams() === 1, 'the tail’s stream', 20_000);
      await createTelemetryClient({ url, apiKey: keys.ingest }).telemetry.ingest.mutate({
        id: randomUUID(),
        workspaceId,
        source: 'cli',
        eventType: 'custom',
        name: 'tailed',
      });
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      expect(JSON.parse(stdout)).toMatchObject({ name: 'tailed', workspaceId });

      const liveUrls = urls.filter((seen) => new URL(seen).pathname === '/trpc/telemetry.live');
      expect(liveUrls.length).toBeGreaterThan(0);
      expect(liveUrls.every((seen) => decodeURIComponent(new URL(seen).searchParams.get('connectionParams') ?? '').includes('"ticket":"tlmt_'))).toBe(true);
      for (const seen of urls) {
        expect(seen).not.toContain(keys.admin);
        expect(decodeURIComponent(seen)).not.toContain(keys.admin);
      }
    } finally {
      lifecycle.endLiveStreams();
      server.close();
      if ('closeAllConnections' in server) server.closeAllConnections();
      await lifecycle.close();
    }
  });
});

import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient, type TelemetryClient } from '../client/index.ts';
import { createServices } from '../server/services/index.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import type { Services } from '../server/trpc/context.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, startTestServer, testConfig, type TestKeys, type TestServer } from './support/app.ts';

let testDb: TestDatabase;
let keys: TestKeys;
beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
});
afterAll(async () => {
  await testDb?.drop();
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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
  const services = createServices({ db: testDb.db, config });
  const stopFollowing = await services.keys.followRevocations();
  const server = await startTestServer(testDb.db, { config, services });
  return {
    services,
    server,
    client: (apiKey) => createTelemetryClient({ url: server.url, apiKey, EventSource }),
    async close() {
      services.live.endAll();
      await server.close();
      await stopFollowing();
      await services.live.close();
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
    const workspaceId = randomUUID();
    const read = await newReadKey(workspaceId);
    const otherRead = await newReadKey(workspaceId);
    const stream = subscribe(first.client(read.key), {});
    const bystander = subscribe(first.client(otherRead.key), {});
    await waitFor(() => first.services.live.openStreams() === 2, 'two open streams');

    await first.client(keys.admin).admin.keys.revoke.mutate({ id: read.id });
    await waitFor(() => stream.errors.length === 1, 'the revoked key’s stream to end');
    expect(stream.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', httpStatus: 401, reason: 'key_revoked' } });
    await waitFor(() => first.services.live.openStreams() === 1, 'its slot to be freed');

    // Other keys' streams go on.
    await first.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'still-live' });
    await waitFor(() => bystander.received.length === 1, 'the bystander’s event');
    expect(stream.received).toEqual([]);
    expect(stream.started()).toBe(1);
    bystander.stop();
    await waitFor(() => first.services.live.openStreams() === 0, 'every stream to be freed');
  });

  it('ends the streams of a rotated-away key too, while the new key streams', async () => {
    const workspaceId = randomUUID();
    const read = await newReadKey(workspaceId);
    const stream = subscribe(first.client(read.key), {});
    await waitFor(() => first.services.live.openStreams() === 1, 'an open stream');

    const rotated = await first.client(keys.admin).admin.keys.rotate.mutate({ id: read.id });
    await waitFor(() => stream.errors.length === 1, 'the old key’s stream to end');
    expect(stream.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', reason: 'key_revoked' } });

    const renewed = subscribe(first.client(rotated.key), {});
    await waitFor(() => first.services.live.openStreams() === 1, 'the new key’s stream');
    await first.client(keys.ingest).telemetry.ingest.mutate({ id: randomUUID(), workspaceId, source: 'web', eventType: 'custom', name: 'after-rotation' });
    await waitFor(() => renewed.received.length === 1, 'the event on the new key’s stream');
    renewed.stop();
    await waitFor(() => first.services.live.openStreams() === 0, 'every stream to be freed');
  });

  it('ends the key’s streams on every instance sharing the database, not only where it was revoked', async () => {
    const workspaceId = randomUUID();
    const read = await newReadKey(workspaceId);
    const onFirst = subscribe(first.client(read.key), {});
    const onSecond = subscribe(second.client(read.key), {});
    await waitFor(() => first.services.live.openStreams() === 1 && second.services.live.openStreams() === 1, 'a stream on each instance');

    await first.client(keys.admin).admin.keys.revoke.mutate({ id: read.id });
    await waitFor(() => onFirst.errors.length === 1 && onSecond.errors.length === 1, 'both streams to end');
    expect(onSecond.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', reason: 'key_revoked' } });
    await waitFor(() => second.services.live.openStreams() === 0, 'the second instance’s slot to be freed');
  });

  it('ends a stream whose key was revoked without a notice reaching this instance, at the next key check', async () => {
    const instance = await startInstance({ LIVE_KEY_CHECK_S: '1' });
    try {
      const workspaceId = randomUUID();
      const read = await newReadKey(workspaceId);
      const stream = subscribe(instance.client(read.key), {});
      await waitFor(() => instance.services.live.openStreams() === 1, 'an open stream');
      // Revoked behind the service's back: no NOTIFY is sent.
      await testDb.db.rows(sql`update telemetry.api_keys set revoked_at = now() where id = ${read.id}`);
      await waitFor(() => stream.errors.length === 1, 'the stream to end at the key check');
      expect(stream.errors[0]).toMatchObject({ data: { code: 'UNAUTHORIZED', reason: 'key_revoked' } });
    } finally {
      await instance.close();
    }
  });
});

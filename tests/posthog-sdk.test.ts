import { PostHog } from 'posthog-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignUserId } from '../server/ingest-adapters/deterministic-ids.ts';
import { createWorkspaceWithKey, type OutageSwitch, startServiceWithOutageSwitch } from './support/adapters.ts';
import type { TestServer } from './support/app.ts';
import type { TestDatabase } from './support/database.ts';
import { countEventsWithId, storedEvents } from './support/events.ts';

// The real posthog-node (5.70.0) against the real service, listening on a port.

let testDb: TestDatabase;
let server: TestServer;
let outages: OutageSwitch;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ testDb, server, outages, close } = await startServiceWithOutageSwitch());
});
afterAll(() => close());

const workspaceKey = () => createWorkspaceWithKey(testDb.db);

/** What the SDK reports it sent, as its `flush` event carries it. */
interface SentMessage {
  event: string;
  uuid: string;
  distinct_id: string;
  timestamp: string;
  properties: Record<string, unknown>;
}

/** A client that sends only when told to, retrying fast, recording every message it reports sent. */
function client(key: string): { posthog: PostHog; sent: SentMessage[] } {
  const posthog = new PostHog(key, { host: server.url, flushAt: 100, flushInterval: 0, fetchRetryDelay: 10, fetchRetryCount: 3 });
  const sent: SentMessage[] = [];
  posthog.on('flush', (messages: SentMessage[]) => sent.push(...messages));
  return { posthog, sent };
}

describe('posthog-node', () => {
  it('stores every event it sends (gzip, /batch/) once, in the key workspace, at its time, with its mapping', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { posthog, sent } = client(key);
    const at = new Date(Date.now() - 60_000);
    posthog.capture({ distinctId: 'user-7', event: 'order placed', properties: { total: 42, currency: 'EUR' }, timestamp: at });
    posthog.capture({ distinctId: 'user-7', event: '$pageview', properties: { $current_url: 'https://shop.example/orders/1' } });
    posthog.identify({ distinctId: 'user-7', properties: { email: 'seven@example.com' } });
    posthog.captureException(new RangeError('amount out of range'), 'user-7');
    const flushStarted = Date.now();
    await posthog.shutdown();
    const flushDone = Date.now();

    expect(sent.map((message) => message.event).sort()).toEqual(['$exception', '$identify', '$pageview', 'order placed']);
    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(4);
    for (const message of sent) {
      expect(await countEventsWithId(testDb.db, message.uuid)).toBe(1);
      const event = stored.find((candidate) => candidate.id === message.uuid);
      expect(event).toMatchObject({ workspaceId, source: 'backend', userId: foreignUserId(workspaceId, 'user-7') });
      // Skew correction adds the time between sent_at and arrival: at most the flush's own duration.
      const sentTime = new Date(message.timestamp).getTime();
      expect(event!.createdAt.getTime()).toBeGreaterThanOrEqual(sentTime);
      expect(event!.createdAt.getTime() - sentTime).toBeLessThanOrEqual(flushDone - flushStarted);
    }
    const byEvent = (name: string) => stored.find((event) => event.id === sent.find((message) => message.event === name)?.uuid)!;
    expect(byEvent('order placed')).toMatchObject({ eventType: 'custom', name: 'order placed' });
    expect(byEvent('order placed').createdAt.getTime() - at.getTime()).toBeLessThanOrEqual(flushDone - flushStarted);
    expect(byEvent('order placed').metadata).toMatchObject({ distinctId: 'user-7', properties: { total: 42, currency: 'EUR', $lib: 'posthog-node' } });
    expect(byEvent('$pageview')).toMatchObject({ eventType: 'page.view', name: '/orders/1' });
    expect(byEvent('$identify')).toMatchObject({
      eventType: 'identify',
      metadata: expect.objectContaining({ properties: expect.objectContaining({ $set: { email: 'seven@example.com' } }) }),
    });
    expect(byEvent('$exception')).toMatchObject({ eventType: 'error', name: 'RangeError' });
    expect(byEvent('$exception').metadata).toMatchObject({
      message: 'amount out of range',
      kind: 'RangeError',
      stack: expect.stringContaining('posthog-sdk.test.ts'),
    });
  });

  it('retries a batch answered 503 during a database outage, and the retry stores each event once', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { posthog, sent } = client(key);
    outages.failNext('before');
    const callsBefore = outages.calls;
    posthog.capture({ distinctId: 'user-8', event: 'after the outage' });
    posthog.capture({ distinctId: 'user-8', event: 'also after the outage' });
    await posthog.shutdown();

    expect(outages.calls - callsBefore).toBe(2);
    expect(sent).toHaveLength(2);
    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored.map((event) => event.id).sort()).toEqual(sent.map((message) => message.uuid).sort());
    for (const message of sent) expect(await countEventsWithId(testDb.db, message.uuid)).toBe(1);
  });

  it('gets empty feature flags from /flags without an error', async () => {
    const { key } = await workspaceKey();
    const { posthog } = client(key);
    const errors: unknown[] = [];
    posthog.on('error', (error: unknown) => errors.push(error));
    expect(await posthog.getAllFlags('user-9')).toEqual({});
    expect(await posthog.getFeatureFlag('new-checkout', 'user-9')).toBeUndefined();
    await posthog.shutdown();
    expect(errors).toEqual([]);
  });
});

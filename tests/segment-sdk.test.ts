import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignUserId } from '../server/ingest-adapters/deterministic-ids.ts';
import { createWorkspaceWithKey, expectSegmentMessagesStoredOnce, type OutageSwitch, startServiceWithOutageSwitch } from './support/adapters.ts';
import type { TestServer } from './support/app.ts';
import type { TestDatabase } from './support/database.ts';
import { storedEvents } from './support/events.ts';

// The real @segment/analytics-node (3.1.0) against the real service on a port.

let testDb: TestDatabase;
let server: TestServer;
let outages: OutageSwitch;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ testDb, server, outages, close } = await startServiceWithOutageSwitch());
});
afterAll(() => close());

const workspaceKey = () => createWorkspaceWithKey(testDb.db);

interface SentMessage {
  type: string;
  messageId: string;
  timestamp: string;
  userId?: string;
  anonymousId?: string;
  event?: string;
  name?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  context: { library: { name: string; version: string } };
}

/** An SDK client that records every batch it sends and every status it is answered. */
function recordingClient(writeKey: string) {
  const analytics = new Analytics({ writeKey, host: server.url, flushAt: 20, flushInterval: 60_000, maxRetries: 3 });
  const sent: { sentAt: string; batch: SentMessage[] }[] = [];
  const statuses: number[] = [];
  analytics.on('http_request', (request) => sent.push(JSON.parse(request.body) as { sentAt: string; batch: SentMessage[] }));
  analytics.on('http_response', (response) => statuses.push(response.status));
  return { analytics, sent, statuses };
}

/** Every message the SDK sent is stored exactly once, in the key's workspace, at its skew-corrected time, mapped. */
async function reconcile(workspaceId: string, sent: { sentAt: string; batch: SentMessage[] }[]) {
  const messages = new Map<string, { message: SentMessage; sentAt: string }>();
  for (const request of sent) for (const message of request.batch) messages.set(message.messageId, { message, sentAt: request.sentAt });
  return expectSegmentMessagesStoredOnce(testDb.db, workspaceId, messages, 'backend', (message, messageId) => ({
    type: message.type,
    messageId,
    context: { library: message.context.library },
  }));
}

describe('@segment/analytics-node', () => {
  it('stores every call it sends once, in the write key workspace, at its time and with its mapping', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { analytics, sent, statuses } = recordingClient(key);
    analytics.identify({ userId: 'user-7', traits: { plan: 'pro', email: 'ada@example.com' } });
    analytics.track({ userId: 'user-7', event: 'Order Completed', properties: { total: 42.5, items: 3 } });
    analytics.track({ anonymousId: 'anon-9', event: 'Viewed Pricing', timestamp: new Date(Date.now() - 30_000) });
    analytics.page({ userId: 'user-7', name: 'Docs', category: 'Guides', properties: { path: '/docs' } });
    analytics.screen({ userId: 'user-7', name: 'Settings' });
    analytics.group({ userId: 'user-7', groupId: 'acme', traits: { seats: 12 } });
    analytics.alias({ userId: 'user-7', previousId: 'anon-9' });
    await analytics.closeAndFlush();

    expect(statuses).toEqual([200]);
    expect(sent[0]?.batch).toHaveLength(7);
    const stored = await reconcile(workspaceId, sent);
    const named = new Map(stored.map((event) => [`${event.eventType}:${event.name}`, event]));
    expect([...named.keys()].sort()).toEqual([
      'alias:alias',
      'custom:Order Completed',
      'custom:Viewed Pricing',
      'group:group',
      'identify:identify',
      'page.view:Docs',
      'screen.view:Settings',
    ]);
    expect(named.get('custom:Order Completed')?.metadata).toMatchObject({ event: 'Order Completed', userId: 'user-7', properties: { total: 42.5, items: 3 } });
    expect(named.get('identify:identify')?.metadata).toMatchObject({ traits: { plan: 'pro', email: 'ada@example.com' } });
    expect(named.get('page.view:Docs')?.metadata).toMatchObject({ category: 'Guides', properties: { path: '/docs', category: 'Guides' } });
    expect(named.get('group:group')?.metadata).toMatchObject({ groupId: 'acme', traits: { seats: 12 } });
    expect(named.get('alias:alias')?.metadata).toMatchObject({ previousId: 'anon-9' });
    expect(named.get('custom:Viewed Pricing')?.userId).toBe(foreignUserId(workspaceId, 'anon-9'));
  });

  it('retries a batch answered 503 during a database outage, and the retry stores each call once', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { analytics, sent, statuses } = recordingClient(key);
    outages.failNext('before');
    const callsBefore = outages.calls;
    analytics.track({ userId: 'user-1', event: 'After Outage' });
    analytics.track({ userId: 'user-1', event: 'After Outage Too' });
    await analytics.closeAndFlush();

    expect(statuses).toEqual([503, 200]);
    expect(outages.calls - callsBefore).toBe(2);
    await reconcile(workspaceId, sent);
  });

  it('stores nothing twice when the answer to a stored batch is lost and the SDK sends it again', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { analytics, sent, statuses } = recordingClient(key);
    outages.failNext('after');
    analytics.track({ userId: 'user-2', event: 'Stored Then Lost' });
    analytics.page({ anonymousId: 'anon-2', name: 'Landing' });
    await analytics.closeAndFlush();

    expect(statuses).toEqual([503, 200]);
    // The SDK sent the same messages twice (with a new sentAt); each is stored once.
    expect(sent.map((request) => request.batch.map((message) => message.messageId))).toEqual([
      sent[0]!.batch.map((message) => message.messageId),
      sent[0]!.batch.map((message) => message.messageId),
    ]);
    const stored = await reconcile(workspaceId, sent.slice(0, 1));
    expect(stored).toHaveLength(2);
  });

  it('drops a batch answered 401 for an unknown write key without retrying it, storing nothing', async () => {
    const { workspaceId } = await workspaceKey();
    const { analytics, statuses } = recordingClient('tlm_ingest_not_a_key');
    const failures: unknown[] = [];
    analytics.on('error', (error) => failures.push(error));
    analytics.track({ userId: 'user-3', event: 'Never Stored' });
    await analytics.closeAndFlush();

    expect(statuses).toEqual([401]);
    expect(failures).toHaveLength(1);
    expect(await storedEvents(testDb.db, workspaceId)).toEqual([]);
  });
});

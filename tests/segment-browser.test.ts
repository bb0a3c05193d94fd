import { build } from 'esbuild';
import { Hono } from 'hono';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignUserId } from '../server/ingest-adapters/deterministic-ids.ts';
import { waitUntil } from './faults/support/wait.ts';
import { hasChromium, launchChromium } from './support/chromium.ts';
import {
  createWorkspaceWithKey,
  expectSegmentMessagesStoredOnce,
  listen,
  type OutageSwitch,
  openRecordingPage,
  servicesWithOutageSwitch,
  silentApp,
} from './support/adapters.ts';
import { testConfig } from './support/app.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';

/**
 * The real @segment/analytics-next (1.84.3) in headless Chromium: the npm package bundled by the
 * test (its lazily loaded parts included, so nothing comes from Segment's CDN), loaded with
 * `cdnURL` pointing at the service, which answers its settings request.
 */
describe.skipIf(!hasChromium)('@segment/analytics-next in Chromium', () => {
  let testDb: TestDatabase;
  let browser: Browser;
  let port: number;
  let closeServer: () => void;
  let outages: OutageSwitch;

  beforeAll(async () => {
    testDb = await openTestDatabase();
    const bundle = await build({
      stdin: { contents: "export { AnalyticsBrowser } from '@segment/analytics-next';", resolveDir: process.cwd(), loader: 'ts' },
      bundle: true,
      format: 'iife',
      globalName: 'Segment',
      platform: 'browser',
      target: 'es2020',
      define: { 'process.env.NODE_ENV': '"production"' },
      write: false,
      logLevel: 'silent',
    });
    const analyticsJs = bundle.outputFiles[0]!.text;
    const config = testConfig();
    const wired = servicesWithOutageSwitch(testDb.db, config);
    outages = wired.outages;
    // The page, its bundle and the service on one port: the page reaches it from another origin by another host name.
    const app = new Hono();
    app.get('/analytics.js', (c) => c.body(analyticsJs, 200, { 'content-type': 'text/javascript' }));
    app.get('/page', (c) => c.html(PAGE));
    app.route('/', silentApp(testDb.db, config, wired.services));
    ({ port, close: closeServer } = await listen(app.fetch));
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    closeServer?.();
    await testDb?.drop();
  });

  const workspaceKey = () => createWorkspaceWithKey(testDb.db);

  interface SentMessage {
    type: string;
    messageId: string;
    timestamp: string;
    sentAt?: string;
    userId?: string | null;
    anonymousId: string;
    event?: string;
    name?: string;
    context: { library: { name: string }; page?: { path: string } };
  }

  /** A page of the app on `pageOrigin` whose analytics-next sends to the service on `serviceOrigin`; what it posts, and the answers. */
  async function openPage(key: string, pageOrigin: string, serviceOrigin: string, strategy: 'standard' | 'batching') {
    const { context, page, pageErrors } = await openRecordingPage(browser);
    const sent: { path: string; body: { sentAt?: string; batch?: SentMessage[] } & SentMessage }[] = [];
    const statuses: number[] = [];
    page.on('request', (request) => {
      const { pathname } = new URL(request.url());
      if (request.method() === 'POST' && pathname.startsWith('/v1/')) sent.push({ path: pathname, body: request.postDataJSON() });
    });
    page.on('response', (response) => {
      if (response.request().method() === 'POST' && new URL(response.url()).pathname.startsWith('/v1/')) statuses.push(response.status());
    });
    await page.goto(`${pageOrigin}/page?${new URLSearchParams({ key, cdn: serviceOrigin, strategy })}`);
    await page.waitForFunction(() => window.analyticsReady === true, undefined, { timeout: 10_000 });
    expect(pageErrors).toEqual([]);
    return { page, sent, statuses, close: () => context.close() };
  }

  /** Every message the page sent is stored once, in the key's workspace, at its skew-corrected time, mapped as a browser's. */
  async function reconcile(workspaceId: string, sent: { body: { sentAt?: string; batch?: SentMessage[] } & SentMessage }[]) {
    const messages = new Map<string, { message: SentMessage; sentAt: string }>();
    for (const { body } of sent) {
      for (const message of body.batch ?? [body]) messages.set(message.messageId, { message, sentAt: (message.sentAt ?? body.sentAt)! });
    }
    return expectSegmentMessagesStoredOnce(testDb.db, workspaceId, messages, 'web', (message, messageId) => ({
      type: message.type,
      messageId,
      anonymousId: message.anonymousId,
      context: { library: { name: 'analytics.js' } },
    }));
  }

  async function sendCalls(page: Page) {
    await page.evaluate(async () => {
      const { analytics } = window;
      await analytics.page('Docs', 'Pricing', { plan: 'team' });
      await analytics.track('Signup Clicked', { button: 'hero' });
      await analytics.identify('user-5', { plan: 'pro' });
      await analytics.group('acme', { seats: 3 });
      await analytics.alias('user-5-new', 'user-5');
    });
  }

  it('starts on the settings this service answers and stores each call it posts once, from another origin', async () => {
    const { workspaceId, key } = await workspaceKey();
    // The page is on localhost, the service on 127.0.0.1: two origins, as a site and its telemetry are.
    const { page, sent, statuses, close } = await openPage(key, `http://localhost:${port}`, `http://127.0.0.1:${port}`, 'standard');
    await sendCalls(page);
    await waitUntil(() => statuses.length >= 5, 'five answered posts');

    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(sent.map((request) => request.path).sort()).toEqual(['/v1/a', '/v1/g', '/v1/i', '/v1/p', '/v1/t']);
    const stored = await reconcile(workspaceId, sent);
    const named = new Map(stored.map((event) => [`${event.eventType}:${event.name}`, event]));
    expect([...named.keys()].sort()).toEqual(['alias:alias', 'custom:Signup Clicked', 'group:group', 'identify:identify', 'page.view:Pricing']);
    expect(named.get('page.view:Pricing')?.metadata).toMatchObject({ category: 'Docs', context: { page: { path: '/page' } } });
    expect(named.get('custom:Signup Clicked')?.metadata).toMatchObject({ properties: { button: 'hero' } });
    expect(named.get('identify:identify')).toMatchObject({
      userId: foreignUserId(workspaceId, 'user-5'),
      metadata: expect.objectContaining({ traits: { plan: 'pro' } }),
    });
    await close();
  }, 60_000);

  it('sends batches to /v1/b with the batching strategy, and a batch answered 503 is retried and stored once', async () => {
    const { workspaceId, key } = await workspaceKey();
    // From another origin: the retry carries X-Retry-Count, which the CORS preflight must allow.
    const { page, sent, statuses, close } = await openPage(key, `http://localhost:${port}`, `http://127.0.0.1:${port}`, 'batching');
    outages.failNext('after');
    await sendCalls(page);
    await waitUntil(() => statuses.includes(200), 'a batch stored after the lost answer');

    expect(statuses).toEqual([503, 200]);
    expect(sent.map((request) => request.path)).toEqual(['/v1/b', '/v1/b']);
    expect(sent[1]!.body.batch!.map((message) => message.messageId)).toEqual(sent[0]!.body.batch!.map((message) => message.messageId));
    const stored = await reconcile(workspaceId, sent.slice(0, 1));
    expect(stored).toHaveLength(5);
    await close();
  }, 60_000);

  it('retries a single call answered 503 during a database outage, and the retry stores it once', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { page, sent, statuses, close } = await openPage(key, `http://localhost:${port}`, `http://127.0.0.1:${port}`, 'standard');
    outages.failNext('before');
    await page.evaluate(() => window.analytics.track('Outage Survived'));
    await waitUntil(() => statuses.includes(200), 'the retried call stored');

    expect(statuses).toEqual([503, 200]);
    expect(sent.map((request) => request.path)).toEqual(['/v1/t', '/v1/t']);
    const [event] = await reconcile(workspaceId, sent);
    expect(event).toMatchObject({ eventType: 'custom', name: 'Outage Survived' });
    await close();
  }, 60_000);
});

interface BrowserAnalytics {
  page(category: string, name: string, properties?: object): Promise<unknown>;
  track(event: string, properties?: object): Promise<unknown>;
  identify(userId: string, traits?: object): Promise<unknown>;
  group(groupId: string, traits?: object): Promise<unknown>;
  alias(to: string, from: string): Promise<unknown>;
}

declare global {
  interface Window {
    analytics: BrowserAnalytics;
    analyticsReady: boolean;
  }
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>analytics-next test page</title><script src="/analytics.js"></script></head>
<body><p>analytics-next test page</p>
<script>
  const params = new URLSearchParams(location.search);
  const strategy = params.get('strategy') === 'batching' ? { strategy: 'batching', config: { size: 5, timeout: 200 } } : undefined;
  const analytics = Segment.AnalyticsBrowser.load(
    { writeKey: params.get('key'), cdnURL: params.get('cdn') },
    { integrations: { 'Segment.io': strategy ? { deliveryStrategy: strategy } : {} }, disableClientPersistence: true },
  );
  analytics.ready(() => { window.analytics = analytics; window.analyticsReady = true; });
</script></body></html>`;

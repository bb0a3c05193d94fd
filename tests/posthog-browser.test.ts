import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Hono } from 'hono';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignUserId } from '../server/ingest-adapters/deterministic-ids.ts';
import { waitUntil } from './faults/support/wait.ts';
import { createWorkspaceWithKey, listen, type OutageSwitch, openRecordingPage, startServiceWithOutageSwitch, waitForStored } from './support/adapters.ts';
import type { TestServer } from './support/app.ts';
import { hasChromium, launchChromium } from './support/chromium.ts';
import type { TestDatabase } from './support/database.ts';
import { countEventsWithId, storedEvents } from './support/events.ts';

/** What posthog-js reports it captured (its `before_send` hook sees each event as it will be sent). */
interface CapturedEvent {
  uuid: string;
  event: string;
  timestamp: string;
  distinctId: string;
}

/**
 * The real posthog-js (1.449.2, its full browser bundle) in headless Chromium, on a page served
 * from another origin than the service, so every call it makes crosses origins as in production.
 */
describe.skipIf(!hasChromium)('posthog-js in Chromium', () => {
  let testDb: TestDatabase;
  let server: TestServer;
  let browser: Browser;
  let pageOrigin: string;
  let closePageServer: () => void;
  let outages: OutageSwitch;
  let closeService: () => Promise<void>;

  beforeAll(async () => {
    ({ testDb, server, outages, close: closeService } = await startServiceWithOutageSwitch());

    const posthogBundle = await readFile(createRequire(import.meta.url).resolve('posthog-js/dist/array.full.js'), 'utf8');
    const pages = new Hono();
    pages.get('/posthog.js', (c) => c.body(posthogBundle, 200, { 'content-type': 'text/javascript' }));
    pages.get('/shop/cart', (c) => c.html(PAGE));
    pages.get('/favicon.ico', (c) => c.body(null, 204));
    pages.get('/elsewhere', (c) => c.html('<!doctype html><title>elsewhere</title>'));
    ({ url: pageOrigin, close: closePageServer } = await listen(pages.fetch));
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    closePageServer?.();
    await closeService?.();
  });

  const workspaceKey = () => createWorkspaceWithKey(testDb.db);

  /** A fresh browser page with posthog-js initialised for `key`, recording console errors and what the SDK asked the service. */
  async function openShop(key: string, options: Record<string, unknown> = {}) {
    const { context, page, errors: consoleErrors } = await openRecordingPage(browser);
    const answers: { url: string; status: number }[] = [];
    page.on('response', (response) => {
      if (response.url().startsWith(server.url)) answers.push({ url: response.url(), status: response.status() });
    });
    // Reported to the test as they happen, so they outlive the page.
    const captured: CapturedEvent[] = [];
    await page.exposeFunction('reportCaptured', (event: CapturedEvent) => captured.push(event));
    await page.goto(`${pageOrigin}/shop/cart`);
    await page.evaluate(
      ({ apiHost, token, extra }) => {
        const win = window as unknown as { posthog: { init(token: string, config: Record<string, unknown>): void }; reportCaptured(event: unknown): void };
        win.posthog.init(token, {
          api_host: apiHost,
          opt_out_useragent_filter: true,
          disable_session_recording: true,
          disable_surveys: true,
          capture_dead_clicks: false,
          rageclick: false,
          capture_performance: false,
          before_send: (event: { uuid: string; event: string; timestamp?: Date; properties: { distinct_id: string } }) => {
            win.reportCaptured({ uuid: event.uuid, event: event.event, timestamp: event.timestamp?.toISOString(), distinctId: event.properties.distinct_id });
            return event;
          },
          ...extra,
        });
      },
      { apiHost: server.url, token: key, extra: options },
    );
    return { page, context, consoleErrors, answers, captured };
  }

  /** waitUntil, failing with what `explain` says of the state when the condition never holds. */
  async function waitOrExplain(check: () => Promise<boolean>, what: string, explain: () => Promise<string>) {
    try {
      await waitUntil(check, what, 20_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}: ${await explain()}`);
    }
  }

  it('stores every event posthog-js captures once, in the key workspace, at its time, mapped, and it logs no error', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { page, context, consoleErrors, answers, captured } = await openShop(key);
    // posthog-js turns autocapture on once the remote config has answered.
    await page.waitForFunction(() => (window as unknown as { posthog: { autocapture?: { isEnabled: boolean } } }).posthog.autocapture?.isEnabled === true);
    await page.click('#buy');
    await page.evaluate(() => {
      const { posthog } = window as unknown as {
        posthog: { capture(name: string, props: object): void; identify(id: string, set: object): void; captureException(error: Error): void };
      };
      posthog.capture('order placed', { total: 42 });
      posthog.identify('customer-1', { email: 'one@example.com' });
      posthog.captureException(new TypeError('cart is undefined'));
    });
    // Everything captured so far is sent by the SDK's queue while the page stays; then leaving the
    // page sends $pageleave as the SDK does during unload.
    const storedNames = async () => (await storedEvents(testDb.db, workspaceId)).map((event) => event.name);
    const explain = async () =>
      `stored ${JSON.stringify(await storedNames())}, captured ${JSON.stringify(captured.map((event) => event.event))}, answers ${JSON.stringify(answers)}, errors ${JSON.stringify(consoleErrors)}`;
    await waitOrExplain(async () => (await storedNames()).length >= 5, 'the five events captured on the page', explain);
    await page.goto(`${pageOrigin}/elsewhere`);
    await waitOrExplain(async () => (await storedEvents(testDb.db, workspaceId)).some((event) => event.eventType === 'page.leave'), 'the $pageleave', explain);

    const sent = captured.filter((event) => event.event !== '$pageleave');
    expect(sent.map((event) => event.event).sort()).toEqual(['$autocapture', '$exception', '$identify', '$pageview', 'order placed']);
    const stored = await waitForStored(testDb.db, workspaceId, sent.length + 1);
    expect(stored).toHaveLength(sent.length + 1);
    for (const event of sent) {
      expect(await countEventsWithId(testDb.db, event.uuid)).toBe(1);
      const row = stored.find((candidate) => candidate.id === event.uuid);
      expect(row, event.event).toMatchObject({ workspaceId, source: 'web', userId: foreignUserId(workspaceId, event.distinctId) });
      // Skew correction moves the time by how long the request took: never before capture, never after arrival.
      expect(row!.createdAt.getTime()).toBeGreaterThanOrEqual(new Date(event.timestamp).getTime());
      expect(row!.createdAt.getTime()).toBeLessThanOrEqual(row!.receivedAt.getTime());
    }
    const row = (name: string) => stored.find((candidate) => candidate.id === sent.find((event) => event.event === name)?.uuid)!;
    expect(row('$pageview')).toMatchObject({ eventType: 'page.view', name: '/shop/cart' });
    expect(row('$autocapture')).toMatchObject({ eventType: 'ui.interaction', name: 'click', targetType: 'button' });
    expect(row('order placed')).toMatchObject({
      eventType: 'custom',
      metadata: expect.objectContaining({ properties: expect.objectContaining({ total: 42 }) }),
    });
    expect(row('$identify')).toMatchObject({ eventType: 'identify', userId: foreignUserId(workspaceId, 'customer-1') });
    expect(row('$exception')).toMatchObject({ eventType: 'error', name: 'TypeError' });
    expect(row('$exception').metadata).toMatchObject({
      message: 'cart is undefined',
      kind: 'TypeError',
      stack: expect.stringContaining('TypeError: cart is undefined'),
    });
    expect(stored.find((event) => event.eventType === 'page.leave')).toMatchObject({ name: '/shop/cart', userId: foreignUserId(workspaceId, 'customer-1') });

    // Flags and remote config were asked for and answered; capture calls were all answered 200.
    expect(answers.some((answer) => new URL(answer.url).pathname === '/flags/' && answer.status === 200)).toBe(true);
    expect(answers.some((answer) => /\/array\/[^/]+\/config(\.js)?$/.test(new URL(answer.url).pathname) && answer.status === 200)).toBe(true);
    expect(answers.filter((answer) => new URL(answer.url).pathname === '/e/').every((answer) => answer.status === 200)).toBe(true);
    expect(consoleErrors).toEqual([]);
    await context.close();
  }, 60_000);

  it('sends gzip as text/plain without a Content-Encoding header, and the service reads it', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { page, context } = await openShop(key, { capture_pageview: false, autocapture: false });
    const captureRequest = page.waitForRequest((request) => new URL(request.url()).pathname === '/e/' && request.method() === 'POST');
    await page.evaluate(() => (window as unknown as { posthog: { capture(name: string): void } }).posthog.capture('compressed'));
    const request = await captureRequest;
    const body = request.postDataBuffer();
    expect([body?.[0], body?.[1]]).toEqual([0x1f, 0x8b]);
    expect(await request.headerValue('content-encoding')).toBeNull();
    expect(await request.headerValue('content-type')).toMatch(/^text\/plain/);
    const stored = await waitForStored(testDb.db, workspaceId, 1);
    expect(stored.map((event) => event.name)).toEqual(['compressed']);
    await context.close();
  }, 60_000);

  it('retries a capture answered 503 during a database outage, and the retry stores the event once', async () => {
    const { workspaceId, key } = await workspaceKey();
    const { page, context, answers, captured } = await openShop(key, { capture_pageview: false, autocapture: false });
    outages.failNext('before');
    await page.evaluate(() => (window as unknown as { posthog: { capture(name: string): void } }).posthog.capture('during the outage'));
    const [stored] = await waitForStored(testDb.db, workspaceId, 1);
    await waitUntil(() => answers.some((answer) => answer.status === 200 && new URL(answer.url).pathname === '/e/'), 'the answer to the retry');

    expect(answers.filter((answer) => new URL(answer.url).pathname === '/e/').map((answer) => answer.status)).toEqual([503, 200]);
    const [sent] = captured;
    expect(stored).toMatchObject({ id: sent!.uuid, name: 'during the outage' });
    expect(await countEventsWithId(testDb.db, sent!.uuid)).toBe(1);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(1);
    await context.close();
  }, 60_000);
});

const PAGE = `<!doctype html>
<html>
  <head><title>Cart</title><script src="/posthog.js"></script></head>
  <body><button id="buy">Buy</button></body>
</html>`;

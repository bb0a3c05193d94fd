import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { sql } from 'drizzle-orm';
import { build } from 'esbuild';
import { Hono } from 'hono';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../server/app.ts';
import { createLogger } from '../server/logger.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, createTestWorkspace, testConfig, testServices, type TestKeys } from './support/app.ts';
import { waitUntil } from './faults/support/wait.ts';
import { hasChromium, launchChromium } from './support/chromium.ts';

/**
 * The tracker in a real browser: the bundled tracker on a page served by the test, with the
 * service on the same origin. Headless Debian Chromium, driven by playwright-core.
 */
describe.skipIf(!hasChromium)('tracker in Chromium', () => {
  let testDb: TestDatabase;
  let keys: TestKeys;
  let browser: Browser;
  let origin: string;
  let closeServer: () => void;
  let serviceReachable = true;
  /** Requests cut while the service was unreachable: each is a send the tracker must retry. */
  let cutRequests = 0;

  beforeAll(async () => {
    testDb = await openTestDatabase();
    keys = await createTestKeys(testDb.db);
    const bundle = await build({
      entryPoints: ['client/tracker.ts'],
      bundle: true,
      format: 'iife',
      globalName: 'TelemetryTracker',
      platform: 'browser',
      target: 'es2020',
      write: false,
      minify: true,
    });
    const trackerJs = bundle.outputFiles[0]!.text;
    const app = new Hono<{ Bindings: { incoming: IncomingMessage } }>();
    // "Offline": the service's connections are cut before any answer, as a lost network would.
    app.use('/trpc/*', async (c, next) => {
      if (!serviceReachable) {
        cutRequests += 1;
        c.env.incoming.socket.destroy();
        return c.body(null, 503);
      }
      await next();
    });
    app.get('/tracker.js', (c) => c.body(trackerJs, 200, { 'content-type': 'text/javascript' }));
    app.get('/page', (c) => c.html(PAGE));
    app.route('/', createApp({ db: testDb.db, config: testConfig(), logger: createLogger('silent'), services: testServices(testDb.db) }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    closeServer = () => {
      server.close();
      if ('closeAllConnections' in server) server.closeAllConnections();
    };
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    closeServer?.();
    await testDb?.drop();
  });

  async function storedNames(workspaceId: string): Promise<string[]> {
    const rows = await testDb.db.rows<{ name: string }>(sql`select name from telemetry.events where workspace_id = ${workspaceId} order by name`);
    return rows.map((row) => row.name);
  }

  async function waitForStored(workspaceId: string, count: number, timeoutMs = 15_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let names = await storedNames(workspaceId);
    while (names.length < count && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      names = await storedNames(workspaceId);
    }
    return names;
  }

  function pageUrl(workspaceId: string, settings: { flushAt: number; flushIntervalMs: number }) {
    const query = new URLSearchParams({
      key: keys.ingest,
      workspace: workspaceId,
      flushAt: String(settings.flushAt),
      interval: String(settings.flushIntervalMs),
    });
    return `${origin}/page?${query}`;
  }

  it('delivers every event exactly once across going offline, a reload and coming back online', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(pageUrl(workspaceId, { flushAt: 5, flushIntervalMs: 200 }));
    await page.evaluate(() =>
      ['online-1', 'online-2', 'online-3'].forEach((name) => {
        window.track(name);
      }),
    );
    expect(await waitForStored(workspaceId, 3)).toEqual(['online-1', 'online-2', 'online-3']);

    // The service becomes unreachable (the page itself still loads).
    serviceReachable = false;
    await page.evaluate(() =>
      ['offline-1', 'offline-2', 'offline-3', 'offline-4'].forEach((name) => {
        window.track(name);
      }),
    );
    await waitUntil(() => cutRequests > 0, 'a send to fail while the service is unreachable');
    const persisted = await page.evaluate(() => Object.keys(localStorage).filter((key) => key.startsWith('telemetry-tracker:queue:')).length);
    expect(persisted).toBe(1);

    await page.reload();
    await page.evaluate(() =>
      ['reloaded-1', 'reloaded-2'].forEach((name) => {
        window.track(name);
      }),
    );
    const cutBeforeReload = cutRequests;
    await waitUntil(() => cutRequests > cutBeforeReload, 'the reloaded page to try sending');
    expect(await storedNames(workspaceId)).toHaveLength(3);

    serviceReachable = true;
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    const names = await waitForStored(workspaceId, 9);
    expect(names).toEqual(['offline-1', 'offline-2', 'offline-3', 'offline-4', 'online-1', 'online-2', 'online-3', 'reloaded-1', 'reloaded-2']);
    // The queue empties, and every event was stored once (a resend would be answered `duplicate`).
    await page.waitForFunction(() => window.tracker.queueSize() === 0);
    expect(await storedNames(workspaceId)).toHaveLength(9);
    expect(await page.evaluate(() => window.tracker.queueSize())).toBe(0);
    await context.close();
  }, 60_000);

  it('delivers the last events when the page closes (keepalive flush on pagehide)', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const context = await browser.newContext();
    const page = await context.newPage();
    // Nothing would be sent for a minute: only the page-hide flush can deliver these.
    await page.goto(pageUrl(workspaceId, { flushAt: 1000, flushIntervalMs: 60_000 }));
    await page.evaluate(() =>
      ['closing-1', 'closing-2', 'closing-3'].forEach((name) => {
        window.track(name);
      }),
    );
    await page.close({ runBeforeUnload: true });
    expect(await waitForStored(workspaceId, 3)).toEqual(['closing-1', 'closing-2', 'closing-3']);
    await context.close();
  }, 60_000);
});

declare global {
  interface Window {
    track(name: string): void;
    tracker: { queueSize(): number };
  }
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>tracker test page</title><script src="/tracker.js"></script></head>
<body><p>tracker test page</p>
<script>
  const params = new URLSearchParams(location.search);
  window.tracker = TelemetryTracker.createTracker({
    url: location.origin,
    apiKey: params.get('key'),
    source: 'web',
    defaults: { workspaceId: params.get('workspace') },
    flushAt: Number(params.get('flushAt')),
    flushIntervalMs: Number(params.get('interval')),
    retry: { baseDelayMs: 100, maxDelayMs: 400 },
  });
  window.track = (name) => window.tracker.track({ eventType: 'ui.click', name });
</script></body></html>`;

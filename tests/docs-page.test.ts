import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceLifecycle } from '../server/services/index.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { startTestServer, testConfig, testWiring, type TestServer } from './support/app.ts';
import { CHROMIUM_PATH, hasChromium, launchChromium } from './support/chromium.ts';

/**
 * The API explorer at /docs in a real Chromium: it loads from this service alone, with nothing in
 * the console (no CSP refusal of a hosted feature), the bearer scheme chosen, and "try it"
 * prefilled with an example the route accepts (tests/openapi-examples.test.ts sends them all).
 */
const ARTIFACTS = new URL('./artifacts/', import.meta.url);
describe.skipIf(!hasChromium)(hasChromium ? 'API explorer' : `API explorer (skipped: no Chromium at ${CHROMIUM_PATH})`, () => {
  let testDb: TestDatabase;
  let server: TestServer;
  let lifecycle: ServiceLifecycle;
  let browser: Browser;

  beforeAll(async () => {
    const [database, launched] = await Promise.all([openTestDatabase(), launchChromium()]);
    testDb = database;
    browser = launched;
    const config = testConfig();
    const wiring = testWiring(testDb.db, { config });
    lifecycle = wiring.lifecycle;
    server = await startTestServer(testDb.db, { config, services: wiring.services });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await lifecycle?.close();
    await testDb?.drop();
  });

  it('loads with no console error, nothing from another origin, the bearer scheme selected and no hosted features', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    const foreign: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('request', (request) => {
      if (new URL(request.url()).origin !== server.url) foreign.push(request.url());
    });
    await page.goto(`${server.url}/docs`);
    await page.waitForSelector('text=Store one event', { timeout: 30_000 });

    // The document's only scheme is chosen: a bearer token field, not "No authentication selected".
    await page.waitForSelector('text=Bearer Token', { timeout: 10_000 });
    expect(await page.locator('text=No authentication selected').count()).toBe(0);
    // Hosted features the page cannot use here are not offered.
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point (a hidden feature may stay in the DOM)
    const visibleText = await page.locator('body').innerText();
    for (const feature of ['Ask AI', 'Share', 'Deploy', 'Developer Tools', 'Open API Client']) expect(visibleText, feature).not.toContain(feature);
    await page.screenshot({ path: new URL('docs.png', ARTIFACTS).pathname });
    expect(problems).toEqual([]);
    expect(foreign).toEqual([]);
    await context.close();
  });

  it('prefills "try it" for an event with the example body instead of empty strings', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/docs`);
    await page.click('text=Store one event');
    await page.locator('button:has-text("Test Request")').first().click();
    const editor = page.locator('.cm-content').last();
    await expect.poll(() => editor.textContent(), { timeout: 10_000 }).toContain('"eventType": "perf.metric"');
    expect(await editor.textContent()).toContain('"name": "LCP"');
    await page.screenshot({ path: new URL('docs-try-it.png', ARTIFACTS).pathname });
    await context.close();
  });
});

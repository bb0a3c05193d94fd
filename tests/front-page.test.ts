import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { get as httpGet } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, startTestServer, testConfig, testWiring, type TestServer } from './support/app.ts';
import { FIRST_EVENT } from '../server/http/front-page.ts';
import type { ServiceLifecycle } from '../server/services/index.ts';
import { startChildService } from './support/child-service.ts';
import { CHROMIUM_PATH, hasChromium, launchChromium } from './support/chromium.ts';

/** `GET /` in a real Chromium: what the service is, where its pages are, and the first three steps. */
const ARTIFACTS = new URL('./artifacts/', import.meta.url);
describe('front page', () => {
  let testDb: TestDatabase;
  let server: TestServer;
  let lifecycle: ServiceLifecycle;
  let browser: Browser;

  beforeAll(async () => {
    testDb = await openTestDatabase();
    const config = testConfig();
    const wiring = testWiring(testDb.db, { config });
    lifecycle = wiring.lifecycle;
    server = await startTestServer(testDb.db, { config, services: wiring.services });
    if (hasChromium) browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await lifecycle?.close();
    await testDb?.drop();
  });

  it('answers GET / with an HTML page under a strict CSP that allows no inline script', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    // The one script is the page's own file; no inline code.
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script type="module" src="/front-page.js">']);
  });

  it('uses the origin the request came with in its links and commands', async () => {
    // fetch() would replace the Host header: a plain HTTP request keeps it.
    const html = await new Promise<string>((resolve, reject) => {
      const request = httpGet(`${server.url}/`, { headers: { host: 'telemetry.example.test:8443', 'x-forwarded-proto': 'https' } }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve(body));
      });
      request.on('error', reject);
    });
    expect(html).toContain('href="https://telemetry.example.test:8443/docs"');
    expect(html).toContain('curl -X POST https://telemetry.example.test:8443/api/events');
    expect(html).not.toContain(server.url);
  });

  it('takes a newcomer from nothing to a stored event with its three curl commands, run as shown', async () => {
    const adminKey = (await createTestKeys(testDb.db)).admin;
    const html = await (await fetch(`${server.url}/`)).text();
    // The commands as the page shows them (HTML entities decoded as a browser would).
    const commands = [...html.matchAll(/<code data-copy>([\s\S]*?)<\/code>/g)].map(([, code]) =>
      code!.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&'),
    );
    const curlFor = (path: string) => commands.find((command) => command.startsWith(`curl -X POST ${server.url}${path} `))!;
    // Asynchronously: the server answering runs in this process.
    const run = async (command: string, env: Record<string, string>) =>
      JSON.parse(
        (await promisify(execFile)('sh', ['-c', `${command} --silent --show-error --max-time 10`], { env: { ...process.env, ...env } })).stdout,
      ) as Record<string, unknown>;

    const workspace = await run(curlFor('/api/admin/workspaces'), { ADMIN_KEY: adminKey });
    expect(workspace).toMatchObject({ id: expect.any(String), name: 'My app' });
    const key = await run(curlFor('/api/admin/keys'), { ADMIN_KEY: adminKey, WORKSPACE_ID: String(workspace['id']) });
    expect(key).toMatchObject({ kind: 'ingest', workspaceId: workspace['id'], key: expect.stringMatching(/^tlm_ingest_/) });
    const readKeyCommand = commands.filter((command) => command.startsWith(`curl -X POST ${server.url}/api/admin/keys `))[1]!;
    const readKey = await run(readKeyCommand, { ADMIN_KEY: adminKey, WORKSPACE_ID: String(workspace['id']) });
    expect(readKey).toMatchObject({ kind: 'read', workspaceId: workspace['id'] });
    const event = await run(curlFor('/api/events'), { INGEST_KEY: String(key['key']) });
    expect(event).toMatchObject({ id: expect.any(String), createdAt: expect.any(String) });
    // Read back with the read key, as the dashboard will.
    const stored = await fetch(`${server.url}/api/events/${event['id']}`, { headers: { authorization: `Bearer ${readKey['key']}` } });
    expect(await stored.json()).toMatchObject({ id: event['id'], workspaceId: workspace['id'], name: FIRST_EVENT.name });
  });

  it('is named, with the docs, dashboard and metrics, in the start-up log once the service is ready', { timeout: 90_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'telemetry-front-page-'));
    const service = await startChildService({ DATABASE_URL: '', REDIS_URL: '', PGLITE_DIR: dataDir });
    try {
      const listening = service
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((record) => record['msg'] === 'listening');
      expect(listening).toMatchObject({
        url: service.url,
        docs: `${service.url}/docs`,
        dashboard: `${service.url}/dashboard`,
        metrics: `${service.url}/metrics`,
      });
      expect((await fetch(`${service.url}/`)).status).toBe(200);
    } finally {
      service.process.kill('SIGTERM');
      await service.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  describe.skipIf(!hasChromium)(hasChromium ? 'in Chromium' : `in Chromium (skipped: no Chromium at ${CHROMIUM_PATH})`, () => {
    it('shows the name and version, links to the docs, dashboard, metrics and health, and three steps with copyable commands', async () => {
      const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text());
      });
      await page.goto(`${server.url}/`);

      expect(await page.textContent('h1')).toBe('Telemetry service');
      expect(await page.textContent('#version')).toBe('0.1.0');
      const links = await page.$$eval('nav a', (anchors) => anchors.map((anchor) => (anchor as HTMLAnchorElement).href));
      expect(links).toEqual(['/docs', '/dashboard', '/metrics', '/healthz'].map((path) => `${server.url}${path}`));
      // Every link leads somewhere that answers.
      for (const link of links) expect((await fetch(link)).status, link).toBe(200);

      expect(await page.$$eval('ol.steps h3', (titles) => titles.map((title) => title.textContent))).toEqual([
        'Create a workspace',
        'Create keys',
        'Send an event',
      ]);
      const commands = await page.$$eval('[data-copy]', (blocks) => blocks.map((block) => block.textContent ?? ''));
      expect(commands.some((command) => command.includes('telemetry workspaces create "My app"'))).toBe(true);
      expect(commands.some((command) => command.includes(`curl -X POST ${server.url}/api/admin/workspaces`))).toBe(true);
      expect(commands.some((command) => command.includes('telemetry keys create --kind ingest --workspace "$WORKSPACE_ID"'))).toBe(true);
      expect(commands.some((command) => command.includes(`curl -X POST ${server.url}/api/admin/keys`))).toBe(true);
      const sendEvent = commands.find((command) => command.includes(`${server.url}/api/events`));
      expect(sendEvent).toBeDefined();

      // The copy button puts the exact command on the clipboard.
      const lastCommand = page.locator('.command').last();
      await lastCommand.locator('button.copy').click();
      await expect.poll(() => lastCommand.locator('button.copy').textContent()).toBe('Copied');
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(sendEvent);

      await page.screenshot({ path: new URL('front-page.png', ARTIFACTS).pathname, fullPage: true });
      expect(problems).toEqual([]);
      await context.close();
    });

    it('fits a phone screen without sideways scrolling of the page', async () => {
      const context = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
      const page = await context.newPage();
      await page.goto(`${server.url}/`);
      await page.waitForSelector('button.copy');
      const widths = await page.evaluate(() => ({ scroll: document.scrollingElement?.scrollWidth ?? 0, viewport: window.innerWidth }));
      expect(widths.scroll).toBeLessThanOrEqual(widths.viewport);
      await page.screenshot({ path: new URL('front-page-phone.png', ARTIFACTS).pathname, fullPage: true });
      await context.close();
    });
  });
});

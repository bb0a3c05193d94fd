import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../client/index.ts';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { ensureDailyPartitions } from '../db/partitions.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import type { Services } from '../server/trpc/context.ts';
import type { ServiceLifecycle } from '../server/services/index.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, createTestWorkspace, startTestServer, testConfig, type TestKeys, type TestServer, testWiring } from './support/app.ts';
import { CHROMIUM_PATH, hasChromium, launchChromium } from './support/chromium.ts';

/**
 * The dashboard in a real Chromium (Debian's, never a downloaded one) against a real server:
 * seeded events with known counts must appear as exact numbers in the page, a new event in the
 * live tail, the open workspace by its name, an empty workspace with the command for a first
 * event, and a phone-sized screen must not scroll sideways.
 */
const ARTIFACTS = new URL('./artifacts/', import.meta.url);
const databaseKind = process.env.TEST_DB_KIND ?? 'pglite';
const HOUR_MS = 3_600_000;

// The seed, oldest first: 2 events an hour for 18 hours, a spike of 40 two hours ago (the one
// anomaly), 2 events in the last full hour. Names are handed out in this order, so every
// signup.start comes before the signup.done of the same user.
const NAME_COUNTS = [
  ['page.view', 30],
  ['button.click', 20],
  ['signup.start', 10],
  ['signup.done', 4],
  ['LCP', 8],
  ['INP', 6],
] as const;
const TOTAL_EVENTS = NAME_COUNTS.reduce((sum, [, count]) => sum + count, 0);
const LCP_VALUES = [1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700];
/** Events the live-tail checks ingest while the page is open, on top of the seed. */
const LIVE_EVENTS = 2;

function seedTimes(now: Date): Date[] {
  const hourStart = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS;
  const times: number[] = [];
  for (let hoursBack = 20; hoursBack >= 3; hoursBack -= 1)
    times.push(hourStart - hoursBack * HOUR_MS + 10 * 60_000, hourStart - hoursBack * HOUR_MS + 40 * 60_000);
  for (let minute = 0; minute < 40; minute += 1) times.push(hourStart - 2 * HOUR_MS + minute * 60_000 + 5_000);
  times.push(hourStart - HOUR_MS + 10 * 60_000, hourStart - HOUR_MS + 40 * 60_000);
  return times.map((time) => new Date(time));
}

function seedEvents(workspaceId: string, users: readonly string[], now: Date): EventRow[] {
  const names = NAME_COUNTS.flatMap(([name, count]) => Array.from({ length: count }, () => name));
  const times = seedTimes(now);
  if (times.length !== names.length) throw new Error(`seed has ${times.length} times for ${names.length} events`);
  const ordinal = new Map<string, number>();
  return names.map((name, index) => {
    // The nth event of each name, so funnel users and metric values are known.
    const nth = ordinal.get(name) ?? 0;
    ordinal.set(name, nth + 1);
    const createdAt = times[index]!;
    const perf = name === 'LCP' || name === 'INP';
    return {
      id: randomUUID(),
      workspaceId,
      userId: name.startsWith('signup.') ? users[nth]! : users[index % users.length]!,
      source: index % 3 === 0 ? 'mobile' : 'web',
      eventType: perf ? 'perf.metric' : 'ui.interaction',
      name,
      targetType: null,
      targetId: null,
      metadata: name === 'LCP' ? { value: LCP_VALUES[nth]!, unit: 'ms' } : name === 'INP' ? { value: 80 + nth * 10, unit: 'ms' } : null,
      createdAt,
      receivedAt: createdAt,
    };
  });
}

describe.skipIf(!hasChromium)(hasChromium ? 'dashboard' : `dashboard (skipped: no Chromium at ${CHROMIUM_PATH}; install Debian's chromium package)`, () => {
  let testDb: TestDatabase;
  let keys: TestKeys;
  let services: Services;
  let lifecycle: ServiceLifecycle | undefined;
  let server: TestServer;
  let browser: Browser;
  let readKey: string;
  let workspaceId: string;
  const WORKSPACE_NAME = 'Storefront (web)';
  /** Content Security Policy violations and uncaught page errors, from every page. */
  const pageProblems: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const now = new Date();
    const [database, launched] = await Promise.all([openTestDatabase(), launchChromium()]);
    testDb = database;
    browser = launched;
    await ensureDailyPartitions(testDb.db, { from: new Date(now.getTime() - 2 * 86_400_000), to: new Date(now.getTime() + 86_400_000) });
    keys = await createTestKeys(testDb.db);
    workspaceId = await createTestWorkspace(testDb.db, WORKSPACE_NAME);
    readKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId })).key;
    const users = Array.from({ length: 10 }, () => randomUUID());
    const writer = createEventWriter(testDb.db);
    await writer.write(seedEvents(workspaceId, users, now));
    // Another workspace's events must never show.
    await writer.write(seedEvents(await createTestWorkspace(testDb.db, 'Another app'), users, now).slice(0, 12));

    const config = testConfig();
    ({ services, lifecycle } = testWiring(testDb.db, { config }));
    server = await startTestServer(testDb.db, { config, services });
  });

  afterAll(async () => {
    await browser?.close();
    lifecycle?.endLiveStreams();
    await server?.close();
    await lifecycle?.close();
    await testDb?.drop();
  });

  async function openPage(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) pageProblems.push(`CSP: ${message.text()}`);
    });
    await page.goto(`${server.url}/dashboard`);
    return page;
  }

  /** Signs in; with an admin key, then picks the workspace by its name from the list offered. */
  async function signIn(page: Page, apiKey: string, workspaceName?: string) {
    await page.fill('#api-key', apiKey);
    await page.click('#sign-in-form button[type=submit]');
    if (workspaceName) {
      await page.waitForSelector('#workspace-select', { state: 'visible' });
      await page.selectOption('#workspace-select', { label: workspaceName });
      await page.click('#sign-in-form button[type=submit]');
    }
  }

  const waitForData = (page: Page) => page.waitForSelector('body[data-loading="false"]', { timeout: 15_000 });

  /** The values in a chart's legend, time cell first. */
  const legendValues = (page: Page, chart: string) => page.$$eval(`${chart} .u-legend .u-value`, (cells) => cells.map((cell) => cell.textContent ?? ''));

  const tableRows = (page: Page, selector: string) =>
    page.$$eval(`${selector} tbody tr`, (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent?.trim() ?? '')));

  it('serves its page and bundled assets from this service, with a strict CSP and cacheable versioned assets', async () => {
    const page = await fetch(`${server.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await page.text();
    const scriptUrl = /<script type="module" src="([^"]+)"/.exec(html)?.[1];
    const stylesheetUrl = /<link rel="stylesheet" href="([^"]+)"/.exec(html)?.[1];
    expect(scriptUrl).toMatch(/^\/dashboard\/app\.js\?v=/);
    expect(stylesheetUrl).toMatch(/^\/dashboard\/app\.css\?v=/);

    const script = await fetch(`${server.url}${scriptUrl}`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('cache-control')).toContain('immutable');
    expect((await script.text()).length).toBeGreaterThan(10_000);
    const stylesheet = await fetch(`${server.url}${stylesheetUrl}`);
    expect(stylesheet.headers.get('content-type')).toBe('text/css; charset=utf-8');
    // uPlot's stylesheet is bundled in, not fetched from a CDN.
    expect(await stylesheet.text()).toContain('.uplot');
    const revalidated = await fetch(`${server.url}${scriptUrl}`, { headers: { 'if-none-match': script.headers.get('etag') ?? '' } });
    expect(revalidated.status).toBe(304);
    const withSlash = await fetch(`${server.url}/dashboard/`, { redirect: 'manual' });
    expect(withSlash.status).toBe(301);
    expect(withSlash.headers.get('location')).toBe('/dashboard');
  });

  it('shows the seeded counts, top events, percentiles, anomaly and funnel, and tails new events live', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const requestedHosts = new Set<string>();
    context.on('request', (request) => requestedHosts.add(new URL(request.url()).host));
    const page = await openPage(context);

    // A key the service does not know keeps the sign-in form up, with the reason.
    await signIn(page, 'tlm_read_not-a-real-key-000000000000000000');
    await expect.poll(() => page.textContent('#sign-in-error')).toContain('not accepted');
    await page.screenshot({ path: new URL(`dashboard-sign-in-${databaseKind}.png`, ARTIFACTS).pathname });

    await signIn(page, readKey);
    await waitForData(page);
    // The read key opens its own workspace, named in the header; it has events, so no first-event help.
    await expect.poll(() => page.textContent('#workspace-name')).toBe(WORKSPACE_NAME);
    expect(await page.isVisible('#first-event')).toBe(false);
    expect(await page.getAttribute('#volume-total', 'data-value')).toBe(String(TOTAL_EVENTS));
    // Legends show figures, not uPlot's "--" placeholders: the range, then each series' total or overall value.
    expect(await legendValues(page, '#volume-chart')).toEqual(['last 24 hours', `${TOTAL_EVENTS} in all`]);
    expect(await legendValues(page, '#perf-chart')).toEqual([
      'last 24 hours',
      '1,350 overall',
      expect.stringMatching(/^1,\d{3}(\.\d)? overall$/),
      expect.stringMatching(/^1,\d{3}(\.\d)? overall$/),
    ]);
    // The seed is under a day old: too little history to judge any hour, and the page says so
    // plainly instead of flagging (or shading) ordinary hours.
    expect(await page.getAttribute('#anomaly-note', 'data-status')).toBe('insufficient_history');
    expect(await page.textContent('#anomaly-note')).toContain('Not enough history to flag anomalous hours');
    expect(await page.isVisible('#anomaly-figure')).toBe(false);
    expect(await page.locator('#volume-chart canvas').count()).toBeGreaterThan(0);
    expect(await tableRows(page, '#top-table')).toEqual(
      [...NAME_COUNTS].sort((a, b) => b[1] - a[1]).map(([name, count]) => [name, String(count), expect.any(String)]),
    );

    // The busiest perf.metric name is chosen: LCP, whose 8 values have a median of 1350.
    expect(await page.inputValue('#perf-metric')).toBe('LCP');
    expect(await page.getAttribute('#perf-table [data-field=count]', 'data-value')).toBe('8');
    expect(await page.getAttribute('#perf-table [data-field=p50]', 'data-value')).toBe('1350');

    // The funnel starts empty, with a hint suggesting the range's top names, and no table.
    expect(await page.inputValue('#funnel-steps')).toBe('');
    expect(await page.isVisible('#funnel-hint')).toBe(true);
    expect(await page.textContent('#funnel-example')).toBe('page.view, button.click, signup.start');
    expect(await page.isVisible('#funnel-table')).toBe(false);
    await page.fill('#funnel-steps', 'signup.start, signup.done');
    await page.click('#funnel-form button[type=submit]');
    await expect.poll(() => page.$$eval('#funnel-table .count', (cells) => cells.map((cell) => cell.getAttribute('data-value')))).toEqual(['10', '4']);
    expect(await page.isVisible('#funnel-hint')).toBe(false);

    // Split by name: one column per name in the data table, the same total.
    await page.selectOption('#volume-breakdown', 'name');
    await expect
      .poll(() =>
        page.$$eval('#volume-table thead th', (cells) =>
          cells
            .map((cell) => cell.textContent)
            .slice(1)
            .sort(),
        ),
      )
      .toEqual(NAME_COUNTS.map(([name]) => name).sort());

    // Live: an event ingested while the page is open appears in the tail.
    await expect.poll(() => services.live.openStreams(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => page.textContent('#live-status')).toBe('live');
    const ingest = createTelemetryClient({ url: server.url, apiKey: keys.ingest });
    await ingest.telemetry.ingest.mutate({ workspaceId, source: 'web', eventType: 'ui.interaction', name: 'live.tail.check' });
    await page.waitForSelector('#live-list li:has-text("live.tail.check")', { timeout: 10_000 });
    expect(await page.textContent('#live-count')).toBe('1');
    // Paused, the stream is closed; resumed, it replays what was committed meanwhile.
    await page.click('#live-pause');
    await expect.poll(() => services.live.openStreams()).toBe(0);
    await ingest.telemetry.ingest.mutate({ workspaceId, source: 'web', eventType: 'ui.interaction', name: 'while.paused' });
    await page.click('#live-pause');
    await page.waitForSelector('#live-list li:has-text("while.paused")', { timeout: 10_000 });
    expect(await page.$$eval('#live-list .live-name', (names) => names.map((name) => name.textContent))).toEqual(['while.paused', 'live.tail.check']);

    await page.screenshot({ path: new URL(`dashboard-desktop-${databaseKind}.png`, ARTIFACTS).pathname, fullPage: true });

    // Every range loads without an error; the longer ones hold the whole seed and the live event.
    for (const range of ['7d', '30d', '1h']) {
      await page.click(`[data-range="${range}"]`);
      await waitForData(page);
      expect(await page.isVisible('#error-banner'), `error banner for ${range}: ${await page.textContent('#error-banner')}`).toBe(false);
      if (range !== '1h') expect(await page.getAttribute('#volume-total', 'data-value'), range).toBe(String(TOTAL_EVENTS + LIVE_EVENTS));
      if (range === '7d') {
        // Hourly bars, labelled once per day ("Mon 24"): 7 or 8 local midnights fall in the window.
        expect(await page.textContent('#volume-bucket')).toBe('per hour');
        const ticks = (await page.getAttribute('#volume-chart .uplot', 'data-x-ticks'))?.split('|') ?? [];
        expect(ticks.length).toBeGreaterThanOrEqual(7);
        expect(ticks.length).toBeLessThanOrEqual(8);
        for (const tick of ticks) expect(tick).toMatch(/^\S+ \d{1,2}$|^\d{1,2} \S+$/);
        // Split by name (chosen above): one total per name, adding up to the range's total.
        const [rangeCell, ...totals] = await legendValues(page, '#volume-chart');
        expect(rangeCell).toBe('last 7 days');
        for (const total of totals) expect(total).toMatch(/^\d+ in all$/);
        expect(totals.reduce((sum, total) => sum + Number.parseInt(total, 10), 0)).toBe(TOTAL_EVENTS + LIVE_EVENTS);
        await page.screenshot({ path: new URL(`dashboard-7d-${databaseKind}.png`, ARTIFACTS).pathname });
      }
    }
    // The per-minute chart does not speak of hours.
    expect(await page.isVisible('#anomaly-figure')).toBe(false);
    expect(await page.textContent('#anomaly-note')).toContain('choose 24 h or longer');

    // Nothing was loaded from anywhere but this service.
    expect([...requestedHosts]).toEqual([new URL(server.url).host]);
    await context.close();
  });

  it('sends a key revoked while the page is open back to the sign-in form at once (its live stream ends), with the reason', async () => {
    const revocable = await services.keys.createKey({ kind: 'read', workspaceId });
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const page = await openPage(context);
    await signIn(page, revocable.key);
    await waitForData(page);
    await expect.poll(() => page.textContent('#live-status')).toBe('live');
    await services.keys.revokeKey(revocable.id, null);
    // No refresh needed: the revocation ends the page's live stream with 401 at once.
    await page.waitForSelector('#sign-in-form', { state: 'visible' });
    expect(await page.textContent('#sign-in-error')).toContain('not accepted');
    // The rejected key is forgotten: a reload does not try it again.
    await page.reload();
    expect(await page.isVisible('#dashboard-view')).toBe(false);
    await context.close();
  });

  it('offers an unbound admin key the workspaces by name, and names the one picked in the header', async () => {
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const page = await openPage(context);
    await page.fill('#api-key', keys.admin);
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#workspace-select', { state: 'visible' });
    // No UUID to type: the names, sorted, each carrying its workspace's id.
    const options = await page.$$eval('#workspace-select option', (items) =>
      items.map((item) => ({ name: item.textContent, id: (item as HTMLOptionElement).value })),
    );
    expect(options.map((option) => option.name)).toEqual(expect.arrayContaining(['Another app', WORKSPACE_NAME]));
    expect(options.map((option) => option.name)).toEqual([...options.map((option) => option.name)].sort((a, b) => a!.localeCompare(b!)));
    expect(options.find((option) => option.name === WORKSPACE_NAME)?.id).toBe(workspaceId);
    await page.screenshot({ path: new URL(`dashboard-picker-${databaseKind}.png`, ARTIFACTS).pathname });
    await page.selectOption('#workspace-select', { label: WORKSPACE_NAME });
    await page.click('#sign-in-form button[type=submit]');
    await waitForData(page);
    // Several workspaces: the header offers them, the open one chosen.
    await page.waitForSelector('#workspace-switch', { state: 'visible' });
    expect(await page.$eval('#workspace-switch', (select) => (select as HTMLSelectElement).selectedOptions[0]?.textContent)).toBe(WORKSPACE_NAME);
    expect(Number(await page.getAttribute('#volume-total', 'data-value'))).toBeGreaterThanOrEqual(TOTAL_EVENTS);

    // Switching reads the other workspace, whose seed is 12 events, without signing in again.
    await page.selectOption('#workspace-switch', { label: 'Another app' });
    await expect.poll(() => page.getAttribute('#volume-total', 'data-value')).toBe('12');
    await waitForData(page);
    expect(await page.$eval('#workspace-switch', (select) => (select as HTMLSelectElement).selectedOptions[0]?.textContent)).toBe('Another app');
    await context.close();
  });

  it("shows an empty workspace how to send its first event, with this service's URL and the workspace, and the command works", async () => {
    const emptyId = await createTestWorkspace(testDb.db, 'Empty app');
    const emptyReadKey = (await services.keys.createKey({ kind: 'read', workspaceId: emptyId })).key;
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    const page = await openPage(context);
    await signIn(page, emptyReadKey);
    await waitForData(page);
    // A read key's workspace is named, not offered as a choice.
    await expect.poll(() => page.textContent('#workspace-name')).toBe('Empty app');
    expect(await page.isVisible('#workspace-switch')).toBe(false);
    expect(await page.isVisible('#first-event')).toBe(true);
    const command = (await page.textContent('#first-event-curl')) ?? '';
    expect(command).toContain(`curl -X POST ${server.url}/api/events`);
    expect(command).toContain(emptyId);
    expect(command).toContain('$INGEST_KEY');
    expect(await page.textContent('#first-event')).toContain(`--workspace ${emptyId}`);
    await page.click('#first-event-copy');
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(command);
    // The funnel has nothing to guess from: it asks for steps.
    expect(await page.isVisible('#funnel-hint')).toBe(true);
    await page.screenshot({ path: new URL(`dashboard-empty-${databaseKind}.png`, ARTIFACTS).pathname, fullPage: true });

    // Run as shown, with an ingest key of the workspace: the event arrives, and the help goes away.
    const ingestKey = (await services.keys.createKey({ kind: 'ingest', workspaceId: emptyId })).key;
    // Asynchronously: the server answering it runs in this process.
    const sent = await promisify(execFile)('sh', ['-c', `${command} --silent --show-error --max-time 10`], { env: { ...process.env, INGEST_KEY: ingestKey } });
    expect(JSON.parse(sent.stdout)).toMatchObject({ id: expect.any(String) });
    await page.waitForSelector('#live-list li:has-text("hello.world")', { timeout: 10_000 });
    await page.click('#refresh');
    await page.waitForSelector('#first-event', { state: 'hidden' });
    await context.close();
  });

  it('shows what the ingest adapters refused in the workspace, and no such card where nothing was refused', async () => {
    const workspaceId = await createTestWorkspace(testDb.db, 'Instrumented app');
    const [readKey, ingestKey] = await Promise.all([
      services.keys.createKey({ kind: 'read', workspaceId }),
      services.keys.createKey({ kind: 'ingest', workspaceId }),
    ]);
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const page = await openPage(context);
    await signIn(page, readKey.key);
    await waitForData(page);
    expect(await page.isVisible('#rejections')).toBe(false);

    // An OpenTelemetry exporter sends a record from 1970, which the service refuses.
    const exported = await fetch(`${server.url}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey.key}` },
      body: JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: '1000000000', body: { stringValue: 'from 1970' } }] }] }] }),
    });
    expect(exported.status).toBe(200);
    await page.click('#refresh');
    await page.waitForSelector('#rejections', { state: 'visible' });
    expect(await page.textContent('#rejections-totals')).toMatch(/otlp\s*created_at_out_of_range\s*1/);
    await page.click('#rejections summary');
    expect(await page.textContent('#rejections-latest')).toContain('createdAt: createdAt is more than');
    await context.close();
  });

  it('fits a 375 px phone screen without anything cut off, signed in with an admin key and a picked workspace', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await openPage(context);
    const overflow = () =>
      page.evaluate(() => {
        const width = window.innerWidth;
        // Inside a sideways-scrolling box (tables, commands) content may be wider: the box is what must fit.
        const scrolls = (element: Element | null): boolean =>
          element !== null && element !== document.body && (['auto', 'scroll'].includes(getComputedStyle(element).overflowX) || scrolls(element.parentElement));
        const cutOff = [...document.querySelectorAll('body *')]
          .filter((element) => element.getClientRects().length > 0 && !scrolls(element.parentElement))
          .filter((element) => element.getBoundingClientRect().right > width + 0.5)
          .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}.${[...element.classList].join('.')}`);
        // The tables on screen fit too: none of them needs scrolling to show a column.
        const scrolledTables = [...document.querySelectorAll('.table-scroll')]
          .filter((box) => box.getClientRects().length > 0 && box.scrollWidth > box.clientWidth + 1)
          .map((box) => box.querySelector('table')?.id ?? '?');
        return { viewport: width, scrollWidth: document.scrollingElement?.scrollWidth ?? 0, cutOff: [...cutOff, ...scrolledTables] };
      });
    expect((await overflow()).cutOff).toEqual([]);
    await signIn(page, keys.admin, WORKSPACE_NAME);
    await waitForData(page);
    // The seed plus the events the first browser test sent through the live tail.
    expect(await page.getAttribute('#volume-total', 'data-value')).toBe(String(TOTAL_EVENTS + LIVE_EVENTS));
    await page.fill('#funnel-steps', 'signup.start, signup.done');
    await page.click('#funnel-form button[type=submit]');
    await page.waitForSelector('#funnel-table .count');

    for (const range of ['24h', '7d']) {
      await page.click(`[data-range="${range}"]`);
      await waitForData(page);
      const widths = await overflow();
      expect(widths.scrollWidth, range).toBeLessThanOrEqual(widths.viewport);
      expect(widths.cutOff, range).toEqual([]);
    }
    await page.screenshot({ path: new URL(`dashboard-phone-${databaseKind}.png`, ARTIFACTS).pathname, fullPage: true });

    // Signing out forgets the key: a reload shows the sign-in form again.
    await page.click('#sign-out');
    await page.reload();
    expect(await page.isVisible('#sign-in-form')).toBe(true);
    await context.close();
  });

  it('tails live events signed in with an admin key, which never appears in a URL the page requests', async () => {
    const elsewhere = await createTestWorkspace(testDb.db, 'Elsewhere');
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const urls: string[] = [];
    context.on('request', (request) => urls.push(request.url()));
    const page = await openPage(context);
    await signIn(page, keys.admin, 'Elsewhere');
    await waitForData(page);
    await expect.poll(() => page.textContent('#live-status')).toBe('live');
    await createTelemetryClient({ url: server.url, apiKey: keys.ingest }).telemetry.ingest.mutate({
      workspaceId: elsewhere,
      source: 'web',
      eventType: 'ui.interaction',
      name: 'admin.tail.check',
    });
    await page.waitForSelector('#live-list li:has-text("admin.tail.check")', { timeout: 10_000 });

    const liveUrls = urls.filter((url) => new URL(url).pathname === '/trpc/telemetry.live');
    expect(liveUrls.length).toBeGreaterThan(0);
    for (const url of liveUrls) expect(new URL(url).searchParams.get('connectionParams')).toMatch(/^\{"ticket":"tlmt_/);
    for (const url of urls) expect(decodeURIComponent(url)).not.toContain(keys.admin);
    await context.close();
  });

  it('counts and shades the one anomalous hour of a workspace with four weeks of history', async () => {
    // Two events an hour for four weeks, then a spike of 40 two hours ago.
    const seasoned = await createTestWorkspace(testDb.db, 'Seasoned');
    const hourStart = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const times = Array.from({ length: 28 * 24 }, (_, i) => hourStart - (28 * 24 - i) * HOUR_MS).flatMap((hour) =>
      hour === hourStart - 2 * HOUR_MS ? Array.from({ length: 40 }, (_, m) => hour + m * 60_000) : [hour + 10 * 60_000, hour + 40 * 60_000],
    );
    const events: EventRow[] = times.map((time) => ({
      id: randomUUID(),
      workspaceId: seasoned,
      userId: null,
      source: 'web',
      eventType: 'ui.interaction',
      name: 'page.view',
      targetType: null,
      targetId: null,
      metadata: null,
      createdAt: new Date(time),
      receivedAt: new Date(time),
    }));
    const writer = createEventWriter(testDb.db);
    for (let i = 0; i < events.length; i += 500) await writer.write(events.slice(i, i + 500));
    const seasonedKey = (await createKeyService({ db: testDb.db }).createKey({ kind: 'read', workspaceId: seasoned })).key;

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await openPage(context);
    await signIn(page, seasonedKey);
    await waitForData(page);
    expect(await page.getAttribute('#anomaly-count', 'data-value')).toBe('1');
    expect(await page.textContent('#anomaly-figure')).toContain('1 anomalous hour');
    expect(await page.isVisible('#anomaly-note')).toBe(false);
    await context.close();
  });

  it('raised no Content Security Policy violation or script error on any page', () => {
    expect(pageProblems).toEqual([]);
  });
});

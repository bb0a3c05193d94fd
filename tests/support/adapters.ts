import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import type { Database } from '../../db/database.ts';
import { createApp } from '../../server/app.ts';
import type { Config } from '../../server/config.ts';
import { databaseUnavailable } from '../../server/errors.ts';
import { foreignUserId, ID_NAMESPACES, uuidv5 } from '../../server/ingest-adapters/deterministic-ids.ts';
import { createLogger } from '../../server/logger.ts';
import { createKeyService } from '../../server/services/keys/keys.ts';
import type { Services } from '../../server/trpc/context.ts';
import { waitUntil } from '../faults/support/wait.ts';
import { createTestWorkspace, startTestServer, testConfig, testServices, type TestServer } from './app.ts';
import { openTestDatabase, type TestDatabase } from './database.ts';
import { countEventsWithId, storedEvents } from './events.ts';

/** The HTTP app in process, silent: adapter tests send it requests without a port. */
export function silentApp(db: Database, config: Config, services: Services): ReturnType<typeof createApp> {
  return createApp({ db, config, logger: createLogger('silent'), services });
}

export interface AdapterApp {
  testDb: TestDatabase;
  app: ReturnType<typeof createApp>;
  services: Services;
}

/** A test file's own database with the real services and app on `config`, which each adapter file tunes (body and batch limits). */
export async function openAdapterApp(config: Config): Promise<AdapterApp> {
  const testDb = await openTestDatabase();
  const services = testServices(testDb.db, { config });
  return { testDb, services, app: silentApp(testDb.db, config, services) };
}

/** The services with only `ingestBatch` replaced, so a test can make storing fail while everything else stays real. */
export function withIngestBatch(services: Services, ingestBatch: Services['ingestor']['ingestBatch']): Services {
  return { ...services, ingestor: { ...services.ingestor, ingestBatch } };
}

/** The app whose every ingest call fails with `error`: how an adapter answers a database outage or an internal fault. */
export function appFailingToIngest(db: Database, config: Config, services: Services, error: Error): ReturnType<typeof createApp> {
  return silentApp(
    db,
    config,
    withIngestBatch(services, () => Promise.reject(error)),
  );
}

/** The error the ingestor throws when the database cannot be reached, which adapters answer with 503 and Retry-After. */
export function databaseOutage(message = 'connection refused'): Error {
  return databaseUnavailable(new Error(message));
}

/** A new workspace and one key of `kind` bound to it: adapters store into the key's workspace, so each test gets its own. */
export async function createWorkspaceWithKey(
  db: Database,
  kind: 'ingest' | 'read' = 'ingest',
  rateLimit?: { eventsPerSecond: number; burst: number },
): Promise<{ workspaceId: string; key: string }> {
  const workspaceId = await createTestWorkspace(db);
  const { key } = await createKeyService({ db }).createKey({ kind, workspaceId, ...(rateLimit && { rateLimit }) });
  return { workspaceId, key };
}

/** A new workspace with an ingest key to send with and a read key to read its refusals back. */
export async function createWorkspaceWithIngestAndReadKeys(db: Database): Promise<{ workspaceId: string; ingestKey: string; readKey: string }> {
  const workspaceId = await createTestWorkspace(db);
  const keys = createKeyService({ db });
  const [ingest, read] = await Promise.all([keys.createKey({ kind: 'ingest', workspaceId }), keys.createKey({ kind: 'read', workspaceId })]);
  return { workspaceId, ingestKey: ingest.key, readKey: read.key };
}

/** How one ingest call fails: before storing anything (an outage), or after storing (the answer is lost). */
export type Outage = 'before' | 'after';

/**
 * Makes the next ingest calls fail as a database would, so SDK tests prove a retried request
 * stores nothing twice; counts every call, failed or not.
 */
export interface OutageSwitch {
  /** The next ingest calls fail in this order, one outage each; later calls pass. */
  failNext(...outages: Outage[]): void;
  /** No more planned failures (a test that did not use up its outages leaves none behind). */
  clear(): void;
  /** Ingest calls made so far. */
  readonly calls: number;
}

/** The real services whose ingestor fails as the returned switch says. */
export function servicesWithOutageSwitch(db: Database, config: Config): { services: Services; outages: OutageSwitch } {
  const real = testServices(db, { config });
  const planned: Outage[] = [];
  let calls = 0;
  const services = withIngestBatch(real, async (events, options) => {
    calls += 1;
    const outage = planned.shift();
    if (outage === 'before') throw databaseOutage();
    const result = await real.ingestor.ingestBatch(events, options);
    if (outage === 'after') throw databaseOutage('connection lost before the answer');
    return result;
  });
  const outages: OutageSwitch = {
    failNext: (...next) => void planned.push(...next),
    clear: () => void planned.splice(0),
    get calls() {
      return calls;
    },
  };
  return { services, outages };
}

export interface ServiceWithOutageSwitch {
  testDb: TestDatabase;
  server: TestServer;
  outages: OutageSwitch;
  /** Stops the server, then drops the database. */
  close(): Promise<void>;
}

/** A test file's own database and the real service listening on a port, as SDKs need it, with its outage switch. */
export async function startServiceWithOutageSwitch(): Promise<ServiceWithOutageSwitch> {
  const testDb = await openTestDatabase();
  const config = testConfig();
  const { services, outages } = servicesWithOutageSwitch(testDb.db, config);
  const server = await startTestServer(testDb.db, { config, services });
  return {
    testDb,
    server,
    outages,
    close: async () => {
      await server.close();
      await testDb.drop();
    },
  };
}

export interface Listening {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  close(): void;
}

/** Any fetch handler (a test page's server, or the app with test pages mounted) on an ephemeral port, for a browser to load. */
export async function listen(fetch: Parameters<typeof serve>[0]['fetch']): Promise<Listening> {
  const server = serve({ fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () => {
      server.close();
      // A browser's keep-alive connections would hold the server open.
      if ('closeAllConnections' in server) server.closeAllConnections();
    },
  };
}

/** Waits until a workspace holds at least `count` events (SDKs send in the background), then reads them all. */
export async function waitForStored(db: Database, workspaceId: string, count: number) {
  await waitUntil(async () => (await storedEvents(db, workspaceId)).length >= count, `${count} stored events`);
  return storedEvents(db, workspaceId);
}

export interface RecordingPage {
  context: BrowserContext;
  page: Page;
  /** Errors thrown on the page and not caught there. */
  pageErrors: Error[];
  /** Console errors and uncaught errors' messages, in order: an SDK that fails in a page logs rather than throws. */
  errors: string[];
}

/** A fresh browser context (no cookies or storage from another test) and its page, recording what goes wrong on it. */
export async function openRecordingPage(browser: Browser): Promise<RecordingPage> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors: Error[] = [];
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => {
    pageErrors.push(error);
    errors.push(error.message);
  });
  return { context, page, pageErrors, errors };
}

/** What reconciling needs of a Segment message an SDK sent: its id, when it happened, and whose it is. */
export interface SentSegmentMessage {
  messageId: string;
  timestamp: string;
  userId?: string | null;
  anonymousId?: string;
}

/**
 * Every Segment message an SDK sent (each with the sentAt of its request) is stored exactly once, in
 * the key's workspace, from `source`, with the metadata `metadataOf` expects, at its skew-corrected
 * time; both Segment SDKs are held to this, so a retry that stored twice fails the same way in each.
 */
export async function expectSegmentMessagesStoredOnce<M extends SentSegmentMessage>(
  db: Database,
  workspaceId: string,
  messages: Map<string, { message: M; sentAt: string }>,
  source: string,
  metadataOf: (message: M, messageId: string) => Record<string, unknown>,
) {
  const stored = await storedEvents(db, workspaceId);
  expect(stored).toHaveLength(messages.size);
  for (const [messageId, { message, sentAt }] of messages) {
    const id = uuidv5(ID_NAMESPACES.segmentMessage, `${workspaceId}\n${messageId}`);
    const event = stored.find((candidate) => candidate.id === id);
    expect(event, messageId).toBeDefined();
    expect(await countEventsWithId(db, id)).toBe(1);
    expect(event).toMatchObject({ workspaceId, source, userId: foreignUserId(workspaceId, message.userId ?? message.anonymousId) });
    expect(event?.metadata).toMatchObject(metadataOf(message, messageId));
    // receivedAt - (sentAt - timestamp): one clock here, so at least the timestamp and at most the transit later.
    const happened = Date.parse(message.timestamp);
    expect(event!.createdAt.getTime()).toBeGreaterThanOrEqual(happened);
    expect(event!.createdAt.getTime()).toBeLessThanOrEqual(happened + (event!.receivedAt.getTime() - Date.parse(sentAt)));
  }
  return stored;
}

import { serve } from '@hono/node-server';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Database } from '../../db/database.ts';
import { createApp } from '../../server/app.ts';
import { loadConfig, type Config } from '../../server/config.ts';
import { createLogger, type Logger } from '../../server/logger.ts';
import { wireServices, type WiringDeps } from '../../server/composition.ts';
import { createMetrics } from '../../server/metrics.ts';
import type { ServiceLifecycle } from '../../server/services/index.ts';
import type { Services } from '../../server/trpc/context.ts';
import { createContextInner } from '../../server/trpc/context.ts';
import { createCallerFactory } from '../../server/trpc/init.ts';
import { appRouter } from '../../server/routers/index.ts';
import { createKeyService } from '../../server/services/keys/keys.ts';
import { createWorkspaceService } from '../../server/services/workspaces/workspaces.ts';
import { workspaces } from '../../db/schema.ts';
import { maintainPartitions } from '../../server/partition-maintenance.ts';
import { openTestDatabase, type TestDatabase } from './database.ts';

export function testConfig(overrides: Partial<Record<string, string>> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', ...overrides });
}

export interface LogRecord {
  level: string;
  line: string;
}

/** A logger that keeps every line, so tests can assert on what was (or was not) logged. */
export function capturingLogger(): { logger: Logger; lines: LogRecord[] } {
  const lines: LogRecord[] = [];
  const logger = createLogger('debug', {}, (line) => lines.push({ level: (JSON.parse(line) as { level: string }).level, line }));
  return { logger, lines };
}

const createCaller = createCallerFactory(appRouter);

/**
 * The service verbs as the service wires them without Redis (memory bus and rate limits), silent,
 * with parts replaced or added where a test needs them (a bus, a limiter, a read pool, a clock).
 */
export function testServices(db: Database, options: TestWiringOptions = {}): Services {
  return testWiring(db, options).services;
}

type TestWiringOptions = { config?: Config; logger?: Logger } & Pick<WiringDeps, 'readReplica' | 'readPool' | 'now'> & NonNullable<WiringDeps['replace']>;

/** testServices with their lifecycle, for tests that end live streams and close what the services hold. */
export function testWiring(db: Database, options: TestWiringOptions = {}): { services: Services; lifecycle: ServiceLifecycle } {
  const { config = testConfig(), logger = createLogger('silent'), rateLimiter, bus, streamSlots, ...rest } = options;
  const replace = { ...(rateLimiter && { rateLimiter }), ...(bus && { bus }), ...(streamSlots && { streamSlots }) };
  return wireServices({ db, config, logger, metrics: createMetrics({ defaultMetrics: false }), replace, ...rest });
}

/** Calls procedures directly, without HTTP (the inner context). */
export function procedureCaller(db: Database, options: { apiKey?: string; config?: Config; services?: Services; logger?: Logger; now?: () => Date } = {}) {
  const config = options.config ?? testConfig();
  const services = options.services ?? testServices(db, { config, now: options.now });
  return createCaller(createContextInner({ config, services, logger: options.logger ?? createLogger('silent'), requestId: 'test', apiKey: options.apiKey }));
}

export interface TestServer {
  url: string;
  close(): Promise<void>;
}

/** The real HTTP app on an ephemeral port. */
export async function startTestServer(db: Database, options: { config?: Config; services?: Services; logger?: Logger } = {}): Promise<TestServer> {
  const config = options.config ?? testConfig();
  const logger = options.logger ?? createLogger('silent');
  const app = createApp({ db, config, logger, services: options.services ?? testServices(db, { config, logger }) });
  const server = serve({
    fetch: app.fetch,
    port: 0,
    hostname: '127.0.0.1',
    serverOptions: { requestTimeout: config.requestTimeoutMs, headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: 200 },
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open live streams would hold the server open until their maximum duration.
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}

/** The real services with some verbs replaced (to force failures). */
export function servicesWith(db: Database, overrides: Partial<Services>, config: Config = testConfig()): Services {
  return { ...testServices(db, { config }), ...overrides };
}

export interface TestKeys {
  /** All-workspaces ingest key: each event names its (existing) workspace. */
  ingest: string;
  /** Unbound admin key. */
  admin: string;
}

export async function createTestKeys(db: Database): Promise<TestKeys> {
  const keys = createKeyService({ db });
  const [ingest, admin] = await Promise.all([keys.createKey({ kind: 'ingest', allWorkspaces: true }), keys.createKey({ kind: 'admin' })]);
  return { ingest: ingest.key, admin: admin.key };
}

/**
 * A test file's own database, with today's and tomorrow's partitions (older events land in the
 * default one) and the standard keys: what most procedure tests start from.
 */
export async function openTestDatabaseWithKeys(): Promise<{ testDb: TestDatabase; keys: TestKeys }> {
  const testDb = await openTestDatabase();
  await maintainPartitions(testDb.db, { daysAhead: 1 });
  return { testDb, keys: await createTestKeys(testDb.db) };
}

/**
 * A real workspace (keys are created in one, and events must name an existing one); its id. Named
 * uniquely unless a test gives the name.
 */
export async function createTestWorkspace(db: Database, name = `Test workspace ${randomUUID()}`): Promise<string> {
  return (await createWorkspaceService({ db }).createWorkspace({ name })).id;
}

/** Makes workspaces of ids a test chose up front (constants shared by its tests) real ones. */
export async function registerTestWorkspaces(db: Database, ...ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.orm
    .insert(workspaces)
    .values(ids.map((id) => ({ id, name: `Test workspace ${id}` })))
    .onConflictDoNothing();
}

import { OTLPLogExporter as OTLPJsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OTLPProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { databaseUnavailable } from '../server/errors.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import type { Services } from '../server/trpc/context.ts';
import { waitUntil } from './faults/support/wait.ts';
import { createTestWorkspace, startTestServer, testConfig, testServices, type TestServer } from './support/app.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { countEventsWithId, storedEvents } from './support/events.ts';

// The real OpenTelemetry JS exporters (the 0.223 line, which runs on Node 20) against the real service.

let testDb: TestDatabase;
let server: TestServer;
let services: Services;
/** Ingest calls to fail with a database outage before the next one passes. */
let outagesLeft = 0;
let ingestCalls = 0;
const shutdowns: (() => Promise<void>)[] = [];
/** The exporters' CompressionAlgorithm.GZIP; the enum lives in a package they do not re-export. */
const GZIP = 'gzip' as NonNullable<ConstructorParameters<typeof OTLPProtoLogExporter>[0]>['compression'];

beforeAll(async () => {
  testDb = await openTestDatabase();
  const config = testConfig();
  const real = testServices(testDb.db, { config });
  services = {
    ...real,
    ingestor: {
      ...real.ingestor,
      ingestBatch: (events, options) => {
        ingestCalls += 1;
        if (outagesLeft > 0) {
          outagesLeft -= 1;
          return Promise.reject(databaseUnavailable(new Error('connection refused')));
        }
        return real.ingestor.ingestBatch(events, options);
      },
    },
  };
  server = await startTestServer(testDb.db, { config, services });
});
afterEach(async () => {
  await Promise.all(shutdowns.splice(0).map((shutdown) => shutdown()));
  outagesLeft = 0;
});
afterAll(async () => {
  await server.close();
  await testDb.drop();
});

async function workspaceKey(): Promise<{ workspaceId: string; key: string }> {
  const workspaceId = await createTestWorkspace(testDb.db);
  const { key } = await createKeyService({ db: testDb.db }).createKey({ kind: 'ingest', workspaceId });
  return { workspaceId, key };
}

function loggerFor(exporter: OTLPJsonLogExporter | OTLPProtoLogExporter): LoggerProvider {
  const provider = new LoggerProvider({ processors: [new BatchLogRecordProcessor({ exporter })] });
  shutdowns.push(() => provider.shutdown());
  return provider;
}

describe('the OpenTelemetry JS exporters', () => {
  for (const [format, Exporter] of [
    ['protobuf', OTLPProtoLogExporter],
    ['JSON', OTLPJsonLogExporter],
  ] as const) {
    it(`stores what exporter-logs-otlp (${format}, gzip) sends, each record once, with its time and mapping`, async () => {
      const { workspaceId, key } = await workspaceKey();
      const provider = loggerFor(new Exporter({ url: `${server.url}/v1/logs`, headers: { Authorization: `Bearer ${key}` }, compression: GZIP }));
      const logger = provider.getLogger('checkout-scope');
      const at = new Date(Date.now() - 1_000);
      logger.emit({ body: 'order placed', severityNumber: 9, severityText: 'INFO', timestamp: at, attributes: { 'order.id': 'o-1', items: 3 } });
      logger.emit({
        body: 'charge failed',
        severityNumber: 17,
        eventName: 'payment.failed',
        timestamp: at,
        attributes: { 'exception.type': 'CardDeclined', 'exception.message': 'card declined', 'exception.stacktrace': 'at charge (billing.ts:1)' },
      });
      await provider.forceFlush();
      await waitUntil(async () => (await storedEvents(testDb.db, workspaceId)).length >= 2, 'two stored log events');

      const stored = await storedEvents(testDb.db, workspaceId);
      expect(stored).toHaveLength(2);
      const log = stored.find((event) => event.eventType === 'log');
      expect(log).toMatchObject({ name: 'checkout-scope', source: 'backend', createdAt: at });
      expect(log?.metadata).toMatchObject({ body: 'order placed', severityNumber: 9, severityText: 'INFO', attributes: { 'order.id': 'o-1', items: 3 } });
      const error = stored.find((event) => event.eventType === 'error');
      expect(error).toMatchObject({ name: 'payment.failed', createdAt: at });
      expect(error?.metadata).toMatchObject({ message: 'card declined', kind: 'CardDeclined', stack: 'at charge (billing.ts:1)' });
    });
  }

  it('stores the spans exporter-trace-otlp-http sends as perf.span events with their duration', async () => {
    const { workspaceId, key } = await workspaceKey();
    const provider = new BasicTracerProvider({
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${server.url}/v1/traces`, headers: { Authorization: `Bearer ${key}` } }))],
    });
    shutdowns.push(() => provider.shutdown());
    const start = Date.now() - 2_000;
    const span = provider
      .getTracer('http')
      .startSpan('GET', { kind: 1, startTime: start, attributes: { 'http.route': '/orders/:id', 'http.request.method': 'GET' } });
    span.end(start + 25);
    await provider.forceFlush();
    await waitUntil(async () => (await storedEvents(testDb.db, workspaceId)).length >= 1, 'a stored span');

    const [stored] = await storedEvents(testDb.db, workspaceId);
    const { traceId, spanId } = span.spanContext();
    expect(stored).toMatchObject({ eventType: 'perf.span', name: 'GET /orders/:id', createdAt: new Date(start) });
    expect(stored?.metadata).toMatchObject({ value: 25, unit: 'ms', traceId, spanId, kind: 'server', 'http.route': '/orders/:id' });
  });

  it('retries an export answered 503 during a database outage, and the retry stores each record once', async () => {
    const { workspaceId, key } = await workspaceKey();
    const provider = loggerFor(new OTLPProtoLogExporter({ url: `${server.url}/v1/logs`, headers: { Authorization: `Bearer ${key}` }, compression: GZIP }));
    outagesLeft = 1;
    const callsBefore = ingestCalls;
    provider.getLogger('retry-scope').emit({ body: 'after the outage', severityNumber: 9 });
    await provider.forceFlush();
    await waitUntil(async () => (await storedEvents(testDb.db, workspaceId)).length >= 1, 'the retried record stored');

    expect(ingestCalls - callsBefore).toBe(2);
    const stored = await storedEvents(testDb.db, workspaceId);
    expect(stored).toHaveLength(1);
    expect(await countEventsWithId(testDb.db, stored[0]!.id)).toBe(1);
  });
});

import { OTLPLogExporter as OTLPJsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OTLPProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspaceWithKey, type OutageSwitch, startServiceWithOutageSwitch, waitForStored } from './support/adapters.ts';
import type { TestServer } from './support/app.ts';
import type { TestDatabase } from './support/database.ts';
import { countEventsWithId } from './support/events.ts';

// The real OpenTelemetry JS exporters (the 0.223 line, which runs on Node 20) against the real service.

let testDb: TestDatabase;
let server: TestServer;
let outages: OutageSwitch;
let close: () => Promise<void>;
const shutdowns: (() => Promise<void>)[] = [];
/** The exporters' CompressionAlgorithm.GZIP; the enum lives in a package they do not re-export. */
const GZIP = 'gzip' as NonNullable<ConstructorParameters<typeof OTLPProtoLogExporter>[0]>['compression'];

beforeAll(async () => {
  ({ testDb, server, outages, close } = await startServiceWithOutageSwitch());
});
afterEach(async () => {
  await Promise.all(shutdowns.splice(0).map((shutdown) => shutdown()));
  outages.clear();
});
afterAll(() => close());

const workspaceKey = () => createWorkspaceWithKey(testDb.db);

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
      const stored = await waitForStored(testDb.db, workspaceId, 2);

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
    const [stored] = await waitForStored(testDb.db, workspaceId, 1);

    const { traceId, spanId } = span.spanContext();
    expect(stored).toMatchObject({ eventType: 'perf.span', name: 'GET /orders/:id', createdAt: new Date(start) });
    expect(stored?.metadata).toMatchObject({ value: 25, unit: 'ms', traceId, spanId, kind: 'server', 'http.route': '/orders/:id' });
  });

  it('retries an export answered 503 during a database outage, and the retry stores each record once', async () => {
    const { workspaceId, key } = await workspaceKey();
    const provider = loggerFor(new OTLPProtoLogExporter({ url: `${server.url}/v1/logs`, headers: { Authorization: `Bearer ${key}` }, compression: GZIP }));
    outages.failNext('before');
    const callsBefore = outages.calls;
    provider.getLogger('retry-scope').emit({ body: 'after the outage', severityNumber: 9 });
    await provider.forceFlush();
    const stored = await waitForStored(testDb.db, workspaceId, 1);

    expect(outages.calls - callsBefore).toBe(2);
    expect(stored).toHaveLength(1);
    expect(await countEventsWithId(testDb.db, stored[0]!.id)).toBe(1);
  });
});

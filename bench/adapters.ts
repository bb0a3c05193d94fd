/**
 * The ingest adapters under load (part of `npm run bench`): a 500-record export of each foreign
 * wire format against a 500-event `ingestBatch` on the same service in the same round, so the
 * ratio is the adapter's own cost (decoding, mapping, derived ids) over the one write path.
 *
 * Adapters derive ids from what they receive (an export's bytes, a message id, an event uuid), so
 * a body sent twice is stored once: every request here carries a fresh request number in a
 * fixed-width slot, which makes its records new without building a body per request.
 */
import { gzipSync } from 'node:zlib';
import { ProtobufWriter } from '../server/ingest-adapters/otlp/protobuf-wire.ts';
import { type LoadResult, runLoad } from './support.ts';

export const EXPORT_RECORDS = 500;
const CONNECTIONS = 16;
/** Replaced in every request by its number, zero-padded to the same width (12 hex digits). */
const SLOT = 'REQUESTSLOT0';

export const ADAPTER_SCENARIOS = ['ingestBatch', 'otlpJson', 'otlpProtobuf', 'segment', 'posthog', 'posthogGzip'] as const;
export type AdapterScenario = (typeof ADAPTER_SCENARIOS)[number];

export const SCENARIO_LABELS: Record<AdapterScenario, string> = {
  ingestBatch: 'ingestBatch x500, 16 conns',
  otlpJson: 'OTLP logs JSON x500',
  otlpProtobuf: 'OTLP logs protobuf x500',
  segment: 'Segment batch x500',
  posthog: 'PostHog batch x500',
  posthogGzip: 'PostHog gzip x500',
};

/** `stored`: events the database holds after the scenario over 500 x answered requests: at least 1 (requests in flight when the window closed are stored, not counted); under 1, acknowledged records were lost. */
export type AdapterRound = Record<AdapterScenario, LoadResult & { eventsPerSecond: number; stored: number }>;

const records = (build: (index: number) => unknown) => Array.from({ length: EXPORT_RECORDS }, (_, index) => build(index));
const properties = (index: number) => ({
  route: '/pricing',
  label: 'Start free trial',
  viewport: { w: 1440, h: 900 },
  experiment: 'b',
  target: `signup-${index % 50}`,
});
const USER = '7d0b5a4e-3f59-4c1b-9a0e-5b8a2f1c6d3e';

interface Scenario {
  path: string;
  contentType: string;
  headers?: Record<string, string>;
  /** The body with SLOT where the request number goes. */
  template: string | Buffer;
  /** Compress each request's body after filling the slot. */
  gzip?: boolean;
}

function otlpJsonTemplate(): string {
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({
    resourceLogs: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'checkout' } },
            { key: 'bench.request', value: { stringValue: SLOT } },
          ],
        },
        scopeLogs: [
          {
            scope: { name: 'web' },
            logRecords: records((index) => ({
              timeUnixNano: String(now + BigInt(index)),
              severityNumber: 9,
              severityText: 'INFO',
              body: { stringValue: 'button.click' },
              attributes: Object.entries(properties(index)).map(([key, value]) => ({
                key,
                value: typeof value === 'string' ? { stringValue: value } : { stringValue: JSON.stringify(value) },
              })),
            })),
          },
        ],
      },
    ],
  });
}

function otlpProtobufTemplate(): Buffer {
  const w = () => new ProtobufWriter();
  const attribute = (key: string, value: string) => w().string(1, key).message(2, w().string(1, value));
  const now = BigInt(Date.now()) * 1_000_000n;
  const scope = w().message(1, w().string(1, 'web'));
  for (let index = 0; index < EXPORT_RECORDS; index += 1) {
    const record = w()
      .fixed64(1, now + BigInt(index))
      .varint(2, 9)
      .string(3, 'INFO')
      .message(5, w().string(1, 'button.click'));
    for (const [key, value] of Object.entries(properties(index))) record.message(6, attribute(key, typeof value === 'string' ? value : JSON.stringify(value)));
    scope.message(2, record);
  }
  const resource = w().message(1, attribute('service.name', 'checkout')).message(1, attribute('bench.request', SLOT));
  return Buffer.from(w().message(1, w().message(1, resource).message(2, scope)).finish());
}

function segmentTemplate(key: string): string {
  const now = new Date().toISOString();
  return JSON.stringify({
    batch: records((index) => ({
      type: 'track',
      event: 'button.click',
      messageId: `${SLOT}-${index}`,
      userId: USER,
      timestamp: now,
      properties: properties(index),
      context: { library: { name: '@segment/analytics-node', version: '3.1.0' } },
    })),
    writeKey: key,
    sentAt: now,
  });
}

function posthogTemplate(key: string): string {
  const now = new Date().toISOString();
  return JSON.stringify({
    api_key: key,
    batch: records((index) => ({
      event: 'button.click',
      // A UUID whose first group is the request number.
      uuid: `${SLOT.slice(0, 8)}-0000-4000-8000-${index.toString(16).padStart(12, '0')}`,
      distinct_id: USER,
      timestamp: now,
      properties: { ...properties(index), $lib: 'posthog-node', $lib_version: '5.70.0' },
    })),
    sent_at: now,
  });
}

function scenarios(ingestKey: string): Record<AdapterScenario, Scenario> {
  const bearer = { authorization: `Bearer ${ingestKey}` };
  return {
    ingestBatch: {
      path: '/trpc/telemetry.ingestBatch',
      contentType: 'application/json',
      headers: bearer,
      template: JSON.stringify({
        json: { events: records((index) => ({ userId: USER, source: 'web', eventType: 'ui.interaction', name: 'button.click', metadata: properties(index) })) },
      }),
    },
    otlpJson: { path: '/v1/logs', contentType: 'application/json', headers: bearer, template: otlpJsonTemplate() },
    otlpProtobuf: { path: '/v1/logs', contentType: 'application/x-protobuf', headers: bearer, template: otlpProtobufTemplate() },
    segment: {
      path: '/v1/batch',
      contentType: 'application/json',
      headers: { authorization: `Basic ${Buffer.from(`${ingestKey}:`).toString('base64')}` },
      template: segmentTemplate(ingestKey),
    },
    posthog: { path: '/batch/', contentType: 'application/json', template: posthogTemplate(ingestKey) },
    posthogGzip: {
      path: '/batch/',
      contentType: 'application/json',
      headers: { 'content-encoding': 'gzip' },
      template: posthogTemplate(ingestKey),
      gzip: true,
    },
  };
}

/** Request `n`'s body: the template with its slot filled (in the first 8 characters for PostHog's UUIDs). */
function bodyMaker(scenario: Scenario, round: number): () => Buffer | string {
  let request = round * 1_000_000;
  const template = scenario.template;
  if (typeof template === 'string') {
    return () => {
      request += 1;
      const number = request.toString(16).padStart(12, '0');
      const filled = template.replaceAll(SLOT, number).replaceAll(SLOT.slice(0, 8), number.slice(4));
      return scenario.gzip ? gzipSync(filled) : filled;
    };
  }
  const offset = template.indexOf(SLOT);
  return () => {
    request += 1;
    const body = Buffer.from(template);
    body.write(request.toString(16).padStart(12, '0'), offset, 'latin1');
    return body;
  };
}

/** Every scenario once against a running service; events/s = 500 x successful requests per second. */
export async function measureAdapters(options: {
  url: string;
  ingestKey: string;
  seconds: number;
  round: number;
  log: (message: string) => void;
  /** Events stored, then emptied, once a scenario's requests are all answered. */
  takeStoredCount: () => Promise<number>;
}): Promise<AdapterRound> {
  const { url, ingestKey, seconds, round, log } = options;
  const all = scenarios(ingestKey);
  const measured: Partial<AdapterRound> = {};
  for (const name of ADAPTER_SCENARIOS) {
    log(`  ${SCENARIO_LABELS[name]}`);
    const scenario = all[name];
    const nextBody = bodyMaker(scenario, round * ADAPTER_SCENARIOS.length + ADAPTER_SCENARIOS.indexOf(name));
    const result = await runLoad({
      url,
      path: scenario.path,
      body: '',
      nextBody,
      headers: { 'content-type': scenario.contentType, ...scenario.headers },
      connections: CONNECTIONS,
      seconds,
    });
    const stored = await options.takeStoredCount();
    measured[name] = {
      ...result,
      eventsPerSecond: Math.round((result.okRequests * EXPORT_RECORDS) / result.seconds),
      stored: Math.round((stored / (result.okRequests * EXPORT_RECORDS)) * 1000) / 1000,
    };
  }
  return measured as AdapterRound;
}

/**
 * The ingest adapters' JSON routes as OpenAPI operations, so /docs lists them beside the /api face
 * (docs/ingest-adapters.md has the whole reference). They are not generated from the router: the
 * wire formats are the SDKs', and only their JSON forms fit OpenAPI (protobuf, gzip without a
 * header and form-encoded beacons are accepted on the same paths and described in words).
 */

/** The bearer scheme of the generated document (an API key in `Authorization`). */
const SECURITY = [{ Authorization: [] }];
/** The adapters live at the service's root, not under /api. */
const ROOT_SERVER = [{ url: '/', description: 'This service (ingest adapters are not under /api)' }];

const OTLP_TAG = 'ingest adapters: OpenTelemetry';
const SEGMENT_TAG = 'ingest adapters: Segment';
const POSTHOG_TAG = 'ingest adapters: PostHog';
export const ADAPTER_TAGS = [
  { name: OTLP_TAG, description: 'OTLP/HTTP exporters: point `OTEL_EXPORTER_OTLP_ENDPOINT` here with an ingest key bound to a workspace.' },
  { name: SEGMENT_TAG, description: 'Segment (and RudderStack) SDKs: the write key is an ingest key bound to a workspace.' },
  { name: POSTHOG_TAG, description: 'PostHog SDKs: `host`/`api_host` is this service, the project token an ingest key bound to a workspace.' },
];

interface JsonOperation {
  tag: string;
  summary: string;
  description: string;
  example: unknown;
  /** Another media type the same route takes, besides JSON. */
  alsoAccepts?: string;
  answer: unknown;
}

const nanosAgo = (ms: number) => `${(Date.now() - ms) * 1_000_000}`;

function operation({ tag, summary, description, example, alsoAccepts, answer }: JsonOperation) {
  const body = { schema: { type: 'object', additionalProperties: true }, example };
  return {
    tags: [tag],
    summary,
    description,
    security: SECURITY,
    requestBody: {
      required: true,
      content: { 'application/json': body, ...(alsoAccepts && { [alsoAccepts]: { schema: { type: 'string', format: 'binary' } } }) },
    },
    responses: {
      '200': {
        description: 'Stored once committed (records refused one by one are counted in `telemetry.adapterRejections`)',
        content: { 'application/json': { example: answer } },
      },
      '400': { description: 'Malformed body: the SDK drops it' },
      '401': { description: 'Missing or unknown key' },
      '403': { description: 'The key is not an ingest key bound to one workspace' },
      '413': { description: 'Body over MAX_BODY_BYTES' },
      '503': { description: 'Overloaded or the database is unavailable: retried after Retry-After' },
    },
  };
}

const OTLP_LOGS_EXAMPLE = {
  resourceLogs: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }] },
      scopeLogs: [
        {
          scope: { name: 'orders' },
          logRecords: [
            {
              // No time: the record is stored at the time it is received.
              severityNumber: 9,
              severityText: 'INFO',
              body: { stringValue: 'order placed' },
              attributes: [{ key: 'event.name', value: { stringValue: 'order.placed' } }],
            },
          ],
        },
      ],
    },
  ],
};

const otlpTracesExample = () => ({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }] },
      scopeSpans: [
        {
          scope: { name: '@opentelemetry/instrumentation-http' },
          spans: [
            {
              traceId: '5b8efff798038103d269b633813fc60c',
              spanId: 'eee19b7ec3c1b174',
              name: 'GET',
              kind: 2,
              // When the document was built (the service's start): a span needs its start and end.
              startTimeUnixNano: nanosAgo(60_000),
              endTimeUnixNano: nanosAgo(60_000 - 87),
              attributes: [
                { key: 'http.route', value: { stringValue: '/orders/:id' } },
                { key: 'http.request.method', value: { stringValue: 'GET' } },
              ],
              status: {},
            },
          ],
        },
      ],
    },
  ],
});

const SEGMENT_TRACK = {
  type: 'track',
  event: 'Order Completed',
  userId: 'user-42',
  messageId: 'api-example-1',
  properties: { total: 42.5, currency: 'EUR' },
};

/** The paths to add to the OpenAPI document, each with the root as its server. */
export function adapterPaths(): Record<string, object> {
  const post = (spec: JsonOperation) => ({ servers: ROOT_SERVER, post: operation(spec) });
  return {
    '/v1/logs': post({
      tag: OTLP_TAG,
      summary: 'OTLP/HTTP logs',
      description:
        'Each log record becomes a `log` event (`error` with message, stack and kind for an exception at ERROR or above). Also `application/x-protobuf`, gzip or deflate, chunked. Ids derive from the export, so a retried export stores nothing twice.',
      example: OTLP_LOGS_EXAMPLE,
      alsoAccepts: 'application/x-protobuf',
      answer: {},
    }),
    '/v1/traces': post({
      tag: OTLP_TAG,
      summary: 'OTLP/HTTP traces',
      description:
        'Each span becomes a `perf.span` event whose `value` is its duration in ms, named `METHOD /route` for server spans, so percentiles and anomalies answer per-route latency.',
      example: otlpTracesExample(),
      alsoAccepts: 'application/x-protobuf',
      answer: {},
    }),
    '/v1/batch': post({
      tag: SEGMENT_TAG,
      summary: 'Segment batch',
      description:
        'A batch of Segment calls (track, page, screen, identify, group, alias). The write key as Basic username, `writeKey` in the body, or a bearer token. analytics.js also posts to `/v1/t`, `/v1/p`, `/v1/i`, `/v1/s`, `/v1/g`, `/v1/a` and `/v1/b` as text/plain.',
      example: { batch: [SEGMENT_TRACK] },
      alsoAccepts: 'text/plain',
      answer: { success: true },
    }),
    '/v1/track': post({
      tag: SEGMENT_TAG,
      summary: 'Segment track',
      description:
        'One track call: a `custom` event named by `event`. `/v1/page`, `/v1/screen`, `/v1/identify`, `/v1/group` and `/v1/alias` take their calls the same way.',
      example: { ...SEGMENT_TRACK, messageId: 'api-example-2' },
      alsoAccepts: 'text/plain',
      answer: { success: true },
    }),
    '/batch/': post({
      tag: POSTHOG_TAG,
      summary: 'PostHog batch (posthog-node)',
      description:
        'Events in `batch`, the token in `api_key` (or a bearer token). `$pageview`, `$exception`, `$web_vitals`, `$autocapture` and `$identify` map to page, error, web-vital, interaction and identify events; others are `custom`. Answers exactly 200, and 503 with Retry-After where posthog-js would drop a 429.',
      example: { batch: [{ event: 'order placed', distinct_id: 'user-42', properties: { total: 42.5 }, uuid: '0192d1c6-7a4b-7cc0-8f43-6a1b5f9e2d31' }] },
      answer: { status: 1 },
    }),
    '/e/': post({
      tag: POSTHOG_TAG,
      summary: 'PostHog capture (posthog-js)',
      description:
        'What posthog-js sends: one event or an array, gzip detected by its bytes (`?compression=gzip-js`), base64 (`?compression=base64`) and the `data=` form of page-unload beacons. `/i/v0/e/` and `/capture/` are the same route.',
      example: [
        {
          event: '$pageview',
          properties: { distinct_id: 'user-42', $current_url: 'https://shop.example/pricing' },
          uuid: '0192d1c6-7a4b-7cc0-8f43-6a1b5f9e2d32',
        },
      ],
      alsoAccepts: 'text/plain',
      answer: { status: 1 },
    }),
  };
}

/**
 * A valid example for every operation of the OpenAPI document, which /docs prefills in "try it":
 * without them the explorer sends empty strings for required fields and the first call fails.
 * Keyed by `METHOD path` as the document names them (path relative to /api). An operation with no
 * example here is caught by tests/openapi-examples.test.ts, which also sends each example to its
 * route and expects a 2xx.
 */
import type { ZodOpenApiObject } from 'zod-openapi';

type OpenApiDocument = ReturnType<typeof import('trpc-to-openapi').generateOpenApiDocument>;

/**
 * Ids the examples name. Nothing exists under them in a new service: replace them with ids of your
 * own (the test replaces each with one it created).
 */
export const EXAMPLE_IDS = {
  workspace: '6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61',
  event: '01a21bb0-f2ab-7aa2-a4af-f16d06a10435',
  user: '2c9d4e6f-7a8b-4c1d-9e2f-3a4b5c6d7e8f',
  key: '3d0f5c1e-2b7a-4c9d-8e6f-1a2b3c4d5e6f',
  erasureRequest: '9a1c0d4e-5b6f-4a7b-8c9d-0e1f2a3b4c5d',
} as const;

/** What one operation's "try it" is prefilled with. */
export interface OperationExample {
  /** The JSON body, for an operation that takes one. */
  body?: unknown;
  /** A value for each required path and query parameter (and optional ones worth showing), by name. */
  parameters?: Record<string, string | number | boolean>;
}

/** A relative range: the last 24 hours whenever the example is sent (absolute `from` and `to` work too). */
const LAST_DAY = { range: '24h' } as const;
/**
 * Named only where the input requires it: reads and events take the workspace of a key bound to
 * one (what `telemetry keys create --workspace` makes), so those examples work as they are with
 * such a key; an unbound admin key adds `workspaceId` (the 400 names it).
 */
const workspaceId = EXAMPLE_IDS.workspace;

export const OPERATION_EXAMPLES: Readonly<Record<string, OperationExample>> = {
  'POST /events': {
    body: {
      source: 'web',
      eventType: 'perf.metric',
      name: 'LCP',
      userId: EXAMPLE_IDS.user,
      metadata: { value: 1830, unit: 'ms', page: '/pricing' },
    },
  },
  'POST /events/batch': {
    body: {
      events: [
        { source: 'web', eventType: 'ui.interaction', name: 'button.click', targetType: 'button', targetId: 'signup', userId: EXAMPLE_IDS.user },
        { source: 'web', eventType: 'error', name: 'TypeError', metadata: { message: 'x is undefined', stack: 'at main.js:1:1' } },
      ],
    },
  },
  'GET /workspace': {},
  'POST /events/list': { body: { ...LAST_DAY, eventType: 'ui.interaction', limit: 20 } },
  'GET /events/{id}': { parameters: { id: EXAMPLE_IDS.event } },
  'GET /adapter-rejections': { parameters: { limit: 20 } },
  'POST /stats/timeseries': { body: { ...LAST_DAY, bucket: 'hour', timeZone: 'UTC', breakdown: 'name', seriesLimit: 5 } },
  'POST /stats/top': { body: { ...LAST_DAY, by: 'name', limit: 10 } },
  'POST /stats/percentiles': { body: { ...LAST_DAY, name: 'LCP', bucket: 'hour' } },
  'POST /stats/funnel': {
    body: { ...LAST_DAY, steps: [{ name: 'page.view' }, { name: 'signup.start' }, { name: 'signup.done' }], windowSeconds: 86_400 },
  },
  'POST /stats/anomalies': { body: { ...LAST_DAY, bucket: 'hour', timeZone: 'UTC' } },
  'POST /live/ticket': { body: {} },
  'POST /admin/workspaces': { body: { name: 'My app' } },
  'GET /admin/workspaces': {},
  'PATCH /admin/workspaces/{id}': { parameters: { id: workspaceId }, body: { name: 'My app (production)' } },
  'POST /admin/workspace-limits': { body: { workspaceId, kind: 'ingest', rateLimit: { eventsPerSecond: 5000, burst: 20_000 } } },
  'GET /admin/workspace-limits': {},
  'POST /admin/workspace-limits/{workspaceId}/clear': { parameters: { workspaceId }, body: { kind: 'ingest' } },
  'POST /admin/retention': { body: { workspaceId, days: 30 } },
  'GET /admin/retention': {},
  'POST /admin/retention/{workspaceId}/clear': { parameters: { workspaceId }, body: {} },
  'POST /admin/retention/run': { body: { dryRun: true } },
  'POST /admin/erasure': { body: { userId: EXAMPLE_IDS.user } },
  'GET /admin/erasure/{requestId}': { parameters: { requestId: EXAMPLE_IDS.erasureRequest } },
  'POST /admin/keys': { body: { kind: 'ingest', workspaceId, name: 'web app' } },
  'GET /admin/keys': {},
  'POST /admin/keys/{id}/revoke': { parameters: { id: EXAMPLE_IDS.key }, body: {} },
  'POST /admin/keys/{id}/rotate': { parameters: { id: EXAMPLE_IDS.key }, body: {} },
};

export const operationKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

/** Every operation of the document, as `{ key, method, path }`. */
export function documentOperations(document: Pick<ZodOpenApiObject, 'paths'> | OpenApiDocument) {
  return Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    Object.keys(item ?? {})
      .filter((method) => ['get', 'put', 'post', 'patch', 'delete'].includes(method))
      .map((method) => ({ key: operationKey(method, path), method: method.toUpperCase(), path })),
  );
}

/**
 * Puts each operation's example where Scalar prefills from: the JSON body's `example` and each
 * parameter's `example`. Operations without an entry are left as they are (the test names them).
 */
export function applyOperationExamples(document: OpenApiDocument): void {
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(item ?? {})) {
      if (typeof operation !== 'object' || operation === null || !('responses' in operation)) continue;
      const example = OPERATION_EXAMPLES[operationKey(method, path)];
      if (!example) continue;
      const body = operation.requestBody;
      const json = body && 'content' in body ? body.content?.['application/json'] : undefined;
      if (json && example.body !== undefined) json.example = example.body;
      for (const parameter of operation.parameters ?? []) {
        if ('name' in parameter && example.parameters && parameter.name in example.parameters) parameter.example = example.parameters[parameter.name];
      }
    }
  }
}

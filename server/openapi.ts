import { generateOpenApiDocument } from 'trpc-to-openapi';
import type { AppRouter } from './routers/index.ts';
import { ADAPTER_TAGS, adapterPaths } from './ingest-adapters/openapi-operations.ts';
import { applyOperationExamples } from './openapi-examples.ts';

export const OPENAPI_BASE_PATH = '/api';
/** The bearer scheme trpc-to-openapi declares for protected procedures (an API key in `Authorization`). */
export const OPENAPI_SECURITY_SCHEME = 'Authorization';

/** The OpenAPI document of the plain-JSON face, generated from the same router as /trpc. */
export function buildOpenApiDocument(router: AppRouter, options: { version: string }) {
  const document = generateOpenApiDocument(router, {
    title: 'Telemetry service',
    description:
      'Plain-JSON face of the telemetry service: the same procedures as the typed tRPC endpoint at /trpc, without its envelope. Send events from any language with `Content-Type: application/json`.',
    version: options.version,
    baseUrl: OPENAPI_BASE_PATH,
    tags: ['telemetry'],
  });
  // trpc-to-openapi inlines a procedure's top-level input, dropping its component id; batch items
  // refer to `EventInput`, so register the single-event body under that name.
  const eventBody = document.paths?.['/events']?.post?.requestBody;
  const eventSchema = eventBody && 'content' in eventBody ? eventBody.content['application/json']?.schema : undefined;
  if (eventSchema) {
    document.components ??= {};
    document.components.schemas = { ...document.components.schemas, EventInput: eventSchema };
  }
  // The /api face answers 415 to a POST without a JSON body, even one whose input is all in the
  // path; declaring an empty one makes the explorer (and generated clients) send it.
  for (const item of Object.values(document.paths ?? {})) {
    for (const method of ['post', 'patch'] as const) {
      const operation = item?.[method];
      if (operation && !operation.requestBody) {
        operation.requestBody = { required: true, content: { 'application/json': { schema: { type: 'object', properties: {} } } } };
      }
    }
  }
  // "Try it" in /docs starts from a body and parameters the route accepts.
  applyOperationExamples(document);
  // The ingest adapters' JSON routes, listed beside the /api face (ADR-012); they carry their own examples.
  document.paths = { ...document.paths, ...(adapterPaths() as typeof document.paths) };
  document.tags = [...(document.tags ?? []), ...ADAPTER_TAGS];
  return document;
}

import { generateOpenApiDocument } from 'trpc-to-openapi';
import type { AppRouter } from './routers/index.ts';

export const OPENAPI_BASE_PATH = '/api';

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
  return document;
}

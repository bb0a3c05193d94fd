/**
 * The one module where the client meets the service's types (types only: no server code runs in
 * a client). The package build (scripts/build-client-package.ts) prints every export of this
 * module from the live router into standalone declarations, so an app that installs the client
 * needs none of the server's files or dependencies; keep it to `export type` of data shapes.
 */
export type { AppRouter } from '../server/routers/index.ts';
export type { EventInput, EventReceipt, FreeFormEventType, PerfMetricMetadata, ErrorMetadata, Source } from '../server/services/events/schemas.ts';
export type { JsonObject, JsonValue } from '../server/services/events/json.ts';

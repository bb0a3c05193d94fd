import type { TRPC_ERROR_CODE_KEY } from '@trpc/server';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type Context as HonoContext, Hono } from 'hono';
import type { EventInput } from '../../services/events/schemas.ts';
import { bearerToken } from '../../services/keys/keys.ts';
import { adapterKey, type AdapterDeps, callFailure, deliverEvents, quotedRefusals, type RefusedReceipt, refuseRequest } from '../deliver.ts';
import { sha256Hex } from '../deterministic-ids.ts';
import { decodeLogsJson, decodeLogsProtobuf, decodeTraceJson, decodeTraceProtobuf, OtlpDecodeError } from './otlp-decode.ts';
import { type ExportIdentity, mapLogRecords, mapSpans } from './map-otlp.ts';
import { ProtobufWriter } from './protobuf-wire.ts';

type OtlpEnv = { Variables: { requestId: string } };
type WireFormat = 'protobuf' | 'json';

/** gRPC status codes: what OTLP's error body (google.rpc.Status) carries. */
const GRPC = { invalidArgument: 3, permissionDenied: 7, resourceExhausted: 8, unimplemented: 12, internal: 13, unavailable: 14, unauthenticated: 16 } as const;

/** The gRPC code of each refusal the ingest procedure answers; anything else is an internal error. */
const GRPC_BY_TRPC_CODE: Partial<Record<TRPC_ERROR_CODE_KEY, number>> = {
  UNAUTHORIZED: GRPC.unauthenticated,
  FORBIDDEN: GRPC.permissionDenied,
  BAD_REQUEST: GRPC.invalidArgument,
  PAYLOAD_TOO_LARGE: GRPC.resourceExhausted,
  TOO_MANY_REQUESTS: GRPC.resourceExhausted,
  SERVICE_UNAVAILABLE: GRPC.unavailable,
};

/** One OTLP signal: how its request is read and mapped, and what its response calls refused records. */
interface Signal {
  path: string;
  toEvents(format: WireFormat, body: Uint8Array, identity: ExportIdentity): EventInput[];
  rejectedField: string;
}

const SIGNALS: Signal[] = [
  {
    path: '/v1/logs',
    toEvents: (format, body, identity) => mapLogRecords(format === 'protobuf' ? decodeLogsProtobuf(body) : decodeLogsJson(body), identity),
    rejectedField: 'rejectedLogRecords',
  },
  {
    path: '/v1/traces',
    toEvents: (format, body, identity) => mapSpans(format === 'protobuf' ? decodeTraceProtobuf(body) : decodeTraceJson(body), identity),
    rejectedField: 'rejectedSpans',
  },
];

function wireFormatOf(contentType: string | undefined): WireFormat | undefined {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType === 'application/x-protobuf' || mediaType === 'application/protobuf') return 'protobuf';
  if (mediaType === 'application/json') return 'json';
  return undefined;
}

/** An OTLP error answer: google.rpc.Status in the request's format, with Retry-After when a retry may succeed. */
function failure(c: HonoContext, format: WireFormat, status: ContentfulStatusCode, grpcCode: number, message: string, retryAfter?: string) {
  const headers: Record<string, string> = retryAfter === undefined ? {} : { 'Retry-After': retryAfter };
  if (format === 'protobuf') {
    return c.body(new ProtobufWriter().varint(1, grpcCode).string(2, message).finish(), status, { ...headers, 'Content-Type': 'application/x-protobuf' });
  }
  return c.json({ code: grpcCode, message }, status, headers);
}

/** Export{Logs,Trace}ServiceResponse: empty when everything was stored, else partialSuccess with the refused count and why. */
function success(c: HonoContext, format: WireFormat, rejectedField: string, rejected: number, message: string) {
  if (format === 'protobuf') {
    const response = new ProtobufWriter();
    if (rejected > 0) response.message(1, new ProtobufWriter().varint(1, rejected).string(2, message));
    return c.body(response.finish(), 200, { 'Content-Type': 'application/x-protobuf' });
  }
  return c.json(rejected > 0 ? { partialSuccess: { [rejectedField]: String(rejected), errorMessage: message } } : {}, 200);
}

function refusalMessage(refused: RefusedReceipt[]): string {
  const { quoted, more } = quotedRefusals(refused, 'record');
  return `${refused.length} record(s) not stored: ${quoted.join('; ')}${more ? '; …' : ''}`;
}

/**
 * OTLP/HTTP: `POST /v1/logs` and `/v1/traces` (protobuf or JSON), `/v1/metrics` refused. Records
 * are mapped to events and stored through `telemetry.ingestBatch` itself, so they get its key
 * check, rate limits, validation and group commit, and are acknowledged only once committed.
 */
export function otlpRoutes(deps: AdapterDeps) {
  const { services } = deps;
  const app = new Hono<OtlpEnv>();

  for (const { path, toEvents, rejectedField } of SIGNALS) {
    app.post(path, async (c) => {
      const format = wireFormatOf(c.req.header('content-type'));
      if (!format) {
        return failure(c, 'json', 415, GRPC.invalidArgument, 'Send Content-Type application/x-protobuf or application/json (OTLP/HTTP)');
      }
      const apiKey = bearerToken(c.req.header('authorization'));
      if (!apiKey) return failure(c, format, 401, GRPC.unauthenticated, 'Missing API key: send "Authorization: Bearer <ingest key>"');
      // Read before any database work: an over-long chunked body is answered 413 by the body limit.
      const body = new Uint8Array(await c.req.arrayBuffer());
      try {
        const key = await adapterKey(services, apiKey, 'OTLP');
        if (!key.ok) return failure(c, format, key.status, key.status === 401 ? GRPC.unauthenticated : GRPC.permissionDenied, key.message);
        let events: EventInput[];
        try {
          events = toEvents(format, body, { workspaceId: key.workspaceId, bodyHash: sha256Hex(body) });
        } catch (error) {
          if (error instanceof OtlpDecodeError) {
            refuseRequest(deps, { adapter: 'otlp', workspaceId: key.workspaceId, requestId: c.get('requestId'), message: error.message });
            return failure(c, format, 400, GRPC.invalidArgument, error.message);
          }
          throw error;
        }
        const { refused } = await deliverEvents(deps, { adapter: 'otlp', requestId: c.get('requestId'), apiKey, workspaceId: key.workspaceId, events });
        return success(c, format, rejectedField, refused.length, refused.length > 0 ? refusalMessage(refused) : '');
      } catch (error) {
        return answerError(c, format, error);
      }
    });
  }

  // Cumulative metrics need their own design; until then exporters are told so, with a status they do not retry.
  app.post('/v1/metrics', (c) =>
    failure(
      c,
      wireFormatOf(c.req.header('content-type')) ?? 'json',
      501,
      GRPC.unimplemented,
      'Metrics are not accepted yet: send logs to /v1/logs and traces to /v1/traces',
    ),
  );

  /** A refusal of the ingest procedure in OTLP's terms: its status, its gRPC code, and when to retry (exporters retry exactly 429, 502, 503 and 504). */
  function answerError(c: HonoContext<OtlpEnv>, format: WireFormat, error: unknown) {
    const failed = callFailure(deps, error, { adapter: 'otlp', requestId: c.get('requestId'), path: c.req.path });
    if (failed.internal) return failure(c, format, 500, GRPC.internal, 'Internal server error');
    return failure(c, format, failed.status, GRPC_BY_TRPC_CODE[failed.code] ?? GRPC.internal, failed.message, failed.retryAfter);
  }

  return app;
}

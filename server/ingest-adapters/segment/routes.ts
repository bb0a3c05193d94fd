import { type Context as HonoContext, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { bearerToken } from '../../services/keys/keys.ts';
import { type AdapterDeps, adapterKey, callFailure, deliverEvents, refuseRequest } from '../deliver.ts';
import { sha256Hex } from '../deterministic-ids.ts';
import {
  bodyWriteKey,
  mapSegmentMessages,
  parseSegmentBody,
  readSegmentRequest,
  SEGMENT_MESSAGE_TYPES,
  SegmentBodyError,
  type SegmentMessageType,
} from './map-segment.ts';

type SegmentEnv = { Variables: { requestId: string } };

/** Longest write key the settings route echoes; longer is no key of this service. */
const MAX_WRITE_KEY_LENGTH = 512;

/** The write key: `Authorization: Basic base64(writeKey:)` as every Segment SDK sends it, or a Bearer token. */
function headerWriteKey(header: string | undefined): string | undefined {
  const bearer = bearerToken(header);
  if (bearer) return bearer;
  const basic = header && /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header)?.[1];
  if (!basic) return undefined;
  const credentials = Buffer.from(basic, 'base64').toString('utf8');
  const username = credentials.split(':', 1)[0];
  return username || undefined;
}

function failure(c: HonoContext, status: ContentfulStatusCode, message: string, retryAfter?: string) {
  return c.json({ success: false, message }, status, retryAfter === undefined ? {} : { 'Retry-After': retryAfter });
}

/**
 * Where the page reached this service: behind a proxy that terminates TLS, the proxy's
 * X-Forwarded-Host and X-Forwarded-Proto. Trusting them is safe here: the answer goes to the one
 * asking, and no shared cache keeps it.
 */
function publicOrigin(c: HonoContext): { host: string; protocol: 'http' | 'https' } {
  const url = new URL(c.req.url);
  const forwardedHost = c.req.header('x-forwarded-host')?.split(',')[0]?.trim();
  const forwardedProto = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  const protocol = (forwardedProto ?? url.protocol.slice(0, -1)) === 'https' ? 'https' : 'http';
  return { host: forwardedHost || c.req.header('host') || url.host, protocol };
}

/**
 * The settings analytics-next fetches from Segment's CDN before it sends anything: only the
 * Segment.io destination, pointed back at this service's /v1 (analytics-next prefixes `apiHost`
 * with `protocol://` itself), no remote plugins, middleware or metrics.
 */
function browserSettings(writeKey: string, origin: { host: string; protocol: 'http' | 'https' }) {
  return {
    integrations: { 'Segment.io': { apiKey: writeKey, apiHost: `${origin.host}/v1`, protocol: origin.protocol } },
    plan: { track: { __default: { enabled: true } } },
    remotePlugins: [],
    enabledMiddleware: {},
    metrics: { sampleRate: 0 },
    middlewareSettings: {},
  };
}

/**
 * Segment's HTTP Tracking API: `POST /v1/batch` and the single calls (`/v1/track`...), with the
 * one-letter paths analytics-next posts to, and the browser settings its loader fetches. Messages
 * are mapped to events (map-segment.ts) and stored through `telemetry.ingestBatch` itself.
 */
export function segmentRoutes(deps: AdapterDeps) {
  const { services, config } = deps;
  const app = new Hono<SegmentEnv>();

  // `import` is the Tracking API's older name for batch; one letter is what analytics-next posts to.
  const routes: [path: string, single: SegmentMessageType | undefined][] = [
    ['batch', undefined],
    ['import', undefined],
    ['b', undefined],
  ];
  for (const type of SEGMENT_MESSAGE_TYPES) routes.push([type, type], [type.charAt(0), type]);

  for (const [path, single] of routes) {
    app.post(`/v1/${path}`, async (c) => {
      const receivedAt = new Date();
      // Read before any database work: an over-long chunked body is answered 413 by the body limit.
      const body = new Uint8Array(await c.req.arrayBuffer());
      let parsed: unknown;
      let malformed: SegmentBodyError | undefined;
      try {
        parsed = parseSegmentBody(body);
      } catch (error) {
        if (!(error instanceof SegmentBodyError)) throw error;
        malformed = error;
      }
      const apiKey = headerWriteKey(c.req.header('authorization')) ?? bodyWriteKey(parsed);
      if (!apiKey) return failure(c, 401, 'Missing write key: send "Authorization: Basic base64(<ingest key>:)" or "writeKey" in the body');
      const requestId = c.get('requestId');
      try {
        const key = await adapterKey(services, apiKey, 'Segment');
        if (!key.ok) return failure(c, key.status, key.message);
        let request: ReturnType<typeof readSegmentRequest>;
        try {
          if (malformed) throw malformed;
          request = readSegmentRequest(parsed, single, config.limits.maxBatchEvents);
        } catch (error) {
          if (!(error instanceof SegmentBodyError)) throw error;
          refuseRequest(deps, { adapter: 'segment', workspaceId: key.workspaceId, requestId, message: error.message });
          return failure(c, 400, error.message);
        }
        const { events, recordIndexes, refused } = mapSegmentMessages(request, { workspaceId: key.workspaceId, bodyHash: sha256Hex(body), receivedAt });
        await deliverEvents(deps, { adapter: 'segment', requestId, apiKey, workspaceId: key.workspaceId, events, recordIndexes, refusedBeforeIngest: refused });
        // Segment's SDKs read nothing but the status: refused messages are counted and kept for
        // inspection (telemetry.adapterRejections), not answered.
        return c.json({ success: true }, 200);
      } catch (error) {
        return answerError(c, error);
      }
    });
  }

  app.get('/v1/projects/:writeKey/settings', (c) => {
    const writeKey = c.req.param('writeKey');
    if (writeKey.length > MAX_WRITE_KEY_LENGTH) return failure(c, 404, 'No such project');
    // The key is echoed as Segment's CDN does, and checked when events arrive: answering needs no
    // database. It is a credential, so no shared cache keeps the answer.
    return c.json(browserSettings(writeKey, publicOrigin(c)), 200, { 'Cache-Control': 'private, max-age=300' });
  });

  /** A refusal of the ingest procedure as Segment's SDKs read it: analytics-node waits Retry-After on 429 and backs off on 5xx; analytics-next likewise. */
  function answerError(c: HonoContext<SegmentEnv>, error: unknown) {
    const failed = callFailure(deps, error, { adapter: 'segment', requestId: c.get('requestId'), path: c.req.path });
    if (failed.internal) return failure(c, 500, 'Internal server error');
    return failure(c, failed.status, failed.message, failed.retryAfter);
  }

  return app;
}

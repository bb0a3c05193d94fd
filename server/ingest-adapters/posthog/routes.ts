import { randomUUID } from 'node:crypto';
import { type Context as HonoContext, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isPlainObject } from '../../services/events/json.ts';
import type { EventInput } from '../../services/events/schemas.ts';
import { bearerToken } from '../../services/keys/keys.ts';
import { adapterKey, type AdapterDeps, callFailure, deliverEvents, quotedRefusals, type RefusedReceipt, refuseRequest } from '../deliver.ts';
import { sha256Hex } from '../deterministic-ids.ts';
import { type CaptureContext, mapPosthogRecord, parsePosthogTime, recordKey } from './map-posthog.ts';
import { type CaptureBody, CaptureBodyError, readCaptureBody } from './read-capture-body.ts';

type PosthogEnv = { Variables: { requestId: string } };

/** Where PostHog SDKs send events: posthog-node `/batch/`, posthog-js `/e/`; `/i/v0/e/` and `/capture/` are PostHog's other names for it. */
const CAPTURE_PATHS = ['/batch', '/e', '/i/v0/e', '/capture'].flatMap((path) => [path, `${path}/`]);
/** Feature flags (`/flags/?v=2`, formerly `/decide/`): answered empty, so the SDKs run without errors. */
const FLAGS_PATHS = ['/flags', '/decide'].flatMap((path) => [path, `${path}/`]);
/** posthog-js's remote config: `/array/<token>/config` (JSON) and `config.js` (a script). */
const REMOTE_CONFIG_PATHS = '/array/*';

/** The request paths whose bodies PostHog SDKs send: the same body bounds as every face apply to them. */
export const POSTHOG_BODY_PATHS: readonly string[] = [...CAPTURE_PATHS, ...FLAGS_PATHS, REMOTE_CONFIG_PATHS];

/** What PostHog's capture answers; posthog-js counts only exactly 200 as sent. */
const CAPTURED = { status: 1 } as const;
/** Tokens accepted in a remote-config path: a key's characters, nothing a script could be built from. */
const TOKEN_IN_PATH = /^[\w.-]{1,200}$/;

/** The error types of PostHog's capture answers, by status. */
const ERROR_TYPES: Partial<Record<number, string>> = { 401: 'authentication_error', 403: 'authentication_error', 503: 'server_error', 500: 'server_error' };

/** A capture request's records and what it says about itself, or why its shape is not one. */
type CaptureEnvelope = { ok: true; records: unknown[]; token: string | undefined; sentAt: unknown } | { ok: false; token: string | undefined; message: string };

const stringOf = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);

/** `{ api_key, batch, sent_at }` (posthog-node, posthog-js), an array of events, or one event. */
function captureEnvelope(payload: unknown): CaptureEnvelope {
  if (Array.isArray(payload)) return { ok: true, records: payload, token: recordKey(payload[0]), sentAt: undefined };
  if (!isPlainObject(payload)) return { ok: false, token: undefined, message: 'Expected a JSON object or array of events' };
  const token = stringOf(payload['api_key']) ?? stringOf(payload['token']);
  if (payload['batch'] !== undefined) {
    if (!Array.isArray(payload['batch'])) return { ok: false, token, message: '"batch" must be an array of events' };
    return { ok: true, records: payload['batch'], token: token ?? recordKey(payload['batch'][0]), sentAt: payload['sent_at'] };
  }
  if (payload['event'] !== undefined) return { ok: true, records: [payload], token: token ?? recordKey(payload), sentAt: payload['sent_at'] };
  return { ok: false, token, message: 'Expected { "api_key", "batch": [events] }, an array of events, or one event with "event"' };
}

function refusalSummary(refused: readonly RefusedReceipt[]): string[] {
  return quotedRefusals(refused, 'event').quoted;
}

/** The empty answer of `/flags` (v2: `flags`) that also reads as the older shape (`featureFlags`, `featureFlagPayloads`). */
function emptyFlags() {
  return { flags: {}, featureFlags: {}, featureFlagPayloads: {}, errorsWhileComputingFlags: false, quotaLimited: [], requestId: randomUUID() };
}

/**
 * posthog-js's remote config: the compressions this adapter reads (without `supportedCompression`
 * posthog-js stops compressing), autocapture left to the page's own setting (posthog-js starts it
 * only once the server has said `autocapture_opt_out` either way), and none of PostHog's other
 * products (recordings, heatmaps, surveys), which this service does not store.
 */
const REMOTE_CONFIG = {
  supportedCompression: ['gzip', 'gzip-js'],
  autocapture_opt_out: false,
  sessionRecording: false,
  heatmaps: false,
  surveys: false,
  siteApps: [],
} as const;

/**
 * PostHog's capture API: `POST /batch/`, `/e/`, `/i/v0/e/` and `/capture/` (and `GET /e/?data=`),
 * in every encoding the SDKs use. Events are mapped and stored through `telemetry.ingestBatch`
 * itself, so they get its key check, rate limits, validation and group commit, and are
 * acknowledged only once committed. Feature flags and remote config are answered empty.
 */
export function posthogRoutes(deps: AdapterDeps) {
  const { config, services } = deps;
  const app = new Hono<PosthogEnv>();

  function failure(c: HonoContext<PosthogEnv>, status: ContentfulStatusCode, code: string, detail: string, retryAfter?: string) {
    const headers: Record<string, string> = retryAfter === undefined ? {} : { 'Retry-After': retryAfter };
    return c.json({ type: ERROR_TYPES[status] ?? 'validation_error', code, detail }, status, headers);
  }

  /** A body that cannot be read: 413 when too large, else 400, counted against the workspace when its key is known and good. */
  async function refuseBody(c: HonoContext<PosthogEnv>, apiKey: string | undefined, error: CaptureBodyError) {
    if (error.status === 413) return failure(c, 413, 'payload_too_large', error.message);
    if (apiKey) {
      const key = await adapterKey(services, apiKey, 'PostHog');
      if (!key.ok) return failure(c, key.status, key.status === 401 ? 'invalid_api_key' : 'forbidden', key.message);
      refuseRequest(deps, { adapter: 'posthog', workspaceId: key.workspaceId, requestId: c.get('requestId'), message: error.message });
    }
    return failure(c, 400, 'invalid_payload', error.message);
  }

  async function capture(c: HonoContext<PosthogEnv>) {
    const receivedAt = new Date();
    const bearer = bearerToken(c.req.header('authorization'));
    const query = new URL(c.req.url).searchParams;
    // Read before any database work: an over-long chunked body is answered 413 by the body limit.
    const body = c.req.method === 'GET' ? new Uint8Array() : new Uint8Array(await c.req.arrayBuffer());
    try {
      let decoded: CaptureBody;
      try {
        decoded = await readCaptureBody({ body, contentType: c.req.header('content-type'), query, maxBytes: config.limits.maxBodyBytes });
      } catch (error) {
        if (error instanceof CaptureBodyError) return await refuseBody(c, bearer, error);
        throw error;
      }
      const envelope = captureEnvelope(decoded.payload);
      const apiKey = envelope.token ?? bearer;
      if (!envelope.ok) return await refuseBody(c, apiKey, new CaptureBodyError(400, envelope.message));
      if (!apiKey) return failure(c, 401, 'missing_api_key', 'Missing API key: send "api_key" (the project token) set to an ingest key bound to a workspace');
      const key = await adapterKey(services, apiKey, 'PostHog');
      if (!key.ok) return failure(c, key.status, key.status === 401 ? 'invalid_api_key' : 'forbidden', key.message);

      const sentAt = parsePosthogTime(envelope.sentAt ?? query.get('sent_at') ?? query.get('_') ?? undefined);
      const context: CaptureContext = { workspaceId: key.workspaceId, bodyHash: sha256Hex(Buffer.from(decoded.text)), apiKey, sentAt, receivedAt };
      const events: EventInput[] = [];
      const recordIndexes: number[] = [];
      const refusedBeforeIngest: RefusedReceipt[] = [];
      envelope.records.forEach((record, index) => {
        const mapped = mapPosthogRecord(record, index, context);
        if (!mapped.ok) {
          refusedBeforeIngest.push({ index, status: 'rejected', code: mapped.code, message: mapped.message, path: mapped.path });
          return;
        }
        for (const event of mapped.events) {
          events.push(event);
          recordIndexes.push(index);
        }
      });
      const { refused } = await deliverEvents(deps, {
        adapter: 'posthog',
        requestId: c.get('requestId'),
        apiKey,
        workspaceId: key.workspaceId,
        events,
        recordIndexes,
        refusedBeforeIngest,
      });
      // PostHog answers 200 whatever became of single events; the refused are counted and named here for whoever looks.
      return c.json(refused.length > 0 ? { ...CAPTURED, refused: refused.length, errors: refusalSummary(refused) } : CAPTURED, 200);
    } catch (error) {
      return answerError(c, error);
    }
  }

  /**
   * A refusal of the ingest procedure in PostHog's terms. posthog-js drops every 4xx, 429
   * included, and retries 5xx: a rate limit is answered 503 with Retry-After, like an outage.
   */
  function answerError(c: HonoContext<PosthogEnv>, error: unknown) {
    const failed = callFailure(deps, error, { adapter: 'posthog', requestId: c.get('requestId'), path: c.req.path });
    if (failed.internal) return failure(c, 500, 'internal_error', 'Internal server error');
    return failure(c, failed.code === 'TOO_MANY_REQUESTS' ? 503 : failed.status, failed.code.toLowerCase(), failed.message, failed.retryAfter);
  }

  for (const path of CAPTURE_PATHS) {
    app.post(path, capture);
    app.get(path, capture);
  }
  for (const path of FLAGS_PATHS) app.on(['GET', 'POST'], path, (c) => c.json(emptyFlags()));

  app.get('/array/:token/config', (c) => (TOKEN_IN_PATH.test(c.req.param('token')) ? c.json(REMOTE_CONFIG) : failure(c, 404, 'not_found', 'No such token')));
  app.get('/array/:token/config.js', (c) => {
    const token = c.req.param('token');
    if (!TOKEN_IN_PATH.test(token)) return failure(c, 404, 'not_found', 'No such token');
    const script = `(function(){var w=window;w._POSTHOG_REMOTE_CONFIG=w._POSTHOG_REMOTE_CONFIG||{};w._POSTHOG_REMOTE_CONFIG[${JSON.stringify(token)}]={config:${JSON.stringify(REMOTE_CONFIG)},siteApps:[]};})();`;
    return c.body(script, 200, { 'Content-Type': 'text/javascript; charset=utf-8' });
  });

  return app;
}

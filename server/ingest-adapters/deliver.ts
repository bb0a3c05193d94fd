import { TRPCError, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Config } from '../config.ts';
import { retryAfterHeader } from '../http/face-options.ts';
import type { Logger } from '../logger.ts';
import { appRouter } from '../routers/index.ts';
import type { EventInput, EventReceipt } from '../services/events/schemas.ts';
import type { AdapterName } from '../services/rejections/schemas.ts';
import { createContextInner, type Services } from '../trpc/context.ts';
import { toTRPCError } from '../trpc/errors.ts';
import { createCallerFactory } from '../trpc/init.ts';

/** What every ingest adapter's routes are built from. */
export interface AdapterDeps {
  config: Config;
  services: Services;
  logger: Logger;
}

export type RefusedReceipt = Extract<EventReceipt, { status: 'rejected' }>;

/** The key an adapter was called with, once it is known to be allowed to send this workspace's events. */
export type AdapterKey = { ok: true; workspaceId: string } | { ok: false; status: 401 | 403; message: string };

/**
 * Foreign SDKs name no workspace in their records, and the ids derived for them include it: an
 * adapter needs an ingest key bound to exactly one workspace.
 */
export async function adapterKey(services: Services, apiKey: string | undefined, formatName: string): Promise<AdapterKey> {
  if (!apiKey) return { ok: false, status: 401, message: 'Missing API key: send an ingest key bound to a workspace' };
  const key = await services.keys.authenticate(apiKey);
  if (!key) return { ok: false, status: 401, message: 'Unknown or revoked API key' };
  if (key.kind !== 'ingest' && key.kind !== 'admin') return { ok: false, status: 403, message: `This ${key.kind} key may not send events` };
  if (!key.workspaceId) {
    return { ok: false, status: 403, message: `${formatName} records name no workspace: use an ingest key bound to one workspace` };
  }
  return { ok: true, workspaceId: key.workspaceId };
}

export interface Delivery {
  adapter: AdapterName;
  requestId: string;
  apiKey: string;
  workspaceId: string;
  /** The mapped events, in the order of the request's records. */
  events: EventInput[];
  /** The request record each event came from, when some records were refused before ingest (else event i is record i). */
  recordIndexes?: number[];
  /** Records the adapter could not map at all, already refused (their `index` is the record's). */
  refusedBeforeIngest?: RefusedReceipt[];
}

export interface DeliveryOutcome {
  stored: number;
  duplicates: number;
  /** Every record not stored, with why, ordered by index. */
  refused: RefusedReceipt[];
}

const createCaller = createCallerFactory(appRouter);

/**
 * Stores an adapter's events through `telemetry.ingestBatch` itself, so they get its key check,
 * rate limits, validation and group commit, and are acknowledged only once committed. A refusal of
 * the whole call (401, 429, 503...) is thrown as the procedure's TRPCError for the adapter to
 * answer in its own terms.
 */
export async function deliverEvents(deps: AdapterDeps, delivery: Delivery): Promise<DeliveryOutcome> {
  const { config } = deps;
  const caller = createCaller(createContextInner({ ...deps, requestId: delivery.requestId, apiKey: delivery.apiKey }));
  const refused: RefusedReceipt[] = [...(delivery.refusedBeforeIngest ?? [])];
  let stored = 0;
  let duplicates = 0;
  // One ingestBatch call per batch the service accepts; a retry of the whole request after a
  // failure part-way stores nothing twice, ids being derived from the request.
  for (let start = 0; start < delivery.events.length; start += config.limits.maxBatchEvents) {
    const result = await caller.telemetry.ingestBatch({ events: delivery.events.slice(start, start + config.limits.maxBatchEvents) });
    stored += result.accepted;
    duplicates += result.duplicates;
    for (const receipt of result.receipts) {
      if (receipt.status !== 'rejected') continue;
      const eventIndex = receipt.index + start;
      refused.push({ ...receipt, index: delivery.recordIndexes?.[eventIndex] ?? eventIndex });
    }
  }
  refused.sort((a, b) => a.index - b.index);
  deps.services.adapterRejections.report({
    workspaceId: delivery.workspaceId,
    adapter: delivery.adapter,
    requestId: delivery.requestId,
    refusals: refused.map((receipt) => ({ reason: receipt.code, message: receipt.message, path: receipt.path, recordIndex: receipt.index })),
  });
  return { stored, duplicates, refused };
}

/**
 * A request refused whole (400: unreadable body, wrong shape) by an adapter whose SDK drops such
 * answers without a word: counted and kept for inspection like a refused record.
 */
export function refuseRequest(deps: AdapterDeps, refusal: { adapter: AdapterName; workspaceId: string; requestId: string; message: string }): void {
  deps.services.adapterRejections.report({
    workspaceId: refusal.workspaceId,
    adapter: refusal.adapter,
    requestId: refusal.requestId,
    refusals: [{ reason: 'malformed_request', message: refusal.message, path: '', recordIndex: null }],
  });
}

/** Refusals of the ingest procedure an adapter answers in its SDK's terms; anything else is an internal error. */
const ANSWERED_CODES: ReadonlySet<TRPC_ERROR_CODE_KEY> = new Set([
  'UNAUTHORIZED',
  'FORBIDDEN',
  'BAD_REQUEST',
  'PAYLOAD_TOO_LARGE',
  'TOO_MANY_REQUESTS',
  'SERVICE_UNAVAILABLE',
]);

/** Why a whole call of an adapter failed: a refusal to answer, or an internal error (logged, answered without detail). */
export type CallFailure =
  | {
      internal: false;
      code: TRPC_ERROR_CODE_KEY;
      /** The status tRPC gives this refusal; an adapter may answer another its SDK acts on better. */
      status: ContentfulStatusCode;
      message: string;
      /** Set when a retry may succeed (rate limits, overload, database outages): the Retry-After value. */
      retryAfter: string | undefined;
    }
  | { internal: true };

/**
 * What an error thrown while an adapter called the ingest procedure means for the SDK: the one
 * place the adapters learn which refusals they answer, which are worth a retry and after how long,
 * and that anything else is logged with its cause and answered as an internal error.
 */
export function callFailure(deps: AdapterDeps, error: unknown, where: { adapter: AdapterName; requestId: string; path: string }): CallFailure {
  const mapped = error instanceof TRPCError ? error : toTRPCError(error);
  if (!ANSWERED_CODES.has(mapped.code)) {
    deps.logger.error('ingest adapter call failed', { ...where, error: mapped.cause ?? mapped });
    return { internal: true };
  }
  const retryable = mapped.code === 'TOO_MANY_REQUESTS' || mapped.code === 'SERVICE_UNAVAILABLE';
  return {
    internal: false,
    code: mapped.code,
    status: getHTTPStatusCodeFromError(mapped) as ContentfulStatusCode,
    message: mapped.message,
    retryAfter: retryable ? (retryAfterHeader(mapped) ?? '1') : undefined,
  };
}

/** Most refusals quoted in one answer: enough to see what is wrong, bounded whatever the batch. */
const MAX_QUOTED_REFUSALS = 5;

/** The first refusals as `<noun> <index>: <message> (<path>)`, for answers that name them (OTLP partialSuccess, PostHog's errors). */
export function quotedRefusals(refused: readonly RefusedReceipt[], noun: string): { quoted: string[]; more: boolean } {
  return {
    quoted: refused.slice(0, MAX_QUOTED_REFUSALS).map((receipt) => `${noun} ${receipt.index}: ${receipt.message}${receipt.path ? ` (${receipt.path})` : ''}`),
    more: refused.length > MAX_QUOTED_REFUSALS,
  };
}

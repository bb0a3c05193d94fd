import { TRPCClientError } from '@trpc/client';
import superjson, { type SuperJSONResult } from 'superjson';
import type { FetchFunction } from '../index.ts';
import type { QueuedEvent } from '../queue-storage.ts';
import { HttpStatusError } from '../retry-policy.ts';
import { serializeInput } from '../transformer.ts';
import { safeJson } from './json.ts';
import type { EventQueue } from './queue.ts';
import type { IngestBatchInput, IngestBatchResult, Sender } from './sender.ts';

/**
 * Keepalive requests may carry at most 64 KiB in all, for the whole page; stay well under it so
 * several batches fit.
 */
const KEEPALIVE_BATCH_BYTES = 30 * 1024;
/** The browser allows 64 KiB of keepalive bodies in flight for the whole page; keep within it. */
const KEEPALIVE_TOTAL_BYTES = 60 * 1024;

/** Keepalive request bodies not yet answered, for the whole page (the browser's limit is per page). */
let keepaliveBytesInFlight = 0;
const encoder = new TextEncoder();

/**
 * `ingestBatch` as one plain keepalive POST, started synchronously: while a page goes away there
 * is no later tick for the typed client's batching to send in. Same procedure, same wire format.
 */
export function createKeepalivePost(options: { url: string; apiKey: string; fetch: FetchFunction }) {
  const endpoint = `${options.url.replace(/\/+$/, '')}/trpc/telemetry.ingestBatch`;
  return async function postWithKeepalive(input: IngestBatchInput): Promise<IngestBatchResult> {
    const response = await options.fetch(endpoint, {
      method: 'POST',
      keepalive: true,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${options.apiKey}` },
      body: JSON.stringify(serializeInput(input)),
    });
    const body = (await response.json().catch(() => ({}))) as { result?: { data: SuperJSONResult }; error?: SuperJSONResult };
    if (response.ok && body.result) return superjson.deserialize<IngestBatchResult>(body.result.data);
    // A tRPC error carries `json`; anything else (a proxy, the body-size guard) only its status.
    if (body.error && 'json' in body.error) throw TRPCClientError.from({ error: superjson.deserialize(body.error) });
    throw new HttpStatusError(response.status);
  };
}

/**
 * The page is going away: send everything waiting now, in keepalive requests small enough for the
 * browser's limit. Events stay queued (and persisted) until answered, so if the page dies first
 * the next load sends them again and the service stores them once.
 */
export function createPageHideFlush(options: { queue: EventQueue; sender: Sender; maxBatchSize: number; retryLater: (delayMs: number) => void }) {
  const sendBeforeUnload = (batch: QueuedEvent[]) => {
    const batchBytes = batch.reduce((sum, item) => sum + utf8Length(safeJson(item.event)) + 1, 0);
    keepaliveBytesInFlight += batchBytes;
    void options.sender.send(batch, true).then((retryInMs) => {
      keepaliveBytesInFlight -= batchBytes;
      // The page stayed (it was only hidden) and the send failed: retry like any other send.
      if (retryInMs !== undefined) options.retryLater(retryInMs);
    });
  };

  return function flushOnPageHide() {
    const waiting = options.queue.waiting();
    if (waiting.length === 0) return;
    let batch: QueuedEvent[] = [];
    let bytes = 0;
    // The budget is the page's: visibilitychange and pagehide may both fire, each sending.
    let total = keepaliveBytesInFlight;
    for (const item of waiting) {
      const size = utf8Length(safeJson(item.event)) + 1;
      // What does not fit in the browser's keepalive budget stays queued (and persisted) for the next load.
      if (total + size > KEEPALIVE_TOTAL_BYTES) break;
      if (batch.length > 0 && (bytes + size > KEEPALIVE_BATCH_BYTES || batch.length >= options.maxBatchSize)) {
        sendBeforeUnload(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(item);
      bytes += size;
      total += size;
    }
    if (batch.length > 0) sendBeforeUnload(batch);
  };
}

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

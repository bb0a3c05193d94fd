import type { EventInput, EventReceipt, JsonObject } from '../client/index.ts';
import type { TelemetryClient } from './command.ts';
import { classifyFailure } from '../client/retry-policy.ts';
import { cliRetryDelayMs, sleep, type RetryPolicy } from './retry.ts';

export interface PendingEvent {
  event: JsonObject;
  /** The NDJSON line it came from; undefined for an event built from flags. */
  line: number | undefined;
}

export interface SentEvent {
  pending: PendingEvent;
  receipt: EventReceipt;
}

export interface RetryNotice {
  attempt: number;
  delayMs: number;
  error: unknown;
}

/**
 * Sends events with `telemetry.ingestBatch`. Every event carries its id from the start, so a retry
 * after a lost answer stores nothing twice (the service answers `duplicate`). A batch the service
 * finds too large (413: body size or the key's whole rate budget) is split in half and later
 * batches stay at the size that worked.
 */
export function createBatchSender(options: {
  client: TelemetryClient;
  batchSize: number;
  retryPolicy: RetryPolicy;
  onRetry?: (notice: RetryNotice) => void;
  wait?: (ms: number) => Promise<void>;
}) {
  const wait = options.wait ?? sleep;
  let largestBatch = options.batchSize;

  async function sendWithRetries(batch: readonly PendingEvent[]): Promise<SentEvent[]> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const result = await options.client.telemetry.ingestBatch.mutate({
          // Sent fresh on every attempt: the service corrects each createdAt by (receivedAt - sentAt).
          sentAt: new Date(),
          // The service validates each item on its own and answers a receipt per item (with the field
          // path of any problem), so lines are forwarded as read rather than checked twice.
          events: batch.map((pending) => pending.event as unknown as EventInput),
        });
        return result.receipts.flatMap((receipt) => {
          const pending = batch[receipt.index];
          return pending ? [{ pending, receipt }] : [];
        });
      } catch (error) {
        if (classifyFailure(error).status === 413 && batch.length > 1) {
          const half = Math.ceil(batch.length / 2);
          largestBatch = Math.min(largestBatch, half);
          return [...(await sendWithRetries(batch.slice(0, half))), ...(await sendWithRetries(batch.slice(half)))];
        }
        const delayMs = cliRetryDelayMs(error, attempt, options.retryPolicy);
        if (delayMs === undefined) throw error;
        options.onRetry?.({ attempt: attempt + 1, delayMs, error });
        await wait(delayMs);
      }
    }
  }

  return {
    async send(batch: readonly PendingEvent[]): Promise<SentEvent[]> {
      const sent: SentEvent[] = [];
      for (let start = 0; start < batch.length; ) {
        // The end is fixed before the call: a split inside it covers the whole slice.
        const end = Math.min(batch.length, start + largestBatch);
        sent.push(...(await sendWithRetries(batch.slice(start, end))));
        start = end;
      }
      return sent;
    },
  };
}

import type { EventInput, FetchFunction, TelemetryClient, TelemetryInputs, TelemetryOutputs } from '../index.ts';
import type { QueuedEvent } from '../queue-storage.ts';
import { classifyFailure, isRetryable, RETRY_RULES, retryDelayMs, type Backoff } from '../retry-policy.ts';
import type { TrackerProblem } from '../tracker.ts';
import type { EventQueue } from './queue.ts';

export type IngestBatchInput = TelemetryInputs['telemetry']['ingestBatch'];
export type IngestBatchResult = TelemetryOutputs['telemetry']['ingestBatch'];

/** A request that hangs (dead network, stalled proxy) fails after `timeoutMs` and is retried. */
export function withRequestTimeout(fetch: FetchFunction, timeoutMs: number): FetchFunction {
  return (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = !init?.signal ? timeout : typeof AbortSignal.any === 'function' ? AbortSignal.any([init.signal, timeout]) : init.signal;
    return fetch(input, { ...init, signal });
  };
}

export type Sender = ReturnType<typeof createSender>;

/**
 * Sends one batch and decides what its answer means: settled (stored, or refused for good and
 * reported), or to be retried after a delay (network, timeout, 429, 5xx; Retry-After respected).
 * A 413 halves the batch size from then on.
 */
export function createSender(options: {
  client: TelemetryClient;
  /** The same call as one keepalive request, for a page going away. */
  postWithKeepalive: (input: IngestBatchInput) => Promise<IngestBatchResult>;
  queue: EventQueue;
  maxBatchSize: number;
  backoff: Backoff;
  random: () => number;
  report: (problem: TrackerProblem) => void;
}) {
  const { client, queue, report } = options;
  /** Halved when the service answers 413 (its body limit is smaller than our batches). */
  let batchSize = options.maxBatchSize;
  /** Failed sends in a row; the backoff grows with it. */
  let attempt = 0;

  /** One request; answers the delay before a retry, or undefined when the batch is settled. */
  async function send(batch: readonly QueuedEvent[], keepalive = false): Promise<number | undefined> {
    const events = batch.map((item) => item.event);
    queue.markInFlight(events);
    try {
      const input = { events, sentAt: new Date() };
      const result = keepalive ? await options.postWithKeepalive(input) : await client.telemetry.ingestBatch.mutate(input);
      attempt = 0;
      for (const receipt of result.receipts) {
        if (receipt.status === 'rejected') {
          report({ kind: 'rejected', events: [events[receipt.index]!], code: receipt.code, message: receipt.message, path: receipt.path });
        }
      }
      queue.settle(events);
      return undefined;
    } catch (error) {
      return failed(events, error);
    } finally {
      queue.release(events);
    }
  }

  function failed(events: EventInput[], error: unknown): number | undefined {
    const failure = classifyFailure(error);
    if (failure.status === 413 && events.length > 1) {
      // The service refused the body as too large: send smaller batches from now on.
      batchSize = Math.max(1, Math.floor(events.length / 2));
      return 0;
    }
    // Any other 4xx will fail the same way again: those events are reported and dropped.
    if (!isRetryable(failure, RETRY_RULES.tracker)) {
      report({ kind: 'rejected', events, code: failure.code ?? String(failure.status), message: failure.message });
      queue.settle(events);
      return undefined;
    }
    attempt += 1;
    const delayMs = retryDelayMs(attempt, options.backoff, failure, options.random);
    report({ kind: 'retrying', attempt, delayMs, message: failure.message });
    return delayMs;
  }

  return { send, batchSize: () => batchSize };
}

export type SendLoop = ReturnType<typeof createSendLoop>;

/**
 * Sends what waits, batch after batch, one request at a time, until the queue is empty or a send
 * must be retried later; then a timer brings it back. Stopping ends it for good.
 */
export function createSendLoop(queue: EventQueue, sender: Sender) {
  let retryAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  function schedule(delayMs: number) {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flushNow();
    }, delayMs);
    // In Node.js a pending send must not keep the process alive; shutdown() flushes explicitly.
    (timer as { unref?: () => void }).unref?.();
  }

  function flushNow(): Promise<void> {
    if (running) return running;
    // `.finally` runs after this assignment even when the loop ends without awaiting anything.
    const loop = sendWaiting().finally(() => {
      if (running === loop) running = undefined;
    });
    running = loop;
    return loop;
  }

  async function sendWaiting(): Promise<void> {
    while (!stopped) {
      if (Date.now() < retryAt) {
        // Backing off: come back when the retry is due.
        schedule(retryAt - Date.now());
        return;
      }
      const batch = queue.nextBatch(sender.batchSize());
      if (batch.length === 0) return;
      const retryInMs = await sender.send(batch);
      if (retryInMs !== undefined) {
        retryLater(retryInMs);
        return;
      }
    }
  }

  function retryLater(delayMs: number) {
    retryAt = Date.now() + delayMs;
    schedule(delayMs);
  }

  return {
    schedule,
    flushNow,
    retryLater,
    /** The network is back: the backoff is over. */
    retryNow() {
      retryAt = 0;
      void flushNow();
    },
    retryAt: () => retryAt,
    stopped: () => stopped,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}

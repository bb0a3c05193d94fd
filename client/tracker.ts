/**
 * The tracker: what apps use instead of calling `ingest` for every click. `track()` never blocks
 * and never throws; events wait in a bounded queue (persisted in browsers) and go out in batches
 * with `ingestBatch`, retried until the service has them. Each event gets its UUIDv7 id and its
 * `createdAt` when it is tracked, so a retry is stored once and clock skew is corrected from the
 * batch's `sentAt`.
 *
 * This module composes the parts: the bounded queue (tracker/queue.ts), sending with retries and
 * its loop (tracker/sender.ts), keepalive sends for a page going away (tracker/keepalive.ts) and
 * the page's events (tracker/page-lifecycle.ts).
 */
import { createTelemetryClient, type EventInput, type FetchFunction, type JsonObject, type Source } from './index.ts';
import { createBrowserQueueStorage, type QueueStorage } from './queue-storage.ts';
import { safeJson } from './tracker/json.ts';
import { createKeepalivePost, createPageHideFlush } from './tracker/keepalive.ts';
import { watchPageLifecycle } from './tracker/page-lifecycle.ts';
import { createEventQueue } from './tracker/queue.ts';
import { createSender, createSendLoop, withRequestTimeout } from './tracker/sender.ts';
import { uuidv7 } from './uuid7.ts';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * What `track()` takes: an event as the router types it (so `perf.metric` needs a numeric `value`
 * and a `unit`), with `source`, `id` and `createdAt` filled in by the tracker unless given.
 */
export type TrackInput = DistributiveOmit<EventInput, 'source' | 'id' | 'createdAt'> & {
  source?: Source | undefined;
  id?: string | undefined;
  createdAt?: Date | string | undefined;
};

export type TrackerProblem =
  /** The service refused these events for good (a 4xx, or a per-event rejection); they are not retried. */
  | { kind: 'rejected'; events: EventInput[]; code: string; message: string; path?: string }
  /** The queue was full: the oldest waiting events were dropped. `total` counts every drop so far. */
  | { kind: 'dropped'; count: number; total: number }
  /** A send failed and will be retried (network, 429, 5xx). */
  | { kind: 'retrying'; attempt: number; delayMs: number; message: string }
  /** The browser's storage refused to keep the queue (quota, privacy mode); it stays in memory only. */
  | { kind: 'storage'; message: string };

export interface TrackerOptions {
  /** Base URL of the service, e.g. `https://telemetry.example.com`. */
  url: string;
  /** An ingest key. */
  apiKey: string;
  /** Where events come from: `web`, `mobile`, `backend`, `cli` or `extension`. */
  source: Source;
  /** Fields added to every event unless it sets them; `metadata` is merged under the event's own. */
  defaults?: { workspaceId?: string | null | undefined; userId?: string | null | undefined; metadata?: JsonObject | undefined } | undefined;
  /** Send when this many events wait (default 20). */
  flushAt?: number | undefined;
  /** Send at most this long after an event is tracked (default 5000 ms). */
  flushIntervalMs?: number | undefined;
  /** Most events per request (default 100; the service accepts up to its MAX_BATCH_EVENTS). */
  maxBatchSize?: number | undefined;
  /** Most events waiting; past it the oldest are dropped and reported (default 1000). */
  maxQueueSize?: number | undefined;
  /** Share of events kept, 0..1 (default 1). Error events are always kept. */
  sampleRate?: number | undefined;
  /** Retry delays: exponential from `baseDelayMs` to `maxDelayMs`, with full jitter; Retry-After wins when longer. */
  retry?: { baseDelayMs?: number | undefined; maxDelayMs?: number | undefined } | undefined;
  /** Where the queue survives reloads. Defaults to localStorage in browsers, nothing in Node.js. */
  storage?: QueueStorage | null | undefined;
  /** Told about dropped, rejected and retried events. Never throws into the app. */
  onError?: ((problem: TrackerProblem) => void) | undefined;
  /** A fetch implementation (defaults to the global one). */
  fetch?: FetchFunction | undefined;
  /** Flush on `pagehide` / hidden `visibilitychange` with keepalive requests (default true in browsers). */
  flushOnPageHide?: boolean | undefined;
  /** A request not answered by then fails and is retried (default 30000 ms). */
  requestTimeoutMs?: number | undefined;
  /** Random numbers for sampling and jitter (tests pin it). */
  random?: (() => number) | undefined;
}

export interface FlushResult {
  /** Events still waiting (the service was unreachable until the deadline). */
  remaining: number;
}

export type Tracker = ReturnType<typeof createTracker>;

export function createTracker(options: TrackerOptions) {
  const flushAt = options.flushAt ?? 20;
  const flushIntervalMs = options.flushIntervalMs ?? 5000;
  const maxBatchSize = options.maxBatchSize ?? 100;
  const sampleRate = options.sampleRate ?? 1;
  const random = options.random ?? Math.random;
  const report = (problem: TrackerProblem) => {
    try {
      options.onError?.(problem);
    } catch {
      // A faulty hook must not break tracking.
    }
  };

  const storage = options.storage === undefined ? createBrowserQueueStorage({ onError: (message) => report({ kind: 'storage', message }) }) : options.storage;
  const queue = createEventQueue({ storage, maxQueueSize: options.maxQueueSize ?? 1000, report });
  const baseFetch: FetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const fetch = withRequestTimeout(baseFetch, options.requestTimeoutMs ?? 30_000);
  const sender = createSender({
    client: createTelemetryClient({ url: options.url, apiKey: options.apiKey, fetch, maxBatchItems: 1 }),
    postWithKeepalive: createKeepalivePost({ url: options.url, apiKey: options.apiKey, fetch }),
    queue,
    maxBatchSize,
    backoff: { baseMs: options.retry?.baseDelayMs ?? 1000, maxMs: options.retry?.maxDelayMs ?? 60_000 },
    random,
    report,
  });
  const loop = createSendLoop(queue, sender);
  const detachFromPage = watchPageLifecycle({
    flushOnPageHide: options.flushOnPageHide ?? true,
    onHide: createPageHideFlush({ queue, sender, maxBatchSize, retryLater: loop.retryLater }),
    onOnline: loop.retryNow,
  });

  function track(input: TrackInput): string | undefined {
    if (loop.stopped()) return undefined;
    if (input.eventType !== 'error' && sampleRate < 1 && random() >= sampleRate) return undefined;
    const now = Date.now();
    const { defaults } = options;
    const metadata = defaults?.metadata ? { ...defaults.metadata, ...(input.metadata ?? {}) } : input.metadata;
    const event = {
      ...(defaults?.workspaceId !== undefined && { workspaceId: defaults.workspaceId }),
      ...(defaults?.userId !== undefined && { userId: defaults.userId }),
      ...input,
      ...(metadata !== undefined && { metadata }),
      source: input.source ?? options.source,
      id: input.id ?? uuidv7(now),
      createdAt: toIso(input.createdAt ?? new Date(now)),
    } as EventInput;
    queue.add(event);
    if (queue.waitingCount() >= flushAt) void loop.flushNow();
    else loop.schedule(flushIntervalMs);
    return event.id;
  }

  /** Reports an error (an Error, or anything thrown) as an `error` event. */
  function trackError(error: unknown, extra: { name?: string | undefined; metadata?: JsonObject | undefined } = {}): string | undefined {
    const asError = error instanceof Error ? error : new Error(typeof error === 'string' ? error : safeJson(error));
    return track({
      eventType: 'error',
      name: extra.name ?? (asError.name || 'Error'),
      metadata: {
        ...extra.metadata,
        message: (asError.message || 'Unknown error').slice(0, 4096),
        ...(asError.stack && { stack: asError.stack.slice(0, 16_384) }),
        kind: asError.name || 'Error',
      },
    });
  }

  /** Reports a performance measurement as a `perf.metric` event. */
  function trackMetric(name: string, value: number, unit: string, metadata: JsonObject = {}): string | undefined {
    if (!Number.isFinite(value)) return undefined;
    return track({ eventType: 'perf.metric', name, metadata: { ...metadata, value, unit } });
  }

  /**
   * Sends everything waiting and resolves once the queue is empty, or at the deadline with what is
   * left (it stays queued, and persisted where storage exists). Retries keep their backoff.
   */
  async function flush({ timeoutMs = 10_000 }: { timeoutMs?: number | undefined } = {}): Promise<FlushResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A send in progress may take long (slow network): never wait past the deadline for it.
      let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([loop.flushNow(), new Promise<void>((resolve) => (deadlineTimer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(deadlineTimer);
      if (queue.size() === 0 || loop.stopped()) break;
      const now = Date.now();
      if (now >= deadline) break;
      // In flight elsewhere, or waiting for a retry: look again shortly.
      const retryAt = loop.retryAt();
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(deadline, retryAt > now ? retryAt : now + 20) - now)));
    }
    return { remaining: queue.size() };
  }

  /** Flushes (within `timeoutMs`), then stops: later `track()` calls are ignored. For clean exits in Node.js. */
  async function shutdown({ timeoutMs = 10_000 }: { timeoutMs?: number | undefined } = {}): Promise<FlushResult> {
    const result = await flush({ timeoutMs });
    loop.stop();
    detachFromPage();
    queue.persist();
    return result;
  }

  // Events restored from storage go out soon after start.
  if (queue.size() > 0) loop.schedule(0);

  return {
    track,
    trackError,
    trackMetric,
    flush,
    shutdown,
    /** Events waiting or being sent. */
    queueSize: queue.size,
    /** Events dropped because the queue was full, since start. */
    droppedCount: queue.droppedTotal,
  };
}

function toIso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : value;
}

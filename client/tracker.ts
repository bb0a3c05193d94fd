/**
 * The tracker: what apps use instead of calling `ingest` for every click. `track()` never blocks
 * and never throws; events wait in a bounded queue (persisted in browsers) and go out in batches
 * with `ingestBatch`, retried until the service has them. Each event gets its UUIDv7 id and its
 * `createdAt` when it is tracked, so a retry is stored once and clock skew is corrected from the
 * batch's `sentAt`.
 */
import { TRPCClientError } from '@trpc/client';
import superjson, { type SuperJSONResult } from 'superjson';
import { createTelemetryClient, type EventInput, type FetchFunction, type TelemetryInputs, type TelemetryOutputs, type JsonObject, type Source, type TelemetryClient } from './index.ts';
import { createBrowserQueueStorage, type QueueStorage, type QueuedEvent } from './queue-storage.ts';
import { classifyFailure, HttpStatusError, isRetryable, RETRY_RULES, retryDelayMs, type Backoff } from './retry-policy.ts';
import { serializeInput } from './transformer.ts';
import { uuidv7 } from './uuid7.ts';

type IngestBatchInput = TelemetryInputs['telemetry']['ingestBatch'];
type IngestBatchResult = TelemetryOutputs['telemetry']['ingestBatch'];

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * What `track()` takes: an event as the router types it (so `perf.metric` needs a numeric `value`
 * and a `unit`), with `source`, `id` and `createdAt` filled in by the tracker unless given.
 */
export type TrackInput = DistributiveOmit<EventInput, 'source' | 'id' | 'createdAt'> & {
  source?: Source;
  id?: string;
  createdAt?: Date | string;
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
  defaults?: { workspaceId?: string | null; userId?: string | null; metadata?: JsonObject };
  /** Send when this many events wait (default 20). */
  flushAt?: number;
  /** Send at most this long after an event is tracked (default 5000 ms). */
  flushIntervalMs?: number;
  /** Most events per request (default 100; the service accepts up to its MAX_BATCH_EVENTS). */
  maxBatchSize?: number;
  /** Most events waiting; past it the oldest are dropped and reported (default 1000). */
  maxQueueSize?: number;
  /** Share of events kept, 0..1 (default 1). Error events are always kept. */
  sampleRate?: number;
  /** Retry delays: exponential from `baseDelayMs` to `maxDelayMs`, with full jitter; Retry-After wins when longer. */
  retry?: { baseDelayMs?: number; maxDelayMs?: number };
  /** Where the queue survives reloads. Defaults to localStorage in browsers, nothing in Node.js. */
  storage?: QueueStorage | null;
  /** Told about dropped, rejected and retried events. Never throws into the app. */
  onError?: (problem: TrackerProblem) => void;
  /** A fetch implementation (defaults to the global one). */
  fetch?: FetchFunction;
  /** Flush on `pagehide` / hidden `visibilitychange` with keepalive requests (default true in browsers). */
  flushOnPageHide?: boolean;
  /** A request not answered by then fails and is retried (default 30000 ms). */
  requestTimeoutMs?: number;
  /** Random numbers for sampling and jitter (tests pin it). */
  random?: () => number;
}

export interface FlushResult {
  /** Events still waiting (the service was unreachable until the deadline). */
  remaining: number;
}

/**
 * Keepalive requests may carry at most 64 KiB in all, for the whole page; stay well under it so
 * several batches fit.
 */
const KEEPALIVE_BATCH_BYTES = 30 * 1024;
/** Stays well under the service's default body limit (1 MiB), whatever the batch size. */
const MAX_BATCH_CHARS = 512 * 1024;
/** The browser allows 64 KiB of keepalive bodies in flight for the whole page; keep within it. */
const KEEPALIVE_TOTAL_BYTES = 60 * 1024;

export type Tracker = ReturnType<typeof createTracker>;

export function createTracker(options: TrackerOptions) {
  const flushAt = options.flushAt ?? 20;
  const flushIntervalMs = options.flushIntervalMs ?? 5000;
  const maxBatchSize = options.maxBatchSize ?? 100;
  /** Halved when the service answers 413 (its body limit is smaller than our batches). */
  let batchSize = maxBatchSize;
  const maxQueueSize = options.maxQueueSize ?? 1000;
  const sampleRate = options.sampleRate ?? 1;
  const backoff: Backoff = { baseMs: options.retry?.baseDelayMs ?? 1000, maxMs: options.retry?.maxDelayMs ?? 60_000 };
  const random = options.random ?? Math.random;
  const report = (problem: TrackerProblem) => {
    try {
      options.onError?.(problem);
    } catch {
      // A faulty hook must not break tracking.
    }
  };

  const storage = options.storage === undefined ? createBrowserQueueStorage({ onError: (message) => report({ kind: 'storage', message }) }) : options.storage;
  /** Oldest first. An event leaves only when the service answered for it. */
  const queue: QueuedEvent[] = storage?.load() ?? [];
  const inFlight = new Set<string>();
  let droppedTotal = 0;
  let attempt = 0;
  let retryAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let sendLoop: Promise<void> | undefined;
  let stopped = false;

  const baseFetch: FetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  // A request that hangs (dead network, stalled proxy) fails after a while and is retried.
  const fetchImpl: FetchFunction = (input, init) => {
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    const signal = !init?.signal ? timeout : typeof AbortSignal.any === 'function' ? AbortSignal.any([init.signal, timeout]) : init.signal;
    return baseFetch(input, { ...init, signal });
  };
  const client: TelemetryClient = createTelemetryClient({ url: options.url, apiKey: options.apiKey, fetch: fetchImpl, maxBatchItems: 1 });
  const batchEndpoint = `${options.url.replace(/\/+$/, '')}/trpc/telemetry.ingestBatch`;

  /**
   * `ingestBatch` as one plain keepalive POST, started synchronously: while a page goes away there
   * is no later tick for the typed client's batching to send in. Same procedure, same wire format.
   */
  async function postWithKeepalive(input: IngestBatchInput): Promise<IngestBatchResult> {
    const response = await fetchImpl(batchEndpoint, {
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
  }

  function persist() {
    storage?.save(queue);
  }

  function track(input: TrackInput): string | undefined {
    if (stopped) return undefined;
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
    queue.push({ event });
    dropOverflow();
    persist();
    if (queue.length - inFlight.size >= flushAt) void flushNow();
    else schedule(flushIntervalMs);
    return event.id;
  }

  /** Reports an error (an Error, or anything thrown) as an `error` event. */
  function trackError(error: unknown, extra: { name?: string; metadata?: JsonObject } = {}): string | undefined {
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

  function dropOverflow() {
    let dropped = 0;
    while (queue.length > maxQueueSize) {
      // Oldest first, but never one being sent (its answer is on the way).
      const index = queue.findIndex((item) => !inFlight.has(item.event.id!));
      if (index < 0) break;
      queue.splice(index, 1);
      dropped += 1;
    }
    if (dropped > 0) {
      droppedTotal += dropped;
      report({ kind: 'dropped', count: dropped, total: droppedTotal });
    }
  }

  function schedule(delayMs: number) {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flushNow();
    }, delayMs);
    // In Node.js a pending send must not keep the process alive; shutdown() flushes explicitly.
    (timer as { unref?: () => void }).unref?.();
  }

  /** Sends what waits, batch after batch, until the queue is empty or a send must be retried later. */
  function flushNow(): Promise<void> {
    if (sendLoop) return sendLoop;
    // `.finally` runs after this assignment even when the loop ends without awaiting anything.
    const loop = sendWaiting().finally(() => {
      if (sendLoop === loop) sendLoop = undefined;
    });
    sendLoop = loop;
    return loop;
  }

  async function sendWaiting(): Promise<void> {
    while (!stopped) {
      if (Date.now() < retryAt) {
        // Backing off: come back when the retry is due.
        schedule(retryAt - Date.now());
        return;
      }
      const batch = nextBatch();
      if (batch.length === 0) return;
      const retryInMs = await send(batch);
      if (retryInMs !== undefined) {
        retryAt = Date.now() + retryInMs;
        schedule(retryInMs);
        return;
      }
    }
  }

  /** The oldest waiting events, at most `batchSize` of them and about MAX_BATCH_CHARS of JSON. */
  function nextBatch(): QueuedEvent[] {
    const batch: QueuedEvent[] = [];
    let chars = 0;
    for (const item of queue) {
      if (inFlight.has(item.event.id!)) continue;
      const size = safeJson(item.event).length;
      if (batch.length > 0 && (batch.length >= batchSize || chars + size > MAX_BATCH_CHARS)) break;
      batch.push(item);
      chars += size;
    }
    return batch;
  }

  /** One request; answers the delay before a retry, or undefined when the batch is settled. */
  async function send(batch: QueuedEvent[], keepalive = false): Promise<number | undefined> {
    const events = batch.map((item) => item.event);
    for (const event of events) inFlight.add(event.id!);
    try {
      const input = { events, sentAt: new Date() };
      const result = keepalive ? await postWithKeepalive(input) : await client.telemetry.ingestBatch.mutate(input);
      attempt = 0;
      for (const receipt of result.receipts) {
        if (receipt.status === 'rejected') {
          report({ kind: 'rejected', events: [events[receipt.index]!], code: receipt.code, message: receipt.message, path: receipt.path });
        }
      }
      settle(events);
      return undefined;
    } catch (error) {
      const failure = classifyFailure(error);
      if (failure.status === 413 && events.length > 1) {
        // The service refused the body as too large: send smaller batches from now on.
        batchSize = Math.max(1, Math.floor(events.length / 2));
        return 0;
      }
      // Network errors, timeouts, 429 and 5xx are worth retrying; any other 4xx will fail the same
      // way again, so those events are reported and dropped.
      if (!isRetryable(failure, RETRY_RULES.tracker)) {
        report({ kind: 'rejected', events, code: failure.code ?? String(failure.status), message: failure.message });
        settle(events);
        return undefined;
      }
      attempt += 1;
      const delayMs = retryDelayMs(attempt, backoff, failure, random);
      report({ kind: 'retrying', attempt, delayMs, message: failure.message });
      return delayMs;
    } finally {
      for (const event of events) inFlight.delete(event.id!);
    }
  }

  function settle(events: readonly EventInput[]) {
    const done = new Set(events.map((event) => event.id));
    for (let index = queue.length - 1; index >= 0; index -= 1) if (done.has(queue[index]!.event.id)) queue.splice(index, 1);
    persist();
  }

  /**
   * Sends everything waiting and resolves once the queue is empty, or at the deadline with what is
   * left (it stays queued, and persisted where storage exists). Retries keep their backoff.
   */
  async function flush({ timeoutMs = 10_000 }: { timeoutMs?: number } = {}): Promise<FlushResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A send in progress may take long (slow network): never wait past the deadline for it.
      let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([flushNow(), new Promise<void>((resolve) => (deadlineTimer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(deadlineTimer);
      if (queue.length === 0 || stopped) break;
      const now = Date.now();
      if (now >= deadline) break;
      // In flight elsewhere, or waiting for a retry: look again shortly.
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(deadline, retryAt > now ? retryAt : now + 20) - now)));
    }
    return { remaining: queue.length };
  }

  /** Flushes (within `timeoutMs`), then stops: later `track()` calls are ignored. For clean exits in Node.js. */
  async function shutdown({ timeoutMs = 10_000 }: { timeoutMs?: number } = {}): Promise<FlushResult> {
    const result = await flush({ timeoutMs });
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    detachPageListeners();
    persist();
    return result;
  }

  /**
   * The page is going away: send everything waiting now, in keepalive requests small enough for the
   * browser's limit. Events stay queued (and persisted) until answered, so if the page dies first
   * the next load sends them again and the service stores them once.
   */
  function flushOnPageHide() {
    const waiting = queue.filter((item) => !inFlight.has(item.event.id!));
    if (waiting.length === 0) return;
    const sendBeforeUnload = (batch: QueuedEvent[]) => {
      const batchBytes = batch.reduce((sum, item) => sum + utf8Length(safeJson(item.event)) + 1, 0);
      keepaliveBytesInFlight += batchBytes;
      void send(batch, true).then((retryInMs) => {
        keepaliveBytesInFlight -= batchBytes;
        // The page stayed (it was only hidden) and the send failed: retry like any other send.
        if (retryInMs !== undefined) {
          retryAt = Date.now() + retryInMs;
          schedule(retryInMs);
        }
      });
    };
    let batch: QueuedEvent[] = [];
    let bytes = 0;
    // The budget is the page's: visibilitychange and pagehide may both fire, each sending.
    let total = keepaliveBytesInFlight;
    for (const item of waiting) {
      const size = utf8Length(safeJson(item.event)) + 1;
      // What does not fit in the browser's keepalive budget stays queued (and persisted) for the next load.
      if (total + size > KEEPALIVE_TOTAL_BYTES) break;
      if (batch.length > 0 && (bytes + size > KEEPALIVE_BATCH_BYTES || batch.length >= maxBatchSize)) {
        sendBeforeUnload(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(item);
      bytes += size;
      total += size;
    }
    if (batch.length > 0) sendBeforeUnload(batch);
  }

  const onVisibilityChange = () => {
    if (globalThis.document?.visibilityState === 'hidden') flushOnPageHide();
  };
  const onOnline = () => {
    retryAt = 0;
    void flushNow();
  };
  const browser = typeof globalThis.addEventListener === 'function' && typeof globalThis.document !== 'undefined';
  if (browser && (options.flushOnPageHide ?? true)) {
    globalThis.addEventListener('pagehide', flushOnPageHide);
    globalThis.document.addEventListener('visibilitychange', onVisibilityChange);
  }
  if (browser) globalThis.addEventListener('online', onOnline);
  function detachPageListeners() {
    if (!browser) return;
    globalThis.removeEventListener('pagehide', flushOnPageHide);
    globalThis.document.removeEventListener('visibilitychange', onVisibilityChange);
    globalThis.removeEventListener('online', onOnline);
  }

  // Events restored from storage go out soon after start.
  if (queue.length > 0) schedule(0);

  return {
    track,
    trackError,
    trackMetric,
    flush,
    shutdown,
    /** Events waiting or being sent. */
    queueSize: () => queue.length,
    /** Events dropped because the queue was full, since start. */
    droppedCount: () => droppedTotal,
  };
}

/** Keepalive request bodies not yet answered, for the whole page (the browser's limit is per page). */
let keepaliveBytesInFlight = 0;
const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

function toIso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : value;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

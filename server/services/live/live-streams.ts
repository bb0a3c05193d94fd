import { eventKey, storedEventJson, storedEventsJson, type EventRow } from '../../../db/event-writers.ts';
import { DomainError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics.ts';
import type { StoredEvent } from '../events/schemas.ts';
import { compareStreamIds, fieldsOf, type EventBus, type LiveEventFields, type LiveRecord, type SerializedEvent } from './bus.ts';
import type { LiveFilter } from './schemas.ts';
import type { SharedStreamSlots, StreamLease } from './stream-slots.ts';

export interface LiveStreamOptions {
  maxStreamsPerKey: number;
  maxDurationMs: number;
  /** Matching events one subscriber may have waiting; past it the stream ends so the client resumes. */
  subscriberBuffer: number;
  /** The same bound in bytes (of the waiting records, as `recordBytes` counts them). */
  subscriberBufferBytes: number;
  /**
   * Most bytes of the window one resume reads back (all records scanned, of any workspace). Past
   * it the rest of the gap is skipped (counted as truncated) and the stream goes on live, so a
   * client resuming from far back again and again cannot make the instance read whole windows.
   */
  maxResumeBytes: number;
}

/** An event as a stream delivers it: parsed from the bus's JSON only now, for this subscriber. */
export interface DeliveredRecord {
  streamId: string;
  event: StoredEvent;
}

export interface OpenStream {
  keyId: string;
  workspaceId: string;
  filter: LiveFilter;
  /** Resume after this stream id: everything newer still in the bus's window comes first. */
  lastEventId: string | undefined;
  /** Aborted when the client goes away. */
  signal: AbortSignal | undefined;
}

/** Thrown to end a stream without a "done" message, so the client's EventSource reconnects and resumes. */
export class StreamExpired extends Error {
  override name = 'AbortError';
}

export type LiveStreams = ReturnType<typeof createLiveStreams>;

/**
 * Live streams of committed events. `publishCommitted` is called by the write queue after each
 * commit; `open` yields the matching records for one subscriber: first what it missed (when it
 * resumes), then new records, each once, in stream order.
 */
export function createLiveStreams({
  bus,
  options,
  metrics,
  logger,
  sharedSlots,
  activeKeyIds,
  keyCheckIntervalMs = 30_000,
}: {
  bus: EventBus;
  options: LiveStreamOptions;
  metrics: Metrics;
  logger: Logger;
  /** Stream slots shared by all instances (Redis); without it each instance counts its own. */
  sharedSlots?: SharedStreamSlots;
  /**
   * Which of these keys are still active. Revocations end streams at once through
   * `endStreamsOfKey` (called on every instance); this periodic check is the safety net for a
   * revocation notice that never arrived (the database connection was down at the time).
   */
  activeKeyIds?: (keyIds: readonly string[]) => Promise<Set<string>>;
  keyCheckIntervalMs?: number;
}) {
  const streamsByKey = new Map<string, number>();
  /** Ends each open stream the way its maximum duration does (the client reconnects elsewhere). */
  const expireOpenStreams = new Set<() => void>();
  /** Ends each open stream of a key with an UNAUTHORIZED error, so its client does not reconnect with that key. */
  const revokeStreamsByKey = new Map<string, Set<() => void>>();

  function endStreamsOfKey(keyId: string): void {
    for (const revoke of revokeStreamsByKey.get(keyId) ?? []) revoke();
  }

  const keyCheck = activeKeyIds
    ? setInterval(() => {
        const keyIds = [...revokeStreamsByKey.keys()];
        if (keyIds.length === 0) return;
        // In chunks, so one query stays small however many keys have streams open.
        for (let index = 0; index < keyIds.length; index += 500) {
          const chunk = keyIds.slice(index, index + 500);
          activeKeyIds(chunk).then(
            (active) => chunk.filter((keyId) => !active.has(keyId)).forEach(endStreamsOfKey),
            // The database cannot answer: the streams go on, and are checked again next time.
            () => {},
          );
        }
      }, keyCheckIntervalMs)
    : undefined;
  keyCheck?.unref();
  let publishWarnedAt = 0;

  let sharedWarnedAt = 0;
  let closing = false;

  function tooManyStreams(open: number, where: string): DomainError {
    return new DomainError('rate_limited', `This key already has ${open} live streams open ${where}, the most allowed; close one first`, {
      reason: 'too_many_streams',
      retryAfterSeconds: 5,
    });
  }

  /**
   * Takes one of the key's stream slots: across all instances when they share Redis, else (or while
   * Redis cannot answer) on this instance. Returns the release function.
   */
  async function acquireSlot(keyId: string): Promise<() => void> {
    // Counted here before any await, so concurrent opens of one key never miss each other.
    const local = streamsByKey.get(keyId) ?? 0;
    streamsByKey.set(keyId, local + 1);
    metrics.liveStreams.inc();
    const releaseLocal = () => {
      const left = (streamsByKey.get(keyId) ?? 1) - 1;
      if (left === 0) streamsByKey.delete(keyId);
      else streamsByKey.set(keyId, left);
      metrics.liveStreams.dec();
    };
    let lease: StreamLease | undefined;
    try {
      if (sharedSlots) {
        try {
          lease = await sharedSlots.acquire(keyId, options.maxStreamsPerKey);
          if (!lease) throw tooManyStreams(options.maxStreamsPerKey, 'across instances');
        } catch (error) {
          if (error instanceof DomainError) throw error;
          if (Date.now() - sharedWarnedAt > 60_000) {
            sharedWarnedAt = Date.now();
            logger.warn('live stream slots: Redis did not answer; counting on this instance only', { error });
          }
        }
      }
      if (!lease && local >= options.maxStreamsPerKey) throw tooManyStreams(local, 'on this instance');
    } catch (error) {
      releaseLocal();
      throw error;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      lease?.release();
      releaseLocal();
    };
  }

  async function* open(request: OpenStream): AsyncGenerator<DeliveredRecord, void, undefined> {
    const release = await acquireSlot(request.keyId);
    if (closing) {
      // Opened while the instance shuts down: end at once so the client goes elsewhere.
      release();
      throw new StreamExpired('The instance is shutting down');
    }
    const matches = matcher(request.workspaceId, request.filter);
    const pending: LiveRecord[] = [];
    let pendingBytes = 0;
    let overflowed = false;
    let expired = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      const resume = wake;
      wake = undefined;
      resume?.();
    };
    const unsubscribe = bus.subscribe((records) => {
      // Past an overflow nothing more is taken: the client resumes from the last record it got, and
      // a later record delivered before the gap would move its resume point past the lost ones.
      if (overflowed) return;
      for (const record of records) {
        if (!matches(record.fields)) continue;
        if (pending.length >= options.subscriberBuffer || pendingBytes + record.bytes > options.subscriberBufferBytes) {
          overflowed = true;
          break;
        }
        // Its own copy of the text: a record's text can be a slice of its whole flush's document
        // (publishCommitted), which a slow subscriber would otherwise keep alive past the window.
        pending.push(withOwnText(record));
        pendingBytes += record.bytes;
      }
      notify();
    });
    const expire = () => {
      expired = true;
      notify();
    };
    let revoked = false;
    const revoke = () => {
      revoked = true;
      notify();
    };
    const deadline = setTimeout(expire, options.maxDurationMs);
    expireOpenStreams.add(expire);
    const keyStreams = revokeStreamsByKey.get(request.keyId) ?? new Set();
    revokeStreamsByKey.set(request.keyId, keyStreams.add(revoke));
    request.signal?.addEventListener('abort', notify);

    try {
      let last = request.lastEventId;
      if (last !== undefined) {
        const replay = await bus.replay(last).catch((error: unknown) => {
          throw new DomainError('unavailable', 'Missed events cannot be read right now; reconnect shortly', {
            reason: 'replay_unavailable',
            retryAfterSeconds: 2,
            cause: error,
          });
        });
        let truncated = replay.truncated;
        let scannedBytes = 0;
        const pages = replay.pages[Symbol.asyncIterator]();
        try {
          reading: for (;;) {
            const page = await pages.next().catch((error: unknown) => {
              throw new DomainError('unavailable', 'Missed events cannot be read right now; reconnect shortly', {
                reason: 'replay_unavailable',
                retryAfterSeconds: 2,
                cause: error,
              });
            });
            if (page.done) break;
            for (const record of page.value) {
              scannedBytes += record.bytes;
              if (scannedBytes > options.maxResumeBytes) {
                truncated = true;
                break reading;
              }
              if (revoked) throw keyRevoked();
              last = record.streamId;
              if (matches(record.fields)) yield delivered(record);
            }
          }
        } finally {
          await pages.return?.();
        }
        if (truncated) metrics.liveReplayTruncated.inc();
      }
      for (;;) {
        if (request.signal?.aborted) return;
        if (revoked) throw keyRevoked();
        if (pending.length > 0) {
          const ready = pending.splice(0);
          pendingBytes = 0;
          for (const record of ready) {
            if (revoked) throw keyRevoked();
            // Records that arrived while the replay ran may be in both; stream ids only grow.
            if (last !== undefined && compareStreamIds(record.streamId, last) <= 0) continue;
            last = record.streamId;
            yield delivered(record);
          }
          continue;
        }
        if (overflowed) {
          throw new DomainError('unavailable', 'This stream fell too far behind; it resumes from the last event received', {
            reason: 'slow_consumer',
            retryAfterSeconds: 1,
          });
        }
        if (expired) throw new StreamExpired('The stream reached its maximum duration');
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      clearTimeout(deadline);
      expireOpenStreams.delete(expire);
      keyStreams.delete(revoke);
      if (keyStreams.size === 0 && revokeStreamsByKey.get(request.keyId) === keyStreams) revokeStreamsByKey.delete(request.keyId);
      request.signal?.removeEventListener('abort', notify);
      unsubscribe();
      release();
    }
  }

  /**
   * Publishes the rows a flush just committed (claimed ones only: retries are not new events),
   * each as its JSON from the flush's write, so publishing copies no event.
   */
  function publishCommitted(rows: readonly EventRow[], claimed: ReadonlySet<string>): void {
    const events: SerializedEvent[] = [];
    if (claimed.size === rows.length) {
      // Every row is new (the common case): each event is its slice of the statement's document,
      // which the window then holds whole, and no more than that.
      const json = storedEventsJson(rows);
      for (let index = 0; index < rows.length; index += 1) events.push({ fields: fieldsOf(rows[index]!), json: json.eventJson(index) });
    } else {
      // Some were retries: a slice would keep their text alive too, so each new one gets its own.
      for (const row of rows) if (claimed.has(eventKey(row))) events.push({ fields: fieldsOf(row), json: storedEventJson(row) });
    }
    if (events.length === 0) return;
    bus.publishSerialized(events).then(
      () => metrics.livePublished.inc(events.length),
      (error: unknown) => {
        // The events are committed; only their live delivery is lost. Warn at most once a minute.
        metrics.livePublishFailures.inc(events.length);
        if (Date.now() - publishWarnedAt > 60_000) {
          publishWarnedAt = Date.now();
          logger.warn('live bus: publishing committed events failed; live subscribers miss them', { error, events: events.length });
        }
      },
    );
  }

  return {
    open,
    publishCommitted,
    openStreams: () => [...streamsByKey.values()].reduce((sum, count) => sum + count, 0),
    /** The replay window's size by the bus's own accounting (for /metrics). */
    windowSize: () => bus.windowSize(),
    /** Ends every open stream (on shutdown, so the server can close; clients resume on another instance). */
    endAll() {
      closing = true;
      for (const expire of expireOpenStreams) expire();
    },
    /** Ends every open stream of a revoked (or rotated-away) key at once, with an UNAUTHORIZED error. */
    endStreamsOfKey,
    close: () => {
      clearInterval(keyCheck);
      return bus.close();
    },
  };
}

function keyRevoked(): DomainError {
  return new DomainError('unauthorized', 'The key this stream was opened with has been revoked or rotated; open it again with an active key', {
    reason: 'key_revoked',
  });
}

function withOwnText(record: LiveRecord): LiveRecord {
  // Through bytes, so the copy shares no storage with the original whatever the engine does with strings.
  return { ...record, json: Buffer.from(record.json, 'utf8').toString('utf8') };
}

function delivered(record: LiveRecord): DeliveredRecord {
  return { streamId: record.streamId, event: JSON.parse(record.json) as StoredEvent };
}

function matcher(workspaceId: string, filter: LiveFilter): (event: LiveEventFields) => boolean {
  return (event) =>
    event.workspaceId === workspaceId &&
    (filter.eventType === undefined || event.eventType === filter.eventType) &&
    (filter.name === undefined || event.name === filter.name) &&
    (filter.source === undefined || event.source === filter.source) &&
    (filter.userId === undefined || event.userId === filter.userId) &&
    (filter.targetType === undefined || event.targetType === filter.targetType);
}

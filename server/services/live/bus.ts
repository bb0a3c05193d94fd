import type { StoredEvent } from '../events/schemas.ts';

/**
 * One committed event on the live bus. `streamId` orders records and is what subscribers resume
 * from (`<milliseconds>-<sequence>`, the format of Redis stream ids, for both buses).
 */
export interface LiveRecord {
  streamId: string;
  event: StoredEvent;
}

export interface ReplayResult {
  /** Records after the given id, oldest first, in pages, as far as the bus still holds them. */
  pages: AsyncIterable<readonly LiveRecord[]>;
  /** True when records after the id may already have left the window (the id is older than its start). */
  truncated: boolean;
}

/**
 * Carries committed events to live subscribers: every record published on any instance reaches
 * every listener (on this instance), in stream order, and the newest `replayEvents` records can be
 * read again by a subscriber resuming from a stream id.
 */
export interface EventBus {
  readonly kind: 'memory' | 'redis';
  /** Publishes events already committed to the database. Resolves once the bus holds them. */
  publish(events: readonly StoredEvent[]): Promise<void>;
  /** Calls `listener` with each group of new records, in order, until the returned function is called. */
  subscribe(listener: (records: readonly LiveRecord[]) => void): () => void;
  /** Records newer than `afterStreamId` still in the window. */
  replay(afterStreamId: string): Promise<ReplayResult>;
  close(): Promise<void>;
}

const STREAM_ID = /^(\d{1,15})-(\d{1,15})$/;

export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/** Orders two stream ids (`<ms>-<seq>`) numerically, as Redis does. */
export function compareStreamIds(a: string, b: string): number {
  const [, aMs = '0', aSeq = '0'] = STREAM_ID.exec(a) ?? [];
  const [, bMs = '0', bSeq = '0'] = STREAM_ID.exec(b) ?? [];
  return Number(aMs) - Number(bMs) || Number(aSeq) - Number(bSeq);
}

/**
 * The bus of a single instance: a ring of the newest records in memory. Nothing crosses
 * processes; use the Redis bus for more than one instance.
 */
export function createMemoryBus(options: { replayEvents: number; now?: () => number }): EventBus {
  const now = options.now ?? Date.now;
  const capacity = options.replayEvents;
  const ring: LiveRecord[] = [];
  let head = 0; // index of the oldest record once the ring is full
  const listeners = new Set<(records: readonly LiveRecord[]) => void>();
  let lastMs = 0;
  let sequence = 0;

  function nextStreamId(): string {
    const ms = Math.max(now(), lastMs);
    sequence = ms === lastMs ? sequence + 1 : 0;
    lastMs = ms;
    return `${ms}-${sequence}`;
  }

  function oldestFirst(): LiveRecord[] {
    return ring.length < capacity ? ring.slice() : [...ring.slice(head), ...ring.slice(0, head)];
  }

  return {
    kind: 'memory',
    async publish(events) {
      if (events.length === 0) return;
      const records = events.map((event) => ({ streamId: nextStreamId(), event }));
      for (const record of records) {
        if (ring.length < capacity) ring.push(record);
        else {
          ring[head] = record;
          head = (head + 1) % capacity;
        }
      }
      for (const listener of listeners) listener(records);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async replay(afterStreamId) {
      const all = oldestFirst();
      const oldest = all[0];
      // Full ring and an id older than its oldest record: something between them was overwritten.
      const truncated = ring.length === capacity && oldest !== undefined && compareStreamIds(afterStreamId, oldest.streamId) < 0;
      const records = all.filter((record) => compareStreamIds(record.streamId, afterStreamId) > 0);
      return { pages: (async function* () { yield records; })(), truncated };
    },
    async close() {
      listeners.clear();
    },
  };
}

import type { StoredEvent } from '../events/schemas.ts';

/** The fields a live filter matches on, kept beside the serialized event so matching never parses it. */
export interface LiveEventFields {
  workspaceId: string;
  eventType: string;
  name: string;
  source: string;
  userId: string | null;
  targetType: string | null;
}

/**
 * One committed event on the live bus. `streamId` orders records and is what subscribers resume
 * from (`<milliseconds>-<sequence>`, the format of Redis stream ids, for both buses).
 *
 * The event travels and is kept as its JSON text, never as a parsed object: a metadata object of
 * many empty objects is ~30 KB as JSON but ~20 times that on the heap, so a window of parsed
 * objects cannot be bounded by its size. Each subscriber parses only the records it delivers.
 */
export interface LiveRecord {
  streamId: string;
  fields: LiveEventFields;
  /** The stored event as JSON (the shape `telemetry.events.get` answers). */
  json: string;
  /** What this record counts against the window's byte budget (see `recordBytes`). */
  bytes: number;
}

/** A committed event ready for the bus: its JSON text and its filter fields, each made once. */
export interface SerializedEvent {
  fields: LiveEventFields;
  /** The stored event as JSON (the shape `telemetry.events.get` answers). */
  json: string;
}

export interface ReplayResult {
  /** Records after the given id, oldest first, in pages, as far as the bus still holds them. */
  pages: AsyncIterable<readonly LiveRecord[]>;
  /** True when records after the id may already have left the window (the id is older than its start). */
  truncated: boolean;
}

/** What the replay window holds now, by its own accounting. */
export interface WindowSize {
  events: number;
  bytes: number;
}

/** Bounds of the replay window: whichever is reached first trims the oldest records. */
export interface WindowBounds {
  /** Most records kept. */
  maxEvents: number;
  /** Most bytes kept, as counted by `recordBytes` (memory) or the entries' field bytes (Redis). */
  maxBytes: number;
}

/**
 * Carries committed events to live subscribers: every record published on any instance reaches
 * every listener (on this instance), in stream order, and the newest records (within the window's
 * bounds in events and bytes) can be read again by a subscriber resuming from a stream id.
 */
export interface EventBus {
  readonly kind: 'memory' | 'redis';
  /** Publishes events already committed to the database. Resolves once the bus holds them. */
  publish(events: readonly StoredEvent[]): Promise<void>;
  /** The same for events already serialized (the write path serializes each committed row once). */
  publishSerialized(events: readonly SerializedEvent[]): Promise<void>;
  /** Calls `listener` with each group of new records, in order, until the returned function is called. */
  subscribe(listener: (records: readonly LiveRecord[]) => void): () => void;
  /** Records newer than `afterStreamId` still in the window. */
  replay(afterStreamId: string): Promise<ReplayResult>;
  /** The replay window's size by the bus's own accounting. */
  windowSize(): Promise<WindowSize>;
  close(): Promise<void>;
}

/**
 * Bytes one in-memory record costs: its JSON at two bytes per character (V8 keeps a string with
 * any non-Latin-1 character at two bytes per character, so this never under-counts), plus the
 * record object, its stream id and filter fields (bounded by the event schema) as a flat overhead.
 */
export const RECORD_OVERHEAD_BYTES = 1024;
export function recordBytes(json: string): number {
  return json.length * 2 + RECORD_OVERHEAD_BYTES;
}

export function serializeStoredEvent(event: StoredEvent): SerializedEvent {
  return { fields: fieldsOf(event), json: JSON.stringify(event) };
}

/** The filter fields of a stored event, or of a committed row (the same names). */
export function fieldsOf(event: LiveEventFields): LiveEventFields {
  return {
    workspaceId: event.workspaceId,
    eventType: event.eventType,
    name: event.name,
    source: event.source,
    userId: event.userId,
    targetType: event.targetType,
  };
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

/** Records handed to a resuming subscriber at a time. */
const MEMORY_REPLAY_PAGE = 1000;

/**
 * The bus of a single instance: the newest records in memory, as JSON text, bounded by count and
 * by bytes (whichever is reached first drops the oldest). Nothing crosses processes; use the Redis
 * bus for more than one instance.
 */
export function createMemoryBus(options: WindowBounds & { now?: () => number }): EventBus {
  const now = options.now ?? Date.now;
  // Oldest first; `start` skips the dropped head without shifting the array on every publish.
  let window: LiveRecord[] = [];
  let start = 0;
  let windowBytes = 0;
  /** Set once a record has been dropped: a resume older than the window may then have missed some. */
  let dropped = false;
  const listeners = new Set<(records: readonly LiveRecord[]) => void>();
  let lastMs = 0;
  let sequence = 0;

  function nextStreamId(): string {
    const ms = Math.max(now(), lastMs);
    sequence = ms === lastMs ? sequence + 1 : 0;
    lastMs = ms;
    return `${ms}-${sequence}`;
  }

  function dropOldest(): void {
    const oldest = window[start];
    if (!oldest) return;
    window[start] = undefined as unknown as LiveRecord; // let the string go now
    start += 1;
    windowBytes -= oldest.bytes;
    dropped = true;
    // Compact once the dropped head is as long as what is kept: amortised O(1) per record.
    if (start > 1024 && start * 2 > window.length) {
      window = window.slice(start);
      start = 0;
    }
  }

  const held = () => window.length - start;

  async function publishSerialized(events: readonly SerializedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const records = new Array<LiveRecord>(events.length);
    for (let index = 0; index < events.length; index += 1) {
      const { fields, json } = events[index]!;
      const record: LiveRecord = { streamId: nextStreamId(), fields, json, bytes: recordBytes(json) };
      records[index] = record;
      window.push(record);
      windowBytes += record.bytes;
      while (held() > 1 && (held() > options.maxEvents || windowBytes > options.maxBytes)) dropOldest();
    }
    for (const listener of listeners) listener(records);
  }

  return {
    kind: 'memory',
    publish: async (events) => publishSerialized(events.map(serializeStoredEvent)),
    publishSerialized,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async replay(afterStreamId) {
      const oldest = window[start];
      const truncated = dropped && oldest !== undefined && compareStreamIds(afterStreamId, oldest.streamId) < 0;
      // A snapshot of references (the strings are shared, not copied), so publishing meanwhile
      // neither shifts nor repeats what this resume reads.
      let from = start;
      let to = window.length;
      while (from < to) {
        // Stream ids only grow along the window: binary search for the first one after the id.
        const middle = (from + to) >>> 1;
        if (compareStreamIds(window[middle]!.streamId, afterStreamId) <= 0) from = middle + 1;
        else to = middle;
      }
      const records = window.slice(from);
      return {
        pages: (async function* () {
          for (let index = 0; index < records.length; index += MEMORY_REPLAY_PAGE) yield records.slice(index, index + MEMORY_REPLAY_PAGE);
        })(),
        truncated,
      };
    },
    async windowSize() {
      return { events: held(), bytes: windowBytes };
    },
    async close() {
      listeners.clear();
    },
  };
}

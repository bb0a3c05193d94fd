import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.ts';
import type { StoredEvent } from '../events/schemas.ts';
import {
  compareStreamIds,
  fieldsOf,
  recordBytes,
  serializeStoredEvent,
  type EventBus,
  type LiveEventFields,
  type LiveRecord,
  type SerializedEvent,
  type WindowBounds,
} from './bus.ts';

/** Version of the record layout below; bumped if fields change meaning. */
export const LIVE_RECORD_VERSION = '1';

type StreamEntry = [id: string, fields: string[]];

/**
 * Entries read per page when a subscriber resumes: an entry is at most ~40 KB (the event schema
 * bounds metadata at 32 KB), so one page never holds more than a few MB.
 */
const REPLAY_PAGE = 100;
/** Entries taken per blocking read of new records. */
const READ_BATCH = 500;
/** Events appended per script call: keeps each call (which blocks Redis while it runs) short. */
const PUBLISH_CHUNK = 200;

/**
 * Appends entries and trims the stream to its bounds in one atomic step. Redis cannot cap a stream
 * by bytes (MAXLEN counts entries), so the script keeps the bytes of the window's entries (the
 * byte length of their field names and values) in a counter beside the stream, and drops the
 * oldest entries while the window is over either bound, subtracting what each dropped entry held.
 * The newest entry always stays. The work is amortised O(1) per appended entry.
 *
 * Without a counter (first start of this version, or the counter was lost) the window's size is
 * unknown: the old entries are dropped rather than read back, so the bound holds from then on.
 *
 * KEYS: stream, counter. ARGV: max bytes, max entries, values per entry, then the entries' fields.
 */
const APPEND_AND_TRIM = `
local maxBytes = tonumber(ARGV[1])
local maxEntries = tonumber(ARGV[2])
local width = tonumber(ARGV[3])
local function sizeOf(fields)
  local size = 0
  for i = 1, #fields do size = size + #fields[i] end
  return size
end
local total = tonumber(redis.call('GET', KEYS[2]) or '')
if total == nil then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
  total = 0
end
local ids = {}
local index = 4
while index + width - 1 <= #ARGV do
  local entry = {}
  for i = 0, width - 1 do entry[i + 1] = ARGV[index + i] end
  index = index + width
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(entry))
  total = total + sizeOf(entry)
end
local length = redis.call('XLEN', KEYS[1])
while length > 1 and (total > maxBytes or length > maxEntries) do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 100)
  local drop = {}
  for i = 1, #oldest do
    if length <= 1 or (total <= maxBytes and length <= maxEntries) then break end
    drop[#drop + 1] = oldest[i][1]
    total = total - sizeOf(oldest[i][2])
    length = length - 1
  end
  if #drop == 0 then break end
  redis.call('XDEL', KEYS[1], unpack(drop))
end
if length <= 1 then
  -- Down to the newest entry: count it afresh (heals a counter that drifted, e.g. after the stream was deleted).
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  total = 0
  if newest[1] then total = sizeOf(newest[1][2]) end
end
redis.call('SET', KEYS[2], total)
return ids`;

/** The key beside the stream that holds the bytes of its window. */
export function windowBytesKey(stream: string): string {
  return `${stream}:bytes`;
}

/**
 * The bus shared by every instance: one Redis stream (default `telemetry:events`), trimmed to at
 * most `maxEvents` entries and `maxBytes` bytes of field names and values (Redis's own overhead
 * per entry comes on top), counted in `<stream>:bytes` (see APPEND_AND_TRIM; on Redis Cluster give
 * the stream name a hash tag, e.g. `{telemetry}:events`, so both keys share a slot). Each entry
 * has the fields
 *   v            record layout version ("1")
 *   workspaceId  the event's workspace id, or "" when it has none
 *   eventType, name, source
 *   userId, targetType   "" when the event has none
 *   event        the stored event as JSON (the shape `telemetry.events.get` answers)
 * so other services can read it with their own consumer groups (XREADGROUP) without this service.
 *
 * Each instance reads new entries with one blocking XREAD on a connection of its own and hands
 * them to its local subscribers; replay is XRANGE from the subscriber's last id, in small pages.
 */
export function createRedisBus(
  options: WindowBounds & {
    redis: Redis;
    stream: string;
    logger: Logger;
    /** How long one blocking read waits before it is issued again (ms). */
    blockMs?: number;
  },
): EventBus {
  const { redis, stream, logger } = options;
  const counterKey = windowBytesKey(stream);
  const reader = redis.duplicate();
  reader.on('error', () => {}); // connection errors surface as failed reads below
  const listeners = new Set<(records: readonly LiveRecord[]) => void>();
  let closed = false;
  let readerWarned = false;

  const reading = (async () => {
    let lastId: string | undefined;
    while (!closed) {
      try {
        // Commands fail at once while the connection is not ready (no offline queue): wait for it.
        if (reader.status !== 'ready') {
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              reader.off('ready', done);
              resolve();
            };
            const timer = setTimeout(done, 1000);
            reader.once('ready', done);
          });
          if ((reader.status as string) !== 'ready') continue; // not yet: wait again
        }
        if (lastId === undefined) {
          // Start after the newest entry: subscribers see what is committed from now on.
          const newest = (await reader.xrevrange(stream, '+', '-', 'COUNT', 1)) as StreamEntry[];
          lastId = newest[0]?.[0] ?? '0-0';
        }
        const result = (await reader.xread('COUNT', READ_BATCH, 'BLOCK', options.blockMs ?? 5000, 'STREAMS', stream, lastId)) as
          | [string, StreamEntry[]][]
          | null;
        readerWarned = false;
        const entries = result?.[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        lastId = entries[entries.length - 1]![0];
        // No stream open on this instance: keep up with the stream without parsing it.
        if (listeners.size === 0) continue;
        const records = toRecords(entries);
        for (const listener of listeners) listener(records);
      } catch (error) {
        if (closed) break;
        if (!readerWarned) logger.warn('live bus: reading the Redis stream failed; retrying', { error });
        readerWarned = true;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  })();

  async function publishSerialized(events: readonly SerializedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const pipeline = redis.pipeline();
    for (let index = 0; index < events.length; index += PUBLISH_CHUNK) {
      const values: string[] = [];
      for (const event of events.slice(index, index + PUBLISH_CHUNK)) values.push(...entryFields(event));
      pipeline.eval(APPEND_AND_TRIM, 2, stream, counterKey, options.maxBytes, options.maxEvents, ENTRY_WIDTH, ...values);
    }
    const results = await pipeline.exec();
    const failure = results?.find(([error]) => error)?.[0];
    if (failure) throw failure;
  }

  return {
    kind: 'redis',
    publish: async (events) => publishSerialized(events.map(serializeStoredEvent)),
    publishSerialized,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async replay(afterStreamId) {
      const [oldest] = (await redis.xrange(stream, '-', '+', 'COUNT', 1)) as StreamEntry[];
      const truncated = oldest !== undefined && compareStreamIds(afterStreamId, oldest[0]) < 0;
      // Small pages, read as the subscriber consumes them: a resume over a long window never
      // holds more than a page in memory.
      async function* pages() {
        let cursor = afterStreamId;
        for (;;) {
          const page = (await redis.xrange(stream, `(${cursor}`, '+', 'COUNT', REPLAY_PAGE)) as StreamEntry[];
          if (page.length > 0) yield toRecords(page);
          if (page.length < REPLAY_PAGE) return;
          cursor = page[page.length - 1]![0];
        }
      }
      return { pages: pages(), truncated };
    },
    async windowSize() {
      const [length, bytes] = await Promise.all([redis.xlen(stream), redis.get(counterKey)]);
      return { events: length, bytes: Number(bytes ?? 0) };
    },
    async close() {
      closed = true;
      listeners.clear();
      reader.disconnect();
      await reading;
    },
  };
}

const ENTRY_FIELD_NAMES = ['v', 'workspaceId', 'eventType', 'name', 'source', 'userId', 'targetType', 'event'] as const;
const ENTRY_WIDTH = ENTRY_FIELD_NAMES.length * 2;

function entryFields({ fields, json }: SerializedEvent): string[] {
  return [
    'v',
    LIVE_RECORD_VERSION,
    'workspaceId',
    fields.workspaceId ?? '',
    'eventType',
    fields.eventType,
    'name',
    fields.name,
    'source',
    fields.source,
    'userId',
    fields.userId ?? '',
    'targetType',
    fields.targetType ?? '',
    'event',
    json,
  ];
}

function toRecords(entries: readonly StreamEntry[]): LiveRecord[] {
  const records: LiveRecord[] = [];
  for (const [streamId, values] of entries) {
    const json = fieldValue(values, 'event');
    if (json === undefined) continue; // not one of ours
    const fields = entryFieldsOf(values, json);
    if (!fields) continue; // a malformed entry written by something else: skip it rather than end every stream
    records.push({ streamId, fields, json, bytes: recordBytes(json) });
  }
  return records;
}

/** The filter fields of an entry; parsed from its JSON only when an older writer left some out. */
function entryFieldsOf(values: readonly string[], json: string): LiveEventFields | undefined {
  const userId = fieldValue(values, 'userId');
  const targetType = fieldValue(values, 'targetType');
  const workspaceId = fieldValue(values, 'workspaceId');
  const eventType = fieldValue(values, 'eventType');
  const name = fieldValue(values, 'name');
  const source = fieldValue(values, 'source');
  if (userId !== undefined && targetType !== undefined && workspaceId !== undefined && eventType !== undefined && name !== undefined && source !== undefined) {
    return { workspaceId, eventType, name, source, userId: userId || null, targetType: targetType || null };
  }
  try {
    return fieldsOf(JSON.parse(json) as StoredEvent);
  } catch {
    return undefined;
  }
}

function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let index = 0; index + 1 < fields.length; index += 2) if (fields[index] === name) return fields[index + 1];
  return undefined;
}

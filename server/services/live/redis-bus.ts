import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.ts';
import type { StoredEvent } from '../events/schemas.ts';
import { compareStreamIds, type EventBus, type LiveRecord } from './bus.ts';

/** Version of the record layout below; bumped if fields change meaning. */
export const LIVE_RECORD_VERSION = '1';

type StreamEntry = [id: string, fields: string[]];

const REPLAY_PAGE = 1000;

/**
 * The bus shared by every instance: one Redis stream (default `telemetry:events`), trimmed to about
 * `replayEvents` entries. Each entry has the fields
 *   v            record layout version ("1")
 *   workspaceId  the event's workspace id, or "" when it has none
 *   eventType, name, source
 *   event        the stored event as JSON (the shape `telemetry.events.get` answers)
 * so other services can read it with their own consumer groups (XREADGROUP) without this service.
 *
 * Each instance reads new entries with one blocking XREAD on a connection of its own and hands
 * them to its local subscribers; replay is XRANGE from the subscriber's last id.
 */
export function createRedisBus(options: {
  redis: Redis;
  stream: string;
  replayEvents: number;
  logger: Logger;
  /** How long one blocking read waits before it is issued again (ms). */
  blockMs?: number;
}): EventBus {
  const { redis, stream, replayEvents, logger } = options;
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
        const result = (await reader.xread('COUNT', 1000, 'BLOCK', options.blockMs ?? 5000, 'STREAMS', stream, lastId)) as [string, StreamEntry[]][] | null;
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

  return {
    kind: 'redis',
    async publish(events) {
      if (events.length === 0) return;
      const pipeline = redis.pipeline();
      for (const event of events) {
        pipeline.xadd(
          stream,
          'MAXLEN',
          '~',
          replayEvents,
          '*',
          'v',
          LIVE_RECORD_VERSION,
          'workspaceId',
          event.workspaceId ?? '',
          'eventType',
          event.eventType,
          'name',
          event.name,
          'source',
          event.source,
          'event',
          JSON.stringify(event),
        );
      }
      const results = await pipeline.exec();
      const failure = results?.find(([error]) => error)?.[0];
      if (failure) throw failure;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async replay(afterStreamId) {
      const [oldest] = (await redis.xrange(stream, '-', '+', 'COUNT', 1)) as StreamEntry[];
      const truncated = oldest !== undefined && compareStreamIds(afterStreamId, oldest[0]) < 0;
      // Pages of 1000, read as the subscriber consumes them: a resume over a long window never
      // holds the whole window in memory.
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
    async close() {
      closed = true;
      listeners.clear();
      reader.disconnect();
      await reading;
    },
  };
}

function toRecords(entries: readonly StreamEntry[]): LiveRecord[] {
  const records: LiveRecord[] = [];
  for (const [streamId, fields] of entries) {
    const json = fieldValue(fields, 'event');
    if (json === undefined) continue; // not one of ours
    try {
      records.push({ streamId, event: JSON.parse(json) as StoredEvent });
    } catch {
      // A malformed entry written by something else: skip it rather than end every stream.
    }
  }
  return records;
}

function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let index = 0; index + 1 < fields.length; index += 2) if (fields[index] === name) return fields[index + 1];
  return undefined;
}

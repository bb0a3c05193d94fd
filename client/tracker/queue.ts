import type { EventInput } from '../index.ts';
import type { QueueStorage, QueuedEvent } from '../queue-storage.ts';
import type { TrackerProblem } from '../tracker.ts';
import { safeJson } from './json.ts';

/** Stays well under the service's default body limit (1 MiB), whatever the batch size. */
const MAX_BATCH_CHARS = 512 * 1024;

export type EventQueue = ReturnType<typeof createEventQueue>;

/**
 * The events waiting, oldest first, bounded (past `maxQueueSize` the oldest are dropped) and saved
 * to storage on every change. An event leaves only when the service answered for it; while a
 * request carries it, it is in flight: never sent twice at once, never dropped.
 */
export function createEventQueue(options: { storage: QueueStorage | null | undefined; maxQueueSize: number; report: (problem: TrackerProblem) => void }) {
  const { storage, maxQueueSize, report } = options;
  const queue: QueuedEvent[] = storage?.load() ?? [];
  const inFlight = new Set<string>();
  let droppedTotal = 0;

  function persist() {
    storage?.save(queue);
  }

  function add(event: EventInput) {
    queue.push({ event });
    dropOverflow();
    persist();
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

  /** The oldest waiting events, at most `batchSize` of them and about MAX_BATCH_CHARS of JSON. */
  function nextBatch(batchSize: number): QueuedEvent[] {
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

  /** The service answered for these events: they leave the queue. */
  function settle(events: readonly EventInput[]) {
    const done = new Set(events.map((event) => event.id));
    for (let index = queue.length - 1; index >= 0; index -= 1) if (done.has(queue[index]!.event.id)) queue.splice(index, 1);
    persist();
  }

  return {
    add,
    nextBatch,
    settle,
    persist,
    /** Events not being sent, oldest first. */
    waiting: () => queue.filter((item) => !inFlight.has(item.event.id!)),
    waitingCount: () => queue.length - inFlight.size,
    markInFlight: (events: readonly EventInput[]) => {
      for (const event of events) inFlight.add(event.id!);
    },
    release: (events: readonly EventInput[]) => {
      for (const event of events) inFlight.delete(event.id!);
    },
    /** Events waiting or being sent. */
    size: () => queue.length,
    droppedTotal: () => droppedTotal,
  };
}

import type { EventRow, EventWriter } from '../../../db/event-writers.ts';
import { isDatabaseUnavailable } from '../../../db/errors.ts';
import { withDeadline } from '../../../db/deadline.ts';
import { databaseUnavailable, DomainError } from '../../errors.ts';
import type { Metrics } from '../../metrics.ts';

export interface GroupCommitOptions {
  /** Most events written by one flush. */
  maxFlushEvents: number;
  /** How long the first queued event waits for company before its flush starts. */
  maxDelayMs: number;
  /** Flushes running at once (each holds one database connection). */
  maxConcurrentFlushes: number;
  /** Most events waiting or being written; past it calls are refused at once (backpressure). */
  maxQueuedEvents: number;
  /**
   * Longest wait for one flush's commit. Past it the flush's callers are answered with a retryable
   * error (the write may still commit: their retries are answered `duplicate`). The flush keeps its
   * slot until the database answers, for at most twice this long: a write still hanging then keeps
   * its pool connection (bounded by DATABASE_POOL_MAX), but no longer blocks new flushes, and
   * `drain()` does not wait for it.
   */
  writeTimeoutMs?: number;
  /**
   * Checks that the database answers (e.g. `select 1`). Once a flush finds the database
   * unavailable, new calls are refused at once (fast 503s instead of queueing behind a dead
   * connection pool) and this probe runs every `probeIntervalMs` until it succeeds.
   */
  probe?: () => Promise<void>;
  probeIntervalMs?: number;
}

interface PendingWrite {
  rows: readonly EventRow[];
  resolve(claimed: Set<string>): void;
  reject(error: unknown): void;
}

export type GroupCommitter = ReturnType<typeof createGroupCommitter>;

class WriteTimedOut extends Error {
  override name = 'WriteTimedOut';
  constructor() {
    super('The database did not commit within the write deadline');
  }
}

/**
 * Group commit: concurrent ingest calls share one database write. Each call's rows join a bounded
 * queue; a flush starts when the queue holds `maxFlushEvents` or `maxDelayMs` after its first
 * row, whichever comes first, and each caller is answered only after the flush holding its rows
 * has committed. A full queue refuses new calls at once with a retryable error, so memory stays
 * bounded whatever the load.
 */
export function createGroupCommitter(
  writer: EventWriter,
  options: GroupCommitOptions,
  metrics?: Metrics,
  /** Called after each commit with the flushed rows and the ids stored now (not retries). */
  onCommitted?: (rows: readonly EventRow[], claimed: ReadonlySet<string>) => void,
) {
  const queue: PendingWrite[] = [];
  let queuedEvents = 0;
  let inFlightEvents = 0;
  let runningFlushes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const idleWaiters: (() => void)[] = [];
  let databaseDown = false;
  let probing = false;

  /** Marks the database down and probes it until it answers; then calls are taken again. */
  function markDatabaseDown() {
    if (!options.probe) return;
    databaseDown = true;
    metrics?.databaseDown.set(1);
    if (probing) return;
    probing = true;
    const interval = options.probeIntervalMs ?? 500;
    const probeOnce = async () => {
      try {
        await withDeadline(options.probe!(), Math.max(interval, 1000), () => new Error('probe timed out'));
        databaseDown = false;
        probing = false;
        metrics?.databaseDown.set(0);
      } catch {
        if (closed) probing = false;
        else setTimeout(probeOnce, interval).unref();
      }
    };
    setTimeout(probeOnce, interval).unref();
  }

  const updateDepth = () => metrics?.queueDepth.set(queuedEvents + inFlightEvents);

  /** Stores rows (distinct ids) and resolves with the ids claimed now, after their commit. */
  function write(rows: readonly EventRow[]): Promise<Set<string>> {
    if (rows.length === 0) return Promise.resolve(new Set());
    if (closed) {
      return Promise.reject(new DomainError('unavailable', 'The service is shutting down; retry on another instance', { retryAfterSeconds: 1, reason: 'shutting_down' }));
    }
    if (databaseDown) {
      return Promise.reject(databaseUnavailable(new Error('the database was found unavailable; waiting for it to answer again')));
    }
    if (queuedEvents + inFlightEvents + rows.length > options.maxQueuedEvents) {
      metrics?.overloadRefusals.inc();
      return Promise.reject(new DomainError('unavailable', 'The ingest queue is full; retry shortly', { retryAfterSeconds: 1, reason: 'overloaded' }));
    }
    return new Promise((resolve, reject) => {
      queue.push({ rows, resolve, reject });
      queuedEvents += rows.length;
      updateDepth();
      if (queuedEvents >= options.maxFlushEvents) startFlushes();
      else timer ??= setTimeout(startFlushes, options.maxDelayMs);
    });
  }

  function startFlushes() {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    while (queue.length > 0 && runningFlushes < options.maxConcurrentFlushes) {
      void flush(takeBatch());
    }
    // Rows left behind (all flush slots busy) go as soon as a slot frees.
  }

  /** Whole calls, oldest first, up to maxFlushEvents (a larger call goes alone). */
  function takeBatch(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    let size = 0;
    while (queue.length > 0) {
      const next = queue[0]!;
      if (batch.length > 0 && size + next.rows.length > options.maxFlushEvents) break;
      batch.push(queue.shift()!);
      size += next.rows.length;
    }
    queuedEvents -= size;
    inFlightEvents += size;
    return batch;
  }

  async function flush(batch: PendingWrite[]) {
    runningFlushes += 1;
    // The same id from two calls in one flush: the earlier call owns it; the later one is then
    // answered as a retry (the ledger already holds the id).
    const owner = new Map<string, PendingWrite>();
    const rows: EventRow[] = [];
    for (const pending of batch) {
      for (const row of pending.rows) {
        if (owner.has(row.id)) continue;
        owner.set(row.id, pending);
        rows.push(row);
      }
    }
    const started = performance.now();
    const written = writer.write(rows);
    try {
      const claimed = options.writeTimeoutMs ? await withDeadline(written, options.writeTimeoutMs, () => new WriteTimedOut()) : await written;
      metrics?.flushSize.observe(rows.length);
      metrics?.flushDuration.observe((performance.now() - started) / 1000);
      const claimedByCall = new Map<PendingWrite, Set<string>>(batch.map((pending) => [pending, new Set()]));
      for (const id of claimed) claimedByCall.get(owner.get(id)!)!.add(id);
      for (const pending of batch) pending.resolve(claimedByCall.get(pending)!);
      onCommitted?.(rows, claimed);
    } catch (error) {
      const unavailable = error instanceof WriteTimedOut || isDatabaseUnavailable(error);
      metrics?.databaseErrors.inc({ kind: error instanceof WriteTimedOut ? 'timeout' : unavailable ? 'unavailable' : 'other' });
      const failure = unavailable ? databaseUnavailable(error) : error;
      for (const pending of batch) pending.reject(failure);
      if (unavailable) markDatabaseDown();
      if (error instanceof WriteTimedOut) {
        const settled = written.then(
          (claimed) => onCommitted?.(rows, claimed),
          () => {},
        );
        // Hold the slot while the database may still answer, so a stalled database cannot pile up
        // connections; but not for ever: a half-open connection can take many minutes to fail.
        await withDeadline(settled, 2 * options.writeTimeoutMs!, () => new WriteTimedOut()).catch(() => {});
      }
    } finally {
      inFlightEvents -= rows.length + countSkipped(batch, rows.length);
      runningFlushes -= 1;
      updateDepth();
      if (queue.length > 0) startFlushes();
      else if (runningFlushes === 0) idleWaiters.splice(0).forEach((wake) => wake());
    }
  }

  function countSkipped(batch: PendingWrite[], written: number): number {
    return batch.reduce((sum, pending) => sum + pending.rows.length, 0) - written;
  }

  /** Refuses new writes, then resolves once everything already accepted is committed (or failed). */
  async function drain(): Promise<void> {
    closed = true;
    startFlushes();
    if (queue.length === 0 && runningFlushes === 0) return;
    await new Promise<void>((resolve) => idleWaiters.push(resolve));
  }

  return { write, drain, depth: () => queuedEvents + inFlightEvents };
}

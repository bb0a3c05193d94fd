import { eventKey, type EventRow, type EventWriter } from '../../../db/event-writers.ts';
import { isDatabaseUnavailable, isDataRefusal, isRemoteNodeUnavailable } from '../../../db/errors.ts';
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
  /**
   * Told of events the database refused to store (their data), with the database's error: one
   * event, or the rest of a call once its isolation budget is spent.
   */
  onRefused?: (rows: readonly EventRow[], error: unknown) => void;
}

/** What became of one call's rows, by event key (`eventKey`: workspace and id). */
export interface WriteOutcome {
  /** Keys stored now (a retry of an event already stored is not among them). */
  claimed: Set<string>;
  /** Keys of events the database refused to store for their data; none of them is stored. */
  refused: Set<string>;
}

interface PendingWrite {
  rows: readonly EventRow[];
  resolve(outcome: WriteOutcome): void;
  reject(error: unknown): void;
}

/**
 * Writes a call may spend finding which of its events the database refuses: enough to find a
 * dozen bad events among thousands by halving; past it the rows still unresolved are refused
 * together, so a batch of bad events cannot hold a flush slot for long.
 */
const MAX_ISOLATION_WRITES_PER_CALL = 64;

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
  /** Called after each commit with the flushed rows and the keys stored now (not retries). */
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

  /**
   * Stores rows (distinct keys) and resolves, after their commit, with the keys claimed now and the
   * keys of events the database refused (other calls' events never make this call fail).
   */
  function write(rows: readonly EventRow[]): Promise<WriteOutcome> {
    if (rows.length === 0) return Promise.resolve({ claimed: new Set(), refused: new Set() });
    if (closed) {
      return Promise.reject(
        new DomainError('unavailable', 'The service is shutting down; retry on another instance', { retryAfterSeconds: 1, reason: 'shutting_down' }),
      );
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
    // The same event (workspace and id) from two calls in one flush: the earlier call owns it; the
    // later one is then answered as a retry (the ledger already holds it). A lone call's rows are
    // distinct already.
    const owner = new Map<string, PendingWrite>();
    let rows: readonly EventRow[];
    if (batch.length === 1) rows = batch[0]!.rows;
    else {
      const merged: EventRow[] = [];
      for (const pending of batch) {
        for (const row of pending.rows) {
          const key = eventKey(row);
          if (owner.has(key)) continue;
          owner.set(key, pending);
          merged.push(row);
        }
      }
      rows = merged;
    }
    const started = performance.now();
    const written = writer.write(rows);
    try {
      const claimed = options.writeTimeoutMs ? await withDeadline(written, options.writeTimeoutMs, () => new WriteTimedOut()) : await written;
      metrics?.flushSize.observe(rows.length);
      metrics?.flushDuration.observe((performance.now() - started) / 1000);
      if (batch.length === 1) batch[0]!.resolve({ claimed, refused: new Set() });
      else {
        const claimedByCall = new Map<PendingWrite, Set<string>>(batch.map((pending) => [pending, new Set()]));
        for (const key of claimed) claimedByCall.get(owner.get(key)!)!.add(key);
        for (const pending of batch) pending.resolve({ claimed: claimedByCall.get(pending)!, refused: new Set() });
      }
      onCommitted?.(rows, claimed);
    } catch (error) {
      if (isDataRefusal(error)) {
        metrics?.databaseErrors.inc({ kind: 'data_refused' });
        await writeIsolatingRefusals(batch, rows, owner, error);
        return;
      }
      // A Citus worker is down: calls of workspaces on the other workers are written again on
      // their own, so one worker's outage fails only the calls whose shards it holds.
      if (isRemoteNodeUnavailable(error) && batch.length > 1) {
        metrics?.databaseErrors.inc({ kind: 'unavailable' });
        await writeIsolatingRefusals(batch, rows, owner, error);
        return;
      }
      const unavailable = error instanceof WriteTimedOut || isDatabaseUnavailable(error);
      metrics?.databaseErrors.inc({ kind: error instanceof WriteTimedOut ? 'timeout' : unavailable ? 'unavailable' : 'other' });
      const failure = unavailable ? databaseUnavailable(error) : error;
      for (const pending of batch) pending.reject(failure);
      // Only when the database itself cannot be reached do new calls get refused at once: a worker
      // behind it holds some workspaces, and the others must go on being stored.
      if (unavailable && !isRemoteNodeUnavailable(error)) markDatabaseDown();
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
      else if (runningFlushes === 0) {
        for (const wake of idleWaiters.splice(0)) wake();
      }
    }
  }

  /**
   * The database refused a flush for the data of some of its events, or could not reach the Citus
   * worker holding some of its shards. Each call's rows are written again on their own, so one
   * call's bad event, or one worker's outage, never fails another call; inside a call refused rows
   * are halved until each refused event stands alone and is answered as refused (k bad events
   * among n cost about 2k·log2(n) writes, bounded by MAX_ISOLATION_WRITES_PER_CALL).
   */
  async function writeIsolatingRefusals(batch: PendingWrite[], rows: readonly EventRow[], owner: Map<string, PendingWrite>, flushError: unknown) {
    // Once the database is found unreachable, the calls not yet written fail alike.
    let unavailableFailure: DomainError | undefined;
    for (const pending of batch) {
      if (unavailableFailure) {
        pending.reject(unavailableFailure);
        continue;
      }
      const ownRows = batch.length === 1 ? rows : rows.filter((row) => owner.get(eventKey(row)) === pending);
      let budget = MAX_ISOLATION_WRITES_PER_CALL;
      const outcome: WriteOutcome = { claimed: new Set(), refused: new Set() };
      const refuse = (refusedRows: readonly EventRow[], error: unknown) => {
        for (const row of refusedRows) outcome.refused.add(eventKey(row));
        options.onRefused?.(refusedRows, error);
      };
      const writeHalving = async (part: readonly EventRow[], knownToFail: boolean, lastError: unknown): Promise<void> => {
        // Out of budget, the rows not yet written are refused as they are, unwritten.
        if (budget <= 0) return refuse(part, lastError);
        if (knownToFail) {
          if (part.length === 1) return refuse(part, lastError);
          const middle = Math.ceil(part.length / 2);
          await writeHalving(part.slice(0, middle), false, lastError);
          await writeHalving(part.slice(middle), false, lastError);
          return;
        }
        budget -= 1;
        try {
          const written = writer.write(part);
          const claimed = options.writeTimeoutMs ? await withDeadline(written, options.writeTimeoutMs, () => new WriteTimedOut()) : await written;
          for (const key of claimed) outcome.claimed.add(key);
          onCommitted?.(part, claimed);
        } catch (error) {
          if (!isDataRefusal(error)) throw error;
          await writeHalving(part, true, error);
        }
      };
      try {
        // A lone call's rows are the flush that just failed: go straight to the halves.
        await writeHalving(ownRows, batch.length === 1, flushError);
        pending.resolve(outcome);
      } catch (error) {
        if (isRemoteNodeUnavailable(error)) {
          // This call's shards are on a worker that cannot be reached; other calls may not be.
          pending.reject(databaseUnavailable(error));
          continue;
        }
        if (error instanceof WriteTimedOut || isDatabaseUnavailable(error)) {
          unavailableFailure = databaseUnavailable(error);
          markDatabaseDown();
        }
        pending.reject(unavailableFailure ?? error);
      }
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

import type { SQL } from 'drizzle-orm';
import type { QueryOptions, SqlRunner } from './database.ts';
import { isDatabaseUnavailable, isQueryCanceled, isSerializationFailure } from './errors.ts';
import { withDeadline } from './deadline.ts';

const TIMEOUTS_BEFORE_BYPASS = 3;
/** After the replica fails to answer, reads go to the primary for this long before trying it again. */
const REPLICA_BACKOFF_MS = 5000;

export interface ReadRouting extends SqlRunner {
  /** True while reads fall back to the primary because the replica did not answer. */
  replicaBypassed(): boolean;
}

/**
 * The time budget of reads under a call deadline of `procedureTimeoutMs`, in one place:
 * - a replica statement is stopped by its pool's statement_timeout after a third of the deadline,
 *   leaving time to run the query again on the primary;
 * - the router waits a second longer for a replica's answer, so a slow query is cancelled there
 *   first (and rerun without suspecting the replica); only a replica that says nothing hits it;
 * - the primary's read pool stops a statement a second after the deadline, behind the cancel
 *   request sent at the deadline.
 */
export function readTimeouts(procedureTimeoutMs: number) {
  const replicaStatementMs = Math.max(100, Math.floor(procedureTimeoutMs / 3));
  return { replicaStatementMs, replicaAnswerMs: replicaStatementMs + 1000, readPoolStatementMs: procedureTimeoutMs + 1000 };
}

/**
 * Where read queries go: to the streaming replica when one is configured, else to the primary.
 * A replica that is unreachable, or cancels a query for a recovery conflict, is bypassed: the
 * query runs on the primary, and the replica is tried again after a few seconds. A replica lags
 * the primary by its replication delay (usually milliseconds), so an event just ingested may not
 * be readable at once.
 */
export function createReadRouting(options: {
  primary: SqlRunner;
  replica?: SqlRunner;
  /** A replica query not answered by then counts as the replica being unavailable (it is retried on the primary). */
  replicaTimeoutMs?: number;
  onBypass?: (error: unknown) => void;
}): ReadRouting {
  const { primary, replica } = options;
  const replicaTimeoutMs = options.replicaTimeoutMs ?? 5000;
  let bypassUntil = 0;
  // One slow query is a slow query (it runs again on the primary); several in a row, a stalled replica.
  let timeoutsInARow = 0;
  return {
    async rows<Row>(query: SQL, queryOptions?: QueryOptions): Promise<Row[]> {
      // A read stops with the call it serves (see readsUntil): at the call's deadline its statement
      // is cancelled, so one caller's heavy reads cannot hold connections after it was answered.
      const signal = queryOptions?.signal;
      if (replica && Date.now() >= bypassUntil) {
        try {
          // A replica that accepts connections but does not answer is as good as down.
          const rows = await withDeadline(replica.rows<Row>(query, { signal }), replicaTimeoutMs, () => new ReplicaTimedOut());
          timeoutsInARow = 0;
          return rows;
        } catch (error) {
          // A serialization failure on a hot standby is "canceling statement due to conflict with
          // recovery"; a cancelled query hit the replica pool's statement_timeout (too slow for the
          // replica). Either way the primary answers.
          const conflict = isSerializationFailure(error) || isQueryCanceled(error);
          const timedOut = error instanceof ReplicaTimedOut;
          if (!conflict && !timedOut && !isDatabaseUnavailable(error)) throw error;
          if (timedOut) timeoutsInARow += 1;
          if (!conflict && (!timedOut || timeoutsInARow >= TIMEOUTS_BEFORE_BYPASS)) {
            bypassUntil = Date.now() + REPLICA_BACKOFF_MS;
            timeoutsInARow = 0;
            options.onBypass?.(error);
          }
        }
      }
      return primary.rows<Row>(query, { signal });
    },
    replicaBypassed: () => replica !== undefined && Date.now() < bypassUntil,
  };
}

class ReplicaTimedOut extends Error {
  override name = 'ReplicaTimedOut';
  constructor() {
    super('The read replica did not answer in time');
  }
}

/** `reads` whose every query stops when `signal` aborts (a call's deadline). */
export function readsUntil(reads: SqlRunner, signal: AbortSignal): SqlRunner {
  return { rows: (query, queryOptions) => reads.rows(query, { signal: queryOptions?.signal ?? signal }) };
}

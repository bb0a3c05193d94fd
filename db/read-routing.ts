import type { SQL } from 'drizzle-orm';
import type { SqlRunner } from './database.ts';
import { isDatabaseUnavailable } from './errors.ts';
import { withDeadline } from './deadline.ts';

// 40001 on a hot standby: "canceling statement due to conflict with recovery". The primary answers.
const REPLICA_CONFLICT = '40001';
// 57014: cancelled by the replica pool's statement_timeout (a query too slow for the replica).
const QUERY_CANCELED = '57014';
const TIMEOUTS_BEFORE_BYPASS = 3;
/** After the replica fails to answer, reads go to the primary for this long before trying it again. */
const REPLICA_BACKOFF_MS = 5000;

export interface ReadRouting extends SqlRunner {
  /** True while reads fall back to the primary because the replica did not answer. */
  replicaBypassed(): boolean;
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
    async rows<Row>(query: SQL): Promise<Row[]> {
      if (replica && Date.now() >= bypassUntil) {
        try {
          // A replica that accepts connections but does not answer is as good as down.
          const rows = await withDeadline(replica.rows<Row>(query), replicaTimeoutMs, () => new ReplicaTimedOut());
          timeoutsInARow = 0;
          return rows;
        } catch (error) {
          const conflict = hasCode(error, REPLICA_CONFLICT) || hasCode(error, QUERY_CANCELED);
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
      return primary.rows<Row>(query);
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

function hasCode(error: unknown, code: string): boolean {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth += 1) {
    if ((current as { code?: unknown }).code === code) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

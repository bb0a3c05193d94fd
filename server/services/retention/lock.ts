import { sql } from 'drizzle-orm';
import { ADVISORY_LOCKS } from '../../../db/advisory-locks.ts';
import type { Database } from '../../../db/database.ts';
import { DomainError } from '../../errors.ts';

export function retentionBusy(): DomainError {
  return new DomainError('conflict', 'A retention run is already in progress (in this or another instance); try again later', {
    reason: 'retention_in_progress',
  });
}

/**
 * Runs `work` while holding a session-level advisory lock, so only one instance runs retention at a
 * time; throws `retentionBusy()` at once when another holds it. A session lock (not a transaction
 * lock) because the run spans many transactions; it is released if the process dies, since the
 * connection holding it closes.
 */
export async function withRetentionLock<T>(db: Database, work: () => Promise<T>): Promise<T> {
  // Advisory locks are re-entrant within a session, and PGlite has only one: this process's own
  // runs are kept apart here, before the first await, so a second call sees the first at once.
  if (runningIn.has(db)) throw retentionBusy();
  runningIn.add(db);
  try {
    return await withAdvisoryLock(db, work);
  } finally {
    runningIn.delete(db);
  }
}

const runningIn = new WeakSet<Database>();

async function withAdvisoryLock<T>(db: Database, work: () => Promise<T>): Promise<T> {
  if (db.kind === 'pglite') {
    // One connection: the session is the database's own.
    const [row] = await db.rows<{ locked: boolean }>(sql`select pg_try_advisory_lock(${ADVISORY_LOCKS.retention}) as locked`);
    if (!row?.locked) throw retentionBusy();
    try {
      return await work();
    } finally {
      await db.rows(sql`select pg_advisory_unlock(${ADVISORY_LOCKS.retention})`);
    }
  }
  // The lock lives on a connection reserved for it; the work runs on the rest of the pool.
  if (db.client.options.max < 2) {
    throw new Error('Retention needs at least 2 database connections (DATABASE_POOL_MAX >= 2): one holds its lock while the others work');
  }
  const reserved = await db.client.reserve();
  try {
    const [row] = await reserved<{ locked: boolean }[]>`select pg_try_advisory_lock(${ADVISORY_LOCKS.retention}) as locked`;
    if (!row?.locked) throw retentionBusy();
    try {
      return await work();
    } finally {
      await reserved`select pg_advisory_unlock(${ADVISORY_LOCKS.retention})`;
    }
  } finally {
    reserved.release();
  }
}

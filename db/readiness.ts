import { sql } from 'drizzle-orm';
import { readFileSync } from 'node:fs';
import type { Database } from './database.ts';
import { withDeadline } from './deadline.ts';
import { isUndefinedTable } from './errors.ts';

let expectedMigrations: number | undefined;

/** How many migrations this build ships (db/migrations/meta/_journal.json). */
function shippedMigrationCount(): number {
  if (expectedMigrations === undefined) {
    const journal = JSON.parse(readFileSync(new URL('./migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };
    expectedMigrations = journal.entries.length;
  }
  return expectedMigrations;
}

export type Readiness = { ready: true } | { ready: false; reason: 'database_unreachable' | 'migrations_pending' };

/**
 * Ready means: the database answers within `timeoutMs`, and every shipped migration has been
 * applied. A database that does not answer in time counts as unreachable, so a load balancer's
 * probe never hangs on a stalled connection.
 */
export async function checkReadiness(db: Database, options: { timeoutMs?: number } = {}): Promise<Readiness> {
  let applied: number;
  try {
    const [row] = await withDeadline(
      db.rows<{ count: number | string }>(sql`select count(*)::int as count from drizzle.__drizzle_migrations`),
      options.timeoutMs ?? 2000,
      () => new Error('readiness check timed out'),
    );
    applied = Number(row?.count ?? 0);
  } catch (error) {
    // The migrations table does not exist yet.
    if (isUndefinedTable(error)) {
      return { ready: false, reason: 'migrations_pending' };
    }
    return { ready: false, reason: 'database_unreachable' };
  }
  return applied >= shippedMigrationCount() ? { ready: true } : { ready: false, reason: 'migrations_pending' };
}

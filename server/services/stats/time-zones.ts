import { sql } from 'drizzle-orm';
import type { SqlRunner } from '../../../db/database.ts';
import { DomainError } from '../../errors.ts';

export type TimeZoneCatalog = ReturnType<typeof createTimeZoneCatalog>;

/**
 * The time zones a query may use: those PostgreSQL knows (`pg_timezone_names`, read once), on top
 * of the schema's check that Node knows them too. The two lists differ: Node still knows zones
 * the tz database dropped (`US/Pacific-New`), and an older PostgreSQL may lack new ones. A zone
 * only one side knows is a 400 naming the field, never an SQL error.
 */
export function createTimeZoneCatalog({ db }: { db: SqlRunner }) {
  let known: Promise<ReadonlySet<string>> | undefined;

  function load(): Promise<ReadonlySet<string>> {
    known ??= db
      .rows<{ name: string }>(sql`select name from pg_timezone_names`)
      // PostgreSQL matches zone names without regard to case, and so does Intl.
      .then((rows) => new Set(rows.map((row) => row.name.toLowerCase())))
      .catch((error: unknown) => {
        // A failed read (the database was away) is retried by the next call.
        known = undefined;
        throw error;
      });
    return known;
  }

  async function assertKnown(zone: string, path = 'timeZone'): Promise<void> {
    if (!(await load()).has(zone.toLowerCase())) {
      throw new DomainError('invalid_input', `Unknown time zone "${zone}": use an IANA name such as Europe/Berlin`, { path });
    }
  }

  return { assertKnown };
}

import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { openPglite, openPostgres, type Database } from '../../db/database.ts';
import { createCitusDatabase, dropCitusDatabase } from './citus-cluster.ts';

export interface TestDatabase {
  db: Database;
  /** The connection URL when on real Postgres (for a second client or a child process). */
  url: string | undefined;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: an in-memory PGlite, or on real Postgres (or on
 * the `citus` project's cluster) a new database created for this file and dropped afterwards, so
 * runs never see each other's data.
 */
export async function openTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const migrate = options.migrate ?? true;
  const kind = process.env.TEST_DB_KIND ?? 'pglite';
  if (kind === 'pglite') {
    const db = await openPglite(undefined);
    if (migrate) await db.migrate();
    return { db, url: undefined, drop: () => db.close() };
  }
  if (kind === 'citus') {
    // The cluster comes from the `citus` project's global setup (tests/support/citus-global-setup.ts).
    const nodes = inject('citusNodes');
    const name = `telemetry_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    const url = await createCitusDatabase(nodes, name);
    // Migrations distribute the tables, and the service writes in its Citus form.
    const db = openPostgres({ url, maxConnections: 5, distribution: 'citus' });
    if (migrate) await db.migrate();
    return {
      db,
      url,
      async drop() {
        await db.close();
        await dropCitusDatabase(nodes, name);
      },
    };
  }
  const adminUrl = process.env.TEST_DATABASE_URL;
  // Fail, never skip: a run that expects real Postgres must not pass without it.
  if (!adminUrl) throw new Error('TEST_DB_KIND=postgres needs TEST_DATABASE_URL');
  const name = `telemetry_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = openPostgres({ url: url.toString(), maxConnections: 5 });
  if (migrate) await db.migrate();
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close();
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}

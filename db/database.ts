import { PGlite } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import * as schema from './schema.ts';

export type Orm = PgDatabase<PgQueryResultHKT, typeof schema>;

/**
 * The one handle every part of the service gets: Drizzle for typed queries, `rows` for the raw SQL
 * Drizzle cannot build (it hides the two drivers' different result shapes), and `close`.
 */
export interface SqlRunner {
  rows<Row>(query: SQL): Promise<Row[]>;
}

export interface Database extends SqlRunner {
  readonly kind: 'postgres' | 'pglite';
  readonly orm: Orm;
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** Applies the committed migrations; safe to call from several instances at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url));
// Any constant shared by all instances; serialises concurrent start-ups' migrations.
const MIGRATION_LOCK_ID = 7_316_001;

export interface PostgresOptions {
  url: string;
  /** Pool size. */
  maxConnections?: number;
  /** Seconds to wait for a connection before failing, so an outage is a fast error, not a hang. */
  connectTimeoutSeconds?: number;
}

export function openPostgres(options: PostgresOptions): Database {
  const client = postgres(options.url, {
    max: options.maxConnections ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    idle_timeout: 30,
    onnotice: () => {},
  });
  const orm = drizzlePostgres(client, { schema });
  return {
    kind: 'postgres',
    orm,
    async rows<Row>(query: SQL) {
      return toRows<Row>(await orm.execute(query));
    },
    transaction: (work) => orm.transaction((tx) => work({ rows: async (query) => toRows(await tx.execute(query)) })),
    async migrate() {
      // A dedicated one-connection client, so the session-level advisory lock and the migrator
      // share a connection.
      const connection = postgres(options.url, { max: 1, connect_timeout: options.connectTimeoutSeconds ?? 5, onnotice: () => {} });
      try {
        await connection`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
        await migratePostgres(drizzlePostgres(connection), { migrationsFolder });
      } finally {
        await connection.end({ timeout: 5 });
      }
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

export async function openPglite(dataDir: string | undefined): Promise<Database> {
  // An undefined dataDir keeps the database in memory (tests); a path persists it.
  const client = dataDir ? new PGlite(dataDir) : new PGlite();
  await client.waitReady;
  const orm = drizzlePglite(client, { schema });
  return {
    kind: 'pglite',
    orm,
    async rows<Row>(query: SQL) {
      return toRows<Row>(await orm.execute(query));
    },
    transaction: (work) => orm.transaction((tx) => work({ rows: async (query) => toRows(await tx.execute(query)) })),
    async migrate() {
      await migratePglite(orm, { migrationsFolder });
    },
    async close() {
      await client.close();
    },
  };
}

export interface DatabaseConfig {
  databaseUrl?: string | undefined;
  pgliteDir?: string | undefined;
  maxConnections?: number;
  connectTimeoutSeconds?: number;
}

/** postgres.js when a URL is given, else embedded PGlite, so the service runs with nothing installed. */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.databaseUrl) {
    return openPostgres({
      url: config.databaseUrl,
      ...(config.maxConnections !== undefined && { maxConnections: config.maxConnections }),
      ...(config.connectTimeoutSeconds !== undefined && { connectTimeoutSeconds: config.connectTimeoutSeconds }),
    });
  }
  return openPglite(config.pgliteDir);
}

/** postgres.js answers an array of rows, PGlite an object with `rows`. */
function toRows<Row>(result: unknown): Row[] {
  return (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Row[];
}

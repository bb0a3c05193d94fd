import { lockDataDirectory } from './data-directory-lock.ts';
import { PGlite } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import { PgDialect, type PgDatabase, type PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import postgres, { type Sql } from 'postgres';
import { ADVISORY_LOCKS } from './advisory-locks.ts';
import { citusDistributionStatements, type Distribution } from './distribution.ts';
import { isQueryCanceled } from './errors.ts';
import * as schema from './schema.ts';

export type Orm = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface QueryOptions {
  /**
   * Aborting it stops the statement: a query still waiting for a connection never starts, a
   * running one is cancelled on the server (postgres.js). The promise then rejects with the
   * signal's reason.
   */
  signal?: AbortSignal | undefined;
}

export interface SqlRunner {
  rows<Row>(query: SQL, options?: QueryOptions): Promise<Row[]>;
}

interface DatabaseBase extends SqlRunner {
  readonly orm: Orm;
  /** Whether the tables are sharded across a Citus cluster (db/distribution.ts); `none` on PGlite. */
  readonly distribution: Distribution;
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** Applies the committed migrations; safe to call from several instances at once. */
  migrate(): Promise<void>;
  /** Calls `onPayload` for every NOTIFY on `channel`, from any instance; resolves to an unsubscribe. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The one handle every part of the service gets: Drizzle for typed queries, `rows` for the raw SQL
 * Drizzle cannot build (it hides the two drivers' different result shapes), and the driver itself
 * for what only that driver can do (COPY on postgres.js).
 */
export type PostgresDatabase = DatabaseBase & { readonly kind: 'postgres'; readonly client: Sql };
export type PgliteDatabase = DatabaseBase & { readonly kind: 'pglite'; readonly client: PGlite };
export type Database = PostgresDatabase | PgliteDatabase;

export interface PostgresOptions {
  url: string;
  /** Pool size. */
  maxConnections?: number;
  /** Seconds to wait for a connection before failing, so an outage is a fast error, not a hang. */
  connectTimeoutSeconds?: number;
  /** Server-side statement_timeout for this pool (e.g. a read replica, so abandoned queries stop). */
  statementTimeoutMs?: number;
  /** `citus`: the URL is a Citus coordinator; migrations distribute the tables (db/distribution.ts). */
  distribution?: Distribution;
}

const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url));

/**
 * Connects with TCP_NODELAY. postgres.js leaves Nagle's algorithm on, which delays the last packet
 * of each COPY (and of some pipelined queries) until the server's delayed ACK.
 *
 * The socket is handed over at once, still connecting: postgres.js then owns its errors, close and
 * connect timeout. A factory that waited for the connection and rejected on failure left the pool
 * slot stuck forever (postgres.js never closes a connection whose socket factory threw), so after
 * a database outage under load every query waited for a connection that never came.
 */
function noDelaySocket(options: { host: string[]; port: number[]; path?: string | false }): net.Socket {
  return options.path
    ? net.connect({ path: options.path })
    : net.connect({ host: options.host[0] ?? '127.0.0.1', port: options.port[0] ?? 5432, noDelay: true });
}

function postgresClient(options: PostgresOptions, max: number): Sql {
  const connectTimeout = options.connectTimeoutSeconds ?? 5;
  const url = new URL(options.url);
  const wantsTls = ['require', 'verify-ca', 'verify-full', 'prefer'].includes(url.searchParams.get('sslmode') ?? '');
  return postgres(options.url, {
    max,
    connect_timeout: connectTimeout,
    idle_timeout: 30,
    onnotice: () => {},
    // postgres.js waits up to 20 s between reconnects once connections failed a few times (the
    // count is shared by the pool): after an outage the service would sit idle that long. Retry
    // within a second instead; a refused connection costs the database nothing.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    ...(options.statementTimeoutMs && { connection: { statement_timeout: options.statementTimeoutMs } }),
    // The custom socket handles plain TCP and Unix sockets; TLS keeps postgres.js's own.
    ...(!wantsTls && { socket: noDelaySocket }),
  });
}

/** Turns Drizzle's SQL into text and parameters, as Drizzle itself does before sending. */
const dialect = new PgDialect();

/**
 * Runs `query` on postgres.js so that aborting `signal` cancels it: removed from the pool's queue
 * if it has not started, else a cancel request goes to the server (PostgreSQL then stops the
 * statement with 57014). Same statement and parsing as `orm.execute` (Drizzle sends raw SQL this way).
 */
async function cancellableRows<Row>(client: Sql, query: SQL, signal: AbortSignal): Promise<Row[]> {
  signal.throwIfAborted();
  const { sql: text, params } = dialect.sqlToQuery(query);
  const pending = client.unsafe(text, params as never[]);
  const cancel = () => {
    // postgres.js's public cancel() drops the promise of its cancel request, so a refused cancel
    // connection (database down) would be an unhandled rejection; call the canceller and keep it.
    const canceller = (pending as unknown as { canceller?: ((query: unknown) => Promise<void>) | null }).canceller;
    if (typeof canceller === 'function') {
      (pending as unknown as { canceller: null }).canceller = null;
      canceller(pending).catch(() => {});
    }
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return toRows<Row>(await pending);
  } catch (error) {
    if (signal.aborted && isQueryCanceled(error)) throw signal.reason;
    throw error;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

export function openPostgres(options: PostgresOptions): PostgresDatabase {
  const client = postgresClient(options, options.maxConnections ?? 10);
  const orm = drizzlePostgres(client, { schema });
  const distribution = options.distribution ?? 'none';
  return {
    kind: 'postgres',
    distribution,
    client,
    orm,
    async rows<Row>(query: SQL, queryOptions?: QueryOptions) {
      if (queryOptions?.signal) return cancellableRows<Row>(client, query, queryOptions.signal);
      // Unnamed statements, planned with their values every time: reads give Postgres their time
      // bounds so it prunes partitions while planning. Named statements drift to generic plans
      // after five runs, which turned a 7-day funnel over 10 million events from 1 s into minutes.
      return toRows<Row>(await orm.execute(query));
    },
    transaction: (work) => orm.transaction((tx) => work({ rows: async (query) => toRows(await tx.execute(query)) })),
    async migrate() {
      // A dedicated one-connection client, so the session-level advisory lock and the migrator
      // share a connection.
      const connection = postgresClient(options, 1);
      try {
        await connection`select pg_advisory_lock(${ADVISORY_LOCKS.migrations})`;
        const orm = drizzlePostgres(connection);
        await migratePostgres(orm, { migrationsFolder });
        // Under the same lock, so two instances starting together distribute each table once.
        if (distribution === 'citus') for (const statement of citusDistributionStatements()) await orm.execute(statement);
      } finally {
        await connection.end({ timeout: 5 });
      }
    },
    async listen(channel, onPayload) {
      const subscription = await client.listen(channel, onPayload);
      return () => subscription.unlisten();
    },
    async notify(channel, payload) {
      await client.notify(channel, payload);
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

export async function openPglite(dataDir: string | undefined): Promise<PgliteDatabase> {
  // An undefined dataDir keeps the database in memory (tests); a path persists it, for one process at a time.
  const unlock = dataDir ? lockDataDirectory(dataDir) : () => {};
  const client = dataDir ? new PGlite(dataDir) : new PGlite();
  try {
    await client.waitReady;
  } catch (error) {
    unlock();
    throw error;
  }
  const orm = drizzlePglite(client, { schema });
  return {
    kind: 'pglite',
    distribution: 'none',
    client,
    orm,
    async rows<Row>(query: SQL, queryOptions?: QueryOptions) {
      // PGlite runs one statement at a time in this process and cannot interrupt one: an aborted
      // query is only kept from starting (it may have queued behind others).
      queryOptions?.signal?.throwIfAborted();
      return toRows<Row>(await orm.execute(query));
    },
    transaction: (work) => orm.transaction((tx) => work({ rows: async (query) => toRows(await tx.execute(query)) })),
    async migrate() {
      await migratePglite(orm, { migrationsFolder });
    },
    async listen(channel, onPayload) {
      return client.listen(channel, onPayload);
    },
    async notify(channel, payload) {
      await client.query('select pg_notify($1, $2)', [channel, payload]);
    },
    async close() {
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

export interface DatabaseConfig {
  databaseUrl?: string | undefined;
  /** Only with a URL: PGlite is one database. */
  distribution?: Distribution;
  pgliteDir?: string | undefined;
  maxConnections?: number;
  connectTimeoutSeconds?: number;
}

/** postgres.js when a URL is given, else embedded PGlite, so the service runs with nothing installed. */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.databaseUrl) {
    return openPostgres({
      url: config.databaseUrl,
      ...(config.distribution !== undefined && { distribution: config.distribution }),
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

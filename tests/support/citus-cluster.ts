import postgres from 'postgres';
import { createPgCluster, type PgCluster } from '../faults/support/pg-cluster.ts';

/** Where a local Citus cluster listens (all on 127.0.0.1): plain data, so vitest can provide it to test files. */
export interface CitusNodes {
  coordinator: number;
  workers: number[];
}

export interface CitusCluster {
  coordinator: PgCluster;
  workers: PgCluster[];
  nodes: CitusNodes;
  /** Stops every node and deletes its files. */
  destroy(): Promise<void>;
}

const WORKER_COUNT = 2;

/** Server settings of a Citus node; `shardCount` is what each distributed table is split into. */
function citusSettings(shardCount: number): string[] {
  return [
    'shared_preload_libraries=citus',
    // A coordinator's statement may open several connections to each worker (one per shard it works
    // on in parallel), and workers holding synced metadata connect to each other too.
    'max_connections=300',
    // Citus runs a maintenance daemon, a background worker, in every database that has the
    // extension: each test file's database needs one on every node.
    'max_worker_processes=64',
    `citus.shard_count=${shardCount}`,
  ];
}

export interface CitusClusterOptions {
  /** Workers besides the coordinator; 2 unless told. */
  workers?: number;
  /**
   * Shards of each distributed table. Two per worker unless told: that still shows routing to one
   * shard and fan-out across nodes, with far fewer shard tables to create for every distributed
   * table and partition than the default 32.
   */
  shardCount?: number;
}

/**
 * A Citus cluster on this machine for tests: a coordinator and two workers (or as many as told),
 * each a private PostgreSQL server with Citus preloaded. Databases are made per test file with
 * createCitusDatabase.
 */
export async function createCitusCluster(options: CitusClusterOptions = {}): Promise<CitusCluster> {
  const workerCount = options.workers ?? WORKER_COUNT;
  const settings = citusSettings(options.shardCount ?? 2 * workerCount);
  const started = await Promise.allSettled(Array.from({ length: 1 + workerCount }, () => createPgCluster({ extraSettings: settings })));
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failure = started.find((result) => result.status === 'rejected');
  if (failure) {
    // One node failed to start: stop the others, or their postgres processes outlive the run.
    await Promise.all(servers.map((server) => server.destroy()));
    throw failure.reason;
  }
  const [coordinator, ...workers] = servers as [PgCluster, ...PgCluster[]];
  return {
    coordinator,
    workers,
    nodes: { coordinator: coordinator.port, workers: workers.map((worker) => worker.port) },
    async destroy() {
      await Promise.all(servers.map((server) => server.destroy()));
    },
  };
}

/**
 * Creates database `name` on every node with the Citus extension and registers the workers (and
 * the coordinator's own address) in its metadata. Citus keeps its node list per database, so each
 * test file's database is a cluster of its own. Returns the coordinator's URL of that database.
 */
export async function createCitusDatabase(nodes: CitusNodes, name: string): Promise<string> {
  checkedName(name);
  const ports = [nodes.coordinator, ...nodes.workers];
  await Promise.all(ports.map((port) => onNode(port, 'postgres', (sql) => sql.unsafe(`create database "${name}"`))));
  await Promise.all(ports.map((port) => onNode(port, name, (sql) => sql`create extension citus`)));
  await onNode(nodes.coordinator, name, async (sql) => {
    await sql`select citus_set_coordinator_host('127.0.0.1', ${nodes.coordinator})`;
    // One at a time: adding a node syncs the metadata to it while holding a lock on the node list.
    // With several test files creating databases at once, the sync's connection to a worker has
    // been seen to fail ("failure on connection marked as essential"); adding a node again is
    // harmless (it answers the node's id), so a failed add is tried twice more.
    for (const worker of nodes.workers) {
      for (let attempt = 1; ; attempt += 1) {
        try {
          await sql`select citus_add_node('127.0.0.1', ${worker})`;
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
        }
      }
    }
  });
  return urlOf(nodes.coordinator, name);
}

/**
 * One more PostgreSQL server with Citus preloaded, not yet part of any database's cluster: what an
 * operator starts before adding a worker (see addCitusWorker). The caller destroys it.
 */
export function startCitusNode(options: Pick<CitusClusterOptions, 'shardCount'> = {}): Promise<PgCluster> {
  return createPgCluster({ extraSettings: citusSettings(options.shardCount ?? 2 * WORKER_COUNT) });
}

/**
 * Makes the server on `port` a worker of database `name`: the database and the extension on it,
 * then `citus_add_node` on the coordinator (which copies reference tables and metadata to it). It
 * holds no shards of distributed tables until they are rebalanced. Returns the node's id.
 */
export async function addCitusWorker(nodes: CitusNodes, name: string, port: number): Promise<number> {
  checkedName(name);
  await onNode(port, 'postgres', (sql) => sql.unsafe(`create database "${name}"`));
  await onNode(port, name, (sql) => sql`create extension citus`);
  const [added] = await onNode(nodes.coordinator, name, (sql) => sql<{ id: number }[]>`select citus_add_node('127.0.0.1', ${port}) as id`);
  return added!.id;
}

/** Drops database `name` on every node, disconnecting whoever is still in it. */
export async function dropCitusDatabase(nodes: CitusNodes, name: string): Promise<void> {
  checkedName(name);
  const drop = (port: number) => onNode(port, 'postgres', (sql) => sql.unsafe(`drop database if exists "${name}" with (force)`));
  // The coordinator first: its sessions and maintenance daemon are what connect to the workers' copies.
  await drop(nodes.coordinator);
  await Promise.all(nodes.workers.map(drop));
}

function urlOf(port: number, database: string): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`;
}

async function onNode<T>(port: number, database: string, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(urlOf(port, database), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Database names go into statements unquoted by the driver: only plain identifiers are let through. */
function checkedName(name: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${name}`);
}

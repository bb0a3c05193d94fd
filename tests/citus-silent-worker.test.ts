import { randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import type { inferProcedureInput } from '@trpc/server';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openPostgres } from '../db/database.ts';
import type { AppRouter } from '../server/routers/index.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { createTestKeys, createTestWorkspace, procedureCaller, type TestKeys, testConfig, testServices } from './support/app.ts';
import { addCitusWorker, type CitusCluster, createCitusCluster, createCitusDatabase, startCitusNode } from './support/citus-cluster.ts';
import type { PgCluster } from './faults/support/pg-cluster.ts';
import { createTcpProxy, type TcpProxy } from './faults/support/tcp-proxy.ts';

// A worker whose host goes silent (connections stay open, nothing comes back), on a cluster of this
// file's own: one worker reached directly, the other through a TCP proxy the test can black-hole.

type IngestEvent = inferProcedureInput<AppRouter['telemetry']['ingestBatch']>['events'][number];

const DATABASE = 'telemetry_silent_worker';
const WRITE_TIMEOUT_MS = 500;
const POOL = 5;

describe.runIf(process.env.TEST_DB_KIND === 'citus')('on a Citus cluster with a worker that goes silent', () => {
  let cluster: CitusCluster;
  let silentNode: PgCluster;
  let proxy: TcpProxy;
  let db: Database;
  let keys: TestKeys;

  beforeAll(async () => {
    cluster = await createCitusCluster({ workers: 1, shardCount: 4 });
    silentNode = await startCitusNode({ shardCount: 4 });
    proxy = await createTcpProxy({ host: '127.0.0.1', port: silentNode.port });
    const url = await createCitusDatabase(cluster.nodes, DATABASE);
    await addCitusWorker(cluster.nodes, DATABASE, proxy.port);
    db = openPostgres({ url, maxConnections: POOL, distribution: 'citus' });
    await db.migrate();
    await maintainPartitions(db, { daysAhead: 1 });
    keys = await createTestKeys(db);
  });

  afterAll(async () => {
    proxy?.setSilent(false);
    proxy?.cut();
    await db?.close();
    await proxy?.close();
    await silentNode?.destroy();
    await cluster?.destroy();
  });

  const eventsFor = (workspaceId: string, count: number): IngestEvent[] =>
    Array.from({ length: count }, () => ({ id: randomUUID(), workspaceId, source: 'web' as const, eventType: 'custom' as const, name: 'x' }));

  async function workspaceOn(port: number): Promise<string> {
    for (;;) {
      const workspaceId = await createTestWorkspace(db);
      const [row] = await db.rows<{ port: number }>(sql`
        select n.nodeport as port from pg_dist_placement p join pg_dist_node n on n.groupid = p.groupid
        where p.shardid = get_shard_id_for_distribution_column('telemetry.events', ${workspaceId}::uuid)`);
      if (row?.port === port) return workspaceId;
    }
  }

  const codeOf = (error: unknown) => (error instanceof TRPCError ? error.code : `not a TRPCError: ${String(error)}`);

  it('answers a retryable 503 for the silent worker’s workspace, releases the connections its writes held, and goes on storing other workspaces', async () => {
    const services = testServices(db, { config: testConfig({ INGEST_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS) }) });
    const caller = procedureCaller(db, { apiKey: keys.ingest, services });
    const ingest = async (events: IngestEvent[]) => {
      const result = await caller.telemetry.ingestBatch({ events });
      expect(result.rejected).toBe(0);
      return result.receipts.flatMap((receipt) => (receipt.status === 'rejected' ? [] : [receipt.id]));
    };
    const silent = await workspaceOn(proxy.port);
    const healthy = await workspaceOn(cluster.nodes.workers[0]!);
    const acknowledged = { silent: await ingest(eventsFor(silent, 2)), healthy: await ingest(eventsFor(healthy, 2)) };

    proxy.setSilent(true);
    const refused = eventsFor(silent, 2);
    // More writes reaching the silent worker than the pool has connections, each given up at the
    // write deadline (counted by the timeout metric; calls between them are refused at once while
    // the database counts as down): were their statements never cancelled, every connection would
    // hang and nothing else could be written.
    const timedOutFlushes = async () => (await services.metrics.databaseErrors.get()).values.find((value) => value.labels.kind === 'timeout')?.value ?? 0;
    const codes = new Set<string>();
    while ((await timedOutFlushes()) <= POOL) {
      codes.add(await caller.telemetry.ingestBatch({ events: refused }).then(() => 'accepted', codeOf));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(codes).toEqual(new Set(['SERVICE_UNAVAILABLE']));

    // The healthy workspace is stored again once the cancelled statements gave their connections
    // back (a timed-out flush also refuses every call until the probe answers, half a second).
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        acknowledged.healthy.push(...(await ingest(eventsFor(healthy, 3))));
        break;
      } catch (error) {
        expect(codeOf(error)).toBe('SERVICE_UNAVAILABLE');
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    // The host answers again: the connections that saw nothing are dropped, new ones work.
    proxy.setSilent(false);
    proxy.cut();
    const retryDeadline = Date.now() + 30_000;
    for (;;) {
      try {
        acknowledged.silent.push(...(await ingest(refused)));
        break;
      } catch (error) {
        expect(codeOf(error)).toBe('SERVICE_UNAVAILABLE');
        if (Date.now() > retryDeadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    for (const [workspaceId, ids] of [
      [silent, acknowledged.silent],
      [healthy, acknowledged.healthy],
    ] as const) {
      const stored = await db.rows<{ id: string }>(sql`select id::text as id from telemetry.events where workspace_id = ${workspaceId}`);
      expect(stored.map((row) => row.id).sort()).toEqual([...new Set(ids)].sort());
    }
  });
});

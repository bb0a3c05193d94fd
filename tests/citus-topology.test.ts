import { randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import type { inferProcedureInput } from '@trpc/server';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openPostgres } from '../db/database.ts';
import type { AppRouter } from '../server/routers/index.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import type { Services } from '../server/trpc/context.ts';
import { createTestKeys, createTestWorkspace, procedureCaller, type TestKeys, testServices } from './support/app.ts';
import { addCitusWorker, type CitusCluster, createCitusCluster, createCitusDatabase, startCitusNode } from './support/citus-cluster.ts';
import type { PgCluster } from './faults/support/pg-cluster.ts';

// Changes of topology on a Citus cluster of this file's own (the `citus` project's shared cluster
// must keep its nodes running): a worker added and the shards rebalanced onto it, and a worker
// that crashes and comes back. Everything is driven and checked through the service's procedures.

type IngestEvent = inferProcedureInput<AppRouter['telemetry']['ingestBatch']>['events'][number];

const DATABASE = 'telemetry_topology';
// Six shards on two workers are three each; a third worker then takes two of them.
const SHARD_COUNT = 6;
const HOUR_MS = 3_600_000;

/** What a topology change took, printed for the record (never asserted on). */
const timings: Record<string, number | string> = {};

describe.runIf(process.env.TEST_DB_KIND === 'citus')('on a Citus cluster whose topology changes', () => {
  let cluster: CitusCluster;
  let extraNode: PgCluster | undefined;
  let db: Database;
  let keys: TestKeys;

  beforeAll(async () => {
    cluster = await createCitusCluster({ workers: 2, shardCount: SHARD_COUNT });
    const url = await createCitusDatabase(cluster.nodes, DATABASE);
    db = openPostgres({ url, maxConnections: 5, distribution: 'citus' });
    await db.migrate();
    await maintainPartitions(db, { daysAhead: 1 });
    keys = await createTestKeys(db);
  });

  afterAll(async () => {
    await db?.close();
    await extraNode?.destroy();
    await cluster?.destroy();
    process.stdout.write(`citus topology timings: ${JSON.stringify(timings)}\n`);
  });

  /** The service's procedures, as one instance of it wires them (its own group committer). */
  function callers(services: Services = testServices(db)) {
    return {
      ingest: procedureCaller(db, { apiKey: keys.ingest, services }),
      read: procedureCaller(db, { apiKey: keys.admin, services }),
    };
  }
  type Callers = ReturnType<typeof callers>;

  const eventsFor = (workspaceId: string, count: number, name = 'page.view'): IngestEvent[] =>
    Array.from({ length: count }, () => ({ id: randomUUID(), workspaceId, source: 'web' as const, eventType: 'custom' as const, name }));

  /** Ingests a batch and answers the ids acknowledged as stored (accepted or already stored). */
  async function ingest(caller: Callers, events: IngestEvent[]): Promise<string[]> {
    const result = await caller.ingest.telemetry.ingestBatch({ events });
    expect(result.rejected, JSON.stringify(result.receipts)).toBe(0);
    return result.receipts.flatMap((receipt) => (receipt.status === 'rejected' ? [] : [receipt.id]));
  }

  /** Every event id of a workspace, read page by page through telemetry.events.list. */
  async function listedIds(caller: Callers, workspaceId: string): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await caller.read.telemetry.events.list({ workspaceId, limit: 500, ...(cursor && { cursor }) });
      ids.push(...page.events.map((event) => event.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return ids;
  }

  /** The workspace's event count this hour and the next, from the per-minute rollups. */
  async function rolledUpCount(caller: Callers, workspaceId: string): Promise<number> {
    const from = new Date(Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS);
    const to = new Date(from.getTime() + 3 * HOUR_MS);
    const answer = await caller.read.telemetry.stats.timeseries({ workspaceId, from, to, bucket: 'hour' });
    expect(answer.source).toBe('rollup');
    return answer.series.reduce((sum, series) => sum + series.total, 0);
  }

  /** The port of the worker holding a workspace's events (all its tables are co-located with them). */
  async function workerOf(workspaceId: string): Promise<number> {
    const [row] = await db.rows<{ port: number }>(sql`
      select n.nodeport as port from pg_dist_placement p join pg_dist_node n on n.groupid = p.groupid
      where p.shardid = get_shard_id_for_distribution_column('telemetry.events', ${workspaceId}::uuid)`);
    if (!row) throw new Error(`no placement for workspace ${workspaceId}`);
    return row.port;
  }

  /** Where each shard of every distributed table is, as `shard id -> port` (reference tables are on every node). */
  async function placements(): Promise<Map<string, number>> {
    const rows = await db.rows<{ shardid: string; port: number }>(
      sql`select shardid::text as shardid, nodeport as port from citus_shards where citus_table_type = 'distributed'`,
    );
    return new Map(rows.map((row) => [row.shardid, row.port]));
  }

  async function portsHoldingEvents(): Promise<number[]> {
    const rows = await db.rows<{ port: number }>(
      sql`select distinct nodeport as port from citus_shards where table_name = 'telemetry.events'::regclass order by 1`,
    );
    return rows.map((row) => row.port);
  }

  /** Runs `attempt` until it resolves, at most `timeoutMs`; each failure goes to `onFailure` first (which may throw to stop). */
  async function untilItWorks<T>(attempt: () => Promise<T>, onFailure: (error: unknown) => void, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        onFailure(error);
        if (Date.now() > deadline) throw error;
        // The poll interval (as waitUntil's): a refused call answers at once, so attempts would spin.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** The tRPC code of a refused call, or what else was thrown. */
  const codeOf = (error: unknown) => (error instanceof TRPCError ? error.code : `not a TRPCError: ${String(error)}`);

  it('keeps every acknowledged event and its rollups readable after a worker is added and the shards are rebalanced onto it, and stores new events there', async () => {
    const caller = callers();
    const workspaceIds = await Promise.all(Array.from({ length: 8 }, () => createTestWorkspace(db)));
    const acknowledged = new Map<string, string[]>();
    for (const [index, workspaceId] of workspaceIds.entries()) acknowledged.set(workspaceId, await ingest(caller, eventsFor(workspaceId, 5 + index)));
    const rollupsBefore = new Map<string, number>();
    for (const workspaceId of workspaceIds) rollupsBefore.set(workspaceId, await rolledUpCount(caller, workspaceId));
    expect(await portsHoldingEvents()).toEqual([...cluster.nodes.workers].sort((a, b) => a - b));

    let started = performance.now();
    extraNode = await startCitusNode({ shardCount: SHARD_COUNT });
    timings.startExtraNodeMs = Math.round(performance.now() - started);
    started = performance.now();
    await addCitusWorker(cluster.nodes, DATABASE, extraNode.port);
    timings.addNodeMs = Math.round(performance.now() - started);

    const before = await placements();
    started = performance.now();
    await db.rows(sql`select rebalance_table_shards(shard_transfer_mode => 'block_writes')`);
    timings.rebalanceMs = Math.round(performance.now() - started);
    const after = await placements();
    const moved = [...after].filter(([shard, port]) => before.get(shard) !== port);
    // Each shard of events moved carries its co-located shards (id ledger, rollups, partitions) along.
    const movedEventShards = await db.rows<{ n: number }>(sql`
      select count(*)::int as n from citus_shards where table_name = 'telemetry.events'::regclass and nodeport = ${extraNode.port}`);
    timings.shardsMoved = moved.length;
    timings.shardGroupsMoved = movedEventShards[0]?.n ?? 0;

    expect(moved.length).toBeGreaterThan(0);
    expect([...new Set(moved.map(([, port]) => port))]).toEqual([extraNode.port]);
    expect(await portsHoldingEvents()).toEqual([...cluster.nodes.workers, extraNode.port].sort((a, b) => a - b));
    const workspacesOnNewWorker: string[] = [];
    for (const workspaceId of workspaceIds) if ((await workerOf(workspaceId)) === extraNode.port) workspacesOnNewWorker.push(workspaceId);

    for (const workspaceId of workspaceIds) {
      const ids = await listedIds(caller, workspaceId);
      expect(ids.toSorted(), workspaceId).toEqual(acknowledged.get(workspaceId)!.toSorted());
      expect(await rolledUpCount(caller, workspaceId), workspaceId).toBe(rollupsBefore.get(workspaceId));
    }

    // New events after the move, into every workspace: those on the new worker included.
    for (const workspaceId of workspaceIds) acknowledged.get(workspaceId)!.push(...(await ingest(caller, eventsFor(workspaceId, 3, 'after.rebalance'))));
    for (const workspaceId of workspaceIds) {
      expect((await listedIds(caller, workspaceId)).toSorted(), workspaceId).toEqual(acknowledged.get(workspaceId)!.toSorted());
      expect(await rolledUpCount(caller, workspaceId), workspaceId).toBe(rollupsBefore.get(workspaceId)! + 3);
    }
    timings.workspacesOnNewWorker = workspacesOnNewWorker.length;

    // A workspace made now whose shard is on the new worker, whichever of the eight were moved.
    let fresh = await createTestWorkspace(db);
    while ((await workerOf(fresh)) !== extraNode.port) fresh = await createTestWorkspace(db);
    const stored = await ingest(caller, eventsFor(fresh, 4, 'after.rebalance'));
    expect(stored).toHaveLength(4);
    expect((await listedIds(caller, fresh)).toSorted()).toEqual(stored.toSorted());
    expect(await rolledUpCount(caller, fresh)).toBe(4);
  });

  it('answers a retryable unavailable for a workspace on a crashed worker, goes on ingesting and reading a workspace on a healthy worker, and stores the retried events exactly once when the worker is back', async () => {
    const workers: PgCluster[] = [...cluster.workers, ...(extraNode ? [extraNode] : [])];
    const caller = callers();
    // A workspace on some worker, and one on another: the first one's worker will crash.
    const doomed = await createTestWorkspace(db);
    const victimPort = await workerOf(doomed);
    let healthy = await createTestWorkspace(db);
    while ((await workerOf(healthy)) === victimPort) healthy = await createTestWorkspace(db);
    const victim = workers.find((worker) => worker.port === victimPort)!;
    expect(victim).toBeDefined();

    const acknowledged = { [doomed]: await ingest(caller, eventsFor(doomed, 4)), [healthy]: await ingest(caller, eventsFor(healthy, 4)) };

    await victim.stop('immediate');
    let restarted = false;
    try {
      const retried = eventsFor(doomed, 3, 'during.outage');
      const refusal = await caller.ingest.telemetry.ingestBatch({ events: retried }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(codeOf(refusal)).toBe('SERVICE_UNAVAILABLE');
      // Its reads are refused alike, retryable, not answered as an internal error.
      const unreadable = await listedIds(caller, doomed).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(codeOf(unreadable)).toBe('SERVICE_UNAVAILABLE');

      // The healthy workspace's worker answers: its calls are stored at once, right after the
      // refused one (a worker's outage does not mark the whole database down), and calls of both
      // workspaces sent together fail only on the lost worker, whether or not they share a flush.
      acknowledged[healthy]!.push(...(await ingest(caller, eventsFor(healthy, 3, 'during.outage'))));
      const [lost, kept] = await Promise.allSettled([
        ingest(caller, eventsFor(doomed, 2, 'sent.together')),
        ingest(caller, eventsFor(healthy, 2, 'sent.together')),
      ]);
      expect(lost.status === 'rejected' && codeOf(lost.reason)).toBe('SERVICE_UNAVAILABLE');
      expect(kept.status).toBe('fulfilled');
      if (kept.status === 'fulfilled') acknowledged[healthy]!.push(...kept.value);
      acknowledged[healthy]!.push(...(await ingest(caller, eventsFor(healthy, 3, 'during.outage'))));
      expect((await listedIds(caller, healthy)).toSorted()).toEqual(acknowledged[healthy]!.toSorted());

      await victim.start();
      restarted = true;
      const startedAgain = performance.now();
      const doomedRefusals: string[] = [];
      // The client retries the very batch that was refused: what was stored meanwhile is answered as already stored.
      acknowledged[doomed]!.push(
        ...(await untilItWorks(
          () => ingest(caller, retried),
          (error) => doomedRefusals.push(codeOf(error)),
          30_000,
        )),
      );
      timings.ingestWorksAgainAfterRestartMs = Math.round(performance.now() - startedAgain);
      timings.refusalsAfterRestart = doomedRefusals.length;
      expect(doomedRefusals.filter((code) => code !== 'SERVICE_UNAVAILABLE')).toEqual([]);
    } finally {
      if (!restarted) await victim.start();
    }

    for (const workspaceId of [doomed, healthy]) {
      const ids = await listedIds(caller, workspaceId);
      expect(new Set(ids).size, workspaceId).toBe(ids.length);
      expect(ids.toSorted(), workspaceId).toEqual(acknowledged[workspaceId]!.toSorted());
      expect(await rolledUpCount(caller, workspaceId), workspaceId).toBe(acknowledged[workspaceId]!.length);
    }
  });
});

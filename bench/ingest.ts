/**
 * `npm run bench`: ingestion throughput and latency against real PostgreSQL, on Node and on Bun,
 * each compared with baselines measured in the same run (this machine is shared and noisy, so the
 * ratios are the figures that matter). Prints a table and writes bench/results/ingest-*.json.
 *
 *   DATABASE_URL   a Postgres server to create the benchmark database on (default: local postgres)
 *   BENCH_SECONDS  seconds per load scenario (default 10)
 *   BENCH_RUNTIMES comma-separated: node,bun (default both)
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { openPostgres, type PostgresDatabase } from '../db/database.ts';
import { createJsonEventWriter, type EventRow, type EventWriter } from '../db/event-writers.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { createCopyEventWriter, createUnnestEventWriter, createValuesEventWriter, toCopyText } from './insert-forms.ts';
import { runLoad, startServer, type LoadResult, type Runtime } from './support.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RUNTIMES = (process.env.BENCH_RUNTIMES ?? 'node,bun').split(',').map((r) => r.trim()) as Runtime[];
const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const WORKSPACE = randomUUID();
const ADMIN_KEY = `bench-admin-${randomUUID()}`;
const COPY_ROWS = 300_000;

const log = (message: string) => process.stderr.write(`${message}\n`);

function sampleEvent(n: number) {
  return {
    workspaceId: WORKSPACE,
    userId: '7d0b5a4e-3f59-4c1b-9a0e-5b8a2f1c6d3e',
    source: 'web',
    eventType: 'ui.interaction',
    name: 'button.click',
    targetType: 'button',
    targetId: `signup-${n % 50}`,
    metadata: { route: '/pricing', label: 'Start free trial', viewport: { w: 1440, h: 900 }, experiment: 'b' },
  };
}

function sampleRows(count: number): EventRow[] {
  const now = new Date();
  return Array.from({ length: count }, (_, n) => {
    const event = sampleEvent(n);
    return { ...event, id: randomUUID(), createdAt: now, receivedAt: now };
  });
}

/** Empties the tables between scenarios, once writes still in flight from the last one are done. */
async function truncate(db: PostgresDatabase) {
  for (let attempt = 1; ; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    try {
      await db.client.unsafe('truncate telemetry.event_ids, telemetry.events');
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}

/** Rows per second writing `rows` in batches of `batchSize`, `inFlight` batches at a time. */
async function writeThroughput(rows: EventRow[], batchSize: number, inFlight: number, writeBatch: (batch: EventRow[]) => Promise<unknown>): Promise<number> {
  const batches: EventRow[][] = [];
  for (let i = 0; i < rows.length; i += batchSize) batches.push(rows.slice(i, i + batchSize));
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < batches.length) await writeBatch(batches[next++]!);
    }),
  );
  return Math.round(rows.length / ((performance.now() - started) / 1000));
}

async function main() {
  const databaseName = `telemetry_bench_${Date.now()}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${databaseName}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${databaseName}`;
  const databaseUrl = url.toString();
  const db = openPostgres({ url: databaseUrl, maxConnections: 8 });
  const raw = postgres(databaseUrl, { max: 8, onnotice: () => {} });
  const results: Record<string, unknown> = {
    startedAt: new Date().toISOString(),
    seconds: SECONDS,
    machine: { cpus: (await import('node:os')).cpus().length },
  };

  try {
    await db.migrate();
    await maintainPartitions(db, { daysAhead: 2 });

    // 1. The physical limit: COPY straight into the partitioned table.
    log('COPY baseline…');
    await truncate(db);
    const copyRowsPerSecond = await writeThroughput(sampleRows(COPY_ROWS), 2000, 4, async (batch) => {
      const writable = await db.client
        .unsafe(
          'copy telemetry.events (id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at) from stdin',
        )
        .writable();
      await pipeline(Readable.from([toCopyText(batch)]), writable);
    });
    results.copy = { rowsPerSecond: copyRowsPerSecond };

    // Insert forms, each with the id ledger (exactly-once storage), 1,000-row batches, 4 in flight.
    const forms: EventWriter[] = [createCopyEventWriter(db.client), createUnnestEventWriter(raw), createValuesEventWriter(raw), createJsonEventWriter(db)];
    const insertForms: Record<string, number> = {};
    for (const writer of forms) {
      log(`insert form ${writer.form}…`);
      await truncate(db);
      insertForms[writer.form] = await writeThroughput(sampleRows(100_000), 1000, 4, (batch) => writer.write(batch));
    }
    results.insertForms = insertForms;

    const runtimes: Record<string, unknown> = {};
    for (const runtime of RUNTIMES) {
      log(`${runtime}: telemetry service…`);
      await truncate(db);
      const service = await startServer(
        runtime,
        'server/main.ts',
        {
          DATABASE_URL: databaseUrl,
          TELEMETRY_ADMIN_KEY: ADMIN_KEY,
          LOG_LEVEL: 'warn',
          RATE_LIMIT_ADMIN_EPS: '100000000',
          RATE_LIMIT_ADMIN_BURST: '0',
          DATABASE_POOL_MAX: '8',
        },
        '/readyz',
      );
      const auth = { authorization: `Bearer ${ADMIN_KEY}` };
      const batchBody = (size: number) => JSON.stringify({ json: { events: Array.from({ length: size }, (_, n) => sampleEvent(n)) } });
      // Warm up (JIT, connections, key cache).
      await runLoad({
        url: service.url,
        path: '/trpc/telemetry.ingest',
        body: JSON.stringify({ json: sampleEvent(0) }),
        headers: auth,
        connections: 16,
        seconds: 2,
      });
      const batch100 = await runLoad({
        url: service.url,
        path: '/trpc/telemetry.ingestBatch',
        body: batchBody(100),
        headers: auth,
        connections: 16,
        seconds: SECONDS,
      });
      const batch1000 = await runLoad({
        url: service.url,
        path: '/trpc/telemetry.ingestBatch',
        body: batchBody(1000),
        headers: auth,
        connections: 16,
        seconds: SECONDS,
      });
      await truncate(db);
      const single = await runLoad({
        url: service.url,
        path: '/trpc/telemetry.ingest',
        body: JSON.stringify({ json: sampleEvent(0) }),
        headers: auth,
        connections: 64,
        seconds: SECONDS,
      });
      const peakRssMb = service.peakRssMb();
      await service.stop();

      log(`${runtime}: naive baseline…`);
      await truncate(db);
      const naiveServer = await startServer(runtime, 'bench/servers/naive.ts', { DATABASE_URL: databaseUrl });
      await runLoad({ url: naiveServer.url, path: '/trpc/telemetry.ingest', body: JSON.stringify({ json: sampleEvent(0) }), connections: 16, seconds: 2 });
      const naive = await runLoad({
        url: naiveServer.url,
        path: '/trpc/telemetry.ingest',
        body: JSON.stringify({ json: sampleEvent(0) }),
        connections: 64,
        seconds: SECONDS,
      });
      await naiveServer.stop();

      log(`${runtime}: bare Hono…`);
      const bareServer = await startServer(runtime, 'bench/servers/bare.ts', {}, '/trpc/telemetry.ingest');
      await runLoad({ url: bareServer.url, path: '/trpc/telemetry.ingest', body: JSON.stringify({ json: sampleEvent(0) }), connections: 16, seconds: 2 });
      const bare = await runLoad({
        url: bareServer.url,
        path: '/trpc/telemetry.ingest',
        body: JSON.stringify({ json: sampleEvent(0) }),
        connections: 64,
        seconds: SECONDS,
      });
      await bareServer.stop();

      log(`${runtime}: minimal tRPC on Hono…`);
      const trpcServerProcess = await startServer(runtime, 'bench/servers/trpc-minimal.ts', {}, '/trpc/telemetry.ingest');
      await runLoad({
        url: trpcServerProcess.url,
        path: '/trpc/telemetry.ingest',
        body: JSON.stringify({ json: sampleEvent(0) }),
        connections: 16,
        seconds: 2,
      });
      const trpcMinimal = await runLoad({
        url: trpcServerProcess.url,
        path: '/trpc/telemetry.ingest',
        body: JSON.stringify({ json: sampleEvent(0) }),
        connections: 64,
        seconds: SECONDS,
      });
      await trpcServerProcess.stop();

      const eventsPerSecond = (load: LoadResult, size: number) => load.requestsPerSecond * size;
      runtimes[runtime] = {
        batch100: { ...batch100, eventsPerSecond: eventsPerSecond(batch100, 100) },
        batch1000: { ...batch1000, eventsPerSecond: eventsPerSecond(batch1000, 1000) },
        single,
        naive,
        bare,
        trpcMinimal,
        peakRssMb,
        ratios: {
          batch1000VsCopy: round(eventsPerSecond(batch1000, 1000) / copyRowsPerSecond),
          batch100VsCopy: round(eventsPerSecond(batch100, 100) / copyRowsPerSecond),
          singleVsNaive: round(single.requestsPerSecond / naive.requestsPerSecond),
          singleVsBare: round(single.requestsPerSecond / bare.requestsPerSecond),
          singleVsTrpcMinimal: round(single.requestsPerSecond / trpcMinimal.requestsPerSecond),
          trpcMinimalVsBare: round(trpcMinimal.requestsPerSecond / bare.requestsPerSecond),
        },
      };
    }
    results.runtimes = runtimes;
    results.targets = { batchVsCopy: 0.5, singleVsNaive: 2, singleVsBare: 0.4, singleP99Ms: 50, peakRssMb: 300 };

    printTable(results);
    mkdirSync('bench/results', { recursive: true });
    const file = `bench/results/ingest-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync('bench/results/ingest-latest.json', `${JSON.stringify(results, null, 2)}\n`);
    log(`results written to ${file}`);
  } finally {
    await raw.end();
    await db.close();
    await admin.unsafe(`drop database if exists "${databaseName}" with (force)`);
    await admin.end();
  }
}

function round(value: number) {
  return Math.round(value * 100) / 100;
}

function printTable(results: Record<string, unknown>) {
  const copy = (results.copy as { rowsPerSecond: number }).rowsPerSecond;
  const lines: string[] = [];
  lines.push(`COPY into the partitioned table (2,000-row batches, 4 in flight): ${copy.toLocaleString('en')} rows/s`);
  lines.push('Insert forms with the id ledger (1,000-row batches, 4 in flight), rows/s:');
  for (const [form, rate] of Object.entries(results.insertForms as Record<string, number>))
    lines.push(`  ${form.padEnd(8)} ${rate.toLocaleString('en').padStart(9)}  (${round(rate / copy)}x COPY)`);
  lines.push('');
  lines.push('runtime  scenario                       req/s     events/s   p50 ms  p99 ms  failed  ratio');
  for (const [runtime, data] of Object.entries(
    results.runtimes as Record<string, Record<string, LoadResult & { eventsPerSecond?: number }> & { ratios: Record<string, number>; peakRssMb: number }>,
  )) {
    const row = (name: string, load: LoadResult & { eventsPerSecond?: number }, ratio: string) =>
      lines.push(
        `${runtime.padEnd(8)} ${name.padEnd(30)} ${String(load.requestsPerSecond).padStart(7)} ${String(load.eventsPerSecond ?? load.requestsPerSecond).padStart(11)} ${String(load.p50Ms).padStart(7)} ${String(load.p99Ms).padStart(7)} ${String(load.failedRequests).padStart(7)}  ${ratio}`,
      );
    row('ingestBatch x100, 16 conns', data.batch100!, `${data.ratios.batch100VsCopy}x COPY`);
    row('ingestBatch x1000, 16 conns', data.batch1000!, `${data.ratios.batch1000VsCopy}x COPY (target >= 0.5)`);
    row('ingest, 64 conns', data.single!, `${data.ratios.singleVsNaive}x naive (>= 2), ${data.ratios.singleVsBare}x bare (>= 0.4)`);
    row('naive INSERT per call, 64 conns', data.naive!, '');
    row('bare Hono, 64 conns', data.bare!, '');
    row('minimal tRPC on Hono, 64 conns', data.trpcMinimal!, `${data.ratios.trpcMinimalVsBare}x bare; service = ${data.ratios.singleVsTrpcMinimal}x of it`);
    lines.push(`${runtime.padEnd(8)} peak RSS of the service: ${data.peakRssMb} MB (target < 300)`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

/**
 * `npm run bench`: ingestion throughput and latency against real PostgreSQL, on Node and on Bun,
 * each compared with baselines measured in the same round (this machine is shared and noisy, so the
 * ratios are the figures that matter). Every round measures the baselines (COPY, the service's write
 * statement alone, a naive server, bare Hono, the minimal tRPC router) and each path into the
 * service: the lean handler on /trpc (the default), the generic adapter on /trpc
 * (INGEST_LEAN_HANDLER=false) and the plain-JSON /api face, and each ingest adapter (OTLP, Segment,
 * PostHog: bench/adapters.ts) against a 500-event ingestBatch on the same service. The table shows each figure's median over
 * the rounds with its spread (min-max), so a regression on any path shows. Writes
 * bench/results/ingest-*.json.
 *
 *   DATABASE_URL   a Postgres server to create the benchmark database on (default: local postgres)
 *   BENCH_SECONDS  seconds per load scenario (default 7: both runtimes, 3 rounds take about 14 minutes)
 *   BENCH_ROUNDS   rounds, each running every scenario and baseline (default 3)
 *   BENCH_RUNTIMES comma-separated: node,bun (default both)
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { openPostgres, type PostgresDatabase } from '../db/database.ts';
import { createJsonEventWriter, type EventRow, type EventWriter } from '../db/event-writers.ts';
import { loadConfig } from '../server/config.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { ADAPTER_SCENARIOS, type AdapterRound, EXPORT_RECORDS, measureAdapters, SCENARIO_LABELS } from './adapters.ts';
import { toCopyText } from '../db/copy-text.ts';
import { createCopyEventWriter, createUnnestEventWriter, createValuesEventWriter } from './insert-forms.ts';
import { benchServiceEnv, type LoadResult, type Runtime, runLoad, type Spread, spread, startServer } from './support.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 7);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const RUNTIMES = (process.env.BENCH_RUNTIMES ?? 'node,bun').split(',').map((r) => r.trim()) as Runtime[];
const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const WORKSPACE = randomUUID();
const ADMIN_KEY = `bench-admin-${randomUUID()}`;
const COPY_ROWS = 300_000;
const STATEMENT_ROWS = 100_000;
const WARM_UP_SECONDS = 2;

/** What `npm run bench` is judged by (issue 14); printed beside the figures. */
const TARGETS = {
  singleVsNaive: 1.2,
  singleVsBare: 0.35,
  singleP99Ms: 50,
  batchVsCopy: 0.5,
  batchVsStatement: 0.85,
  peakRssMb: 300,
};

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

const batchEvents = (size: number) => Array.from({ length: size }, (_, n) => sampleEvent(n));

/** The calls each path into the service answers: one event per call, and 1,000-event batches. */
const PATH_CALLS = {
  trpc: {
    single: { path: '/trpc/telemetry.ingest', body: JSON.stringify({ json: sampleEvent(0) }) },
    batch: { path: '/trpc/telemetry.ingestBatch', body: JSON.stringify({ json: { events: batchEvents(1000) } }) },
  },
  api: {
    single: { path: '/api/events', body: JSON.stringify(sampleEvent(0)) },
    batch: { path: '/api/events/batch', body: JSON.stringify({ events: batchEvents(1000) }) },
  },
};

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

/** COPY straight into the partitioned table: the physical limit. */
async function copyThroughput(db: PostgresDatabase): Promise<number> {
  await truncate(db);
  return writeThroughput(sampleRows(COPY_ROWS), 2000, 4, async (batch) => {
    const writable = await db.client
      .unsafe(
        'copy telemetry.events (id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at) from stdin',
      )
      .writable();
    await pipeline(Readable.from([toCopyText(batch)]), writable);
  });
}

/** One insert form with the id ledger (exactly-once storage), 1,000-row batches, 4 in flight. */
async function insertFormThroughput(db: PostgresDatabase, writer: EventWriter): Promise<number> {
  await truncate(db);
  return writeThroughput(sampleRows(STATEMENT_ROWS), 1000, 4, (batch) => writer.write(batch));
}

interface ServiceRound {
  single: LoadResult;
  batch1000: LoadResult & { eventsPerSecond: number };
}

interface RuntimeRound {
  lean: ServiceRound;
  /** 500-record exports of each ingest adapter and a 500-event ingestBatch, on the lean service. */
  adapters: AdapterRound;
  adapter: ServiceRound;
  api: ServiceRound;
  naive: LoadResult;
  bare: LoadResult;
  trpcMinimal: LoadResult;
  /** Peak RSS (MB) of the service process serving the lean /trpc and /api scenarios, and of the one serving the adapter's. */
  peakRssMb: { lean: number; adapter: number };
}

interface Round {
  copyRowsPerSecond: number;
  /** The service's JSON write statement alone (insert form `json`): the ceiling for ingestBatch. */
  statementRowsPerSecond: number;
  runtimes: Partial<Record<Runtime, RuntimeRound>>;
}

async function measureService(
  runtime: Runtime,
  url: string,
  db: PostgresDatabase,
  faces: ('trpc' | 'api')[],
): Promise<Record<'trpc' | 'api', ServiceRound | undefined>> {
  const headers = { authorization: `Bearer ${ADMIN_KEY}` };
  // Warm up (JIT, connections, key cache).
  await runLoad({ url, ...PATH_CALLS.trpc.single, headers, connections: 16, seconds: WARM_UP_SECONDS });
  const measured: Record<'trpc' | 'api', ServiceRound | undefined> = { trpc: undefined, api: undefined };
  for (const face of faces) {
    log(`  ${runtime} ${face}: ingestBatch x1000, ingest`);
    const batch1000 = await runLoad({ url, ...PATH_CALLS[face].batch, headers, connections: 16, seconds: SECONDS });
    await truncate(db);
    const single = await runLoad({ url, ...PATH_CALLS[face].single, headers, connections: 64, seconds: SECONDS });
    await truncate(db);
    measured[face] = { single, batch1000: { ...batch1000, eventsPerSecond: Math.round((batch1000.okRequests * 1000) / batch1000.seconds) } };
  }
  return measured;
}

async function measureBaseline(runtime: Runtime, script: string, env: Record<string, string>, readyPath?: string): Promise<LoadResult> {
  const server = await startServer(runtime, script, env, readyPath);
  try {
    const call = { url: server.url, ...PATH_CALLS.trpc.single };
    await runLoad({ ...call, connections: 16, seconds: WARM_UP_SECONDS });
    return await runLoad({ ...call, connections: 64, seconds: SECONDS });
  } finally {
    await server.stop();
  }
}

/** The flags `npm run start:bun` gives Bun (`... bun@<version> <flags> server/main.ts`). */
function bunStartFlags(): string[] {
  const { scripts } = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  const words = (scripts['start:bun'] ?? '').split(/\s+/);
  const bun = words.findIndex((word) => /^bun(@|$)/.test(word));
  const entry = words.indexOf('server/main.ts');
  return bun >= 0 && entry > bun ? words.slice(bun + 1, entry) : [];
}

/** Adapter runs so far: each run's records get ids no other run used. */
let adapterRuns = 0;

async function measureRuntime(runtime: Runtime, db: PostgresDatabase, databaseUrl: string, ingestKey: string): Promise<RuntimeRound> {
  const serviceEnv = (leanHandler: boolean) => ({ ...benchServiceEnv(databaseUrl, ADMIN_KEY), INGEST_LEAN_HANDLER: String(leanHandler) });
  const startService = (leanHandler: boolean) => {
    const env = serviceEnv(leanHandler);
    // The service runs as its start scripts run it: on Node with the heap limit `npm start` computes
    // from the same configuration (bin/start.mjs), on Bun with the flags of `npm run start:bun`.
    const flags = runtime === 'node' ? [`--max-old-space-size=${loadConfig({ ...process.env, ...env }).heapLimitMb}`] : bunStartFlags();
    return startServer(runtime, 'server/main.ts', env, '/readyz', flags);
  };

  log(`${runtime}: the service, lean handler (/trpc and /api)…`);
  await truncate(db);
  const leanService = await startService(true);
  let lean: Record<'trpc' | 'api', ServiceRound | undefined>;
  let adapters: AdapterRound;
  try {
    lean = await measureService(runtime, leanService.url, db, ['trpc', 'api']);
    log(`${runtime}: ingest adapters, ${EXPORT_RECORDS}-record exports…`);
    adapters = await measureAdapters({
      url: leanService.url,
      ingestKey,
      seconds: SECONDS,
      round: adapterRuns++,
      log,
      takeStoredCount: async () => {
        const [row] = await db.client<{ count: number }[]>`select count(*)::int as count from telemetry.events`;
        await truncate(db);
        return row?.count ?? 0;
      },
    });
  } finally {
    await leanService.stop().catch(() => {});
  }

  log(`${runtime}: the service, generic adapter (/trpc)…`);
  const adapterService = await startService(false);
  let adapter: Record<'trpc' | 'api', ServiceRound | undefined>;
  try {
    adapter = await measureService(runtime, adapterService.url, db, ['trpc']);
  } finally {
    await adapterService.stop().catch(() => {});
  }

  log(`${runtime}: baselines (naive, bare Hono, minimal tRPC)…`);
  const naive = await measureBaseline(runtime, 'bench/servers/naive.ts', { DATABASE_URL: databaseUrl });
  await truncate(db);
  const bare = await measureBaseline(runtime, 'bench/servers/bare.ts', {}, '/trpc/telemetry.ingest');
  const trpcMinimal = await measureBaseline(runtime, 'bench/servers/trpc-minimal.ts', {}, '/trpc/telemetry.ingest');

  return {
    lean: lean.trpc!,
    adapters,
    api: lean.api!,
    adapter: adapter.trpc!,
    naive,
    bare,
    trpcMinimal,
    peakRssMb: { lean: leanService.peakRssMbAtStop(), adapter: adapterService.peakRssMbAtStop() },
  };
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
  const startedAt = new Date().toISOString();

  try {
    await db.migrate();
    await maintainPartitions(db, { daysAhead: 2 });
    // Events must name an existing workspace; the sample events name this one.
    await raw`insert into telemetry.workspaces (id, name) values (${WORKSPACE}, 'Ingest bench')`;
    // Foreign SDKs' records name no workspace: the adapters need a key bound to one.
    const { key: ingestKey } = await createKeyService({ db }).createKey({
      kind: 'ingest',
      workspaceId: WORKSPACE,
      name: 'adapter bench',
      rateLimit: { eventsPerSecond: 1_000_000, burst: 10_000_000 },
    });

    // Once per run: the other insert forms the service's JSON statement was chosen over.
    const insertForms: Record<string, number> = {};
    for (const writer of [createCopyEventWriter(db.client), createUnnestEventWriter(raw), createValuesEventWriter(raw)]) {
      log(`insert form ${writer.form}…`);
      insertForms[writer.form] = await insertFormThroughput(db, writer);
    }

    const rounds: Round[] = [];
    for (let index = 1; index <= ROUNDS; index += 1) {
      log(`round ${index} of ${ROUNDS}: COPY and the write statement…`);
      const copyRowsPerSecond = await copyThroughput(db);
      const statementRowsPerSecond = await insertFormThroughput(db, createJsonEventWriter(db));
      const round: Round = { copyRowsPerSecond, statementRowsPerSecond, runtimes: {} };
      for (const runtime of RUNTIMES) round.runtimes[runtime] = await measureRuntime(runtime, db, databaseUrl, ingestKey);
      rounds.push(round);
    }

    const summary = summarize(rounds);
    const results = {
      startedAt,
      seconds: SECONDS,
      rounds: ROUNDS,
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      insertForms,
      targets: TARGETS,
      summary,
      perRound: rounds,
    };
    process.stdout.write(`${renderTable(insertForms, summary)}\n`);
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

const PATHS = ['lean', 'adapter', 'api'] as const;
type PathName = (typeof PATHS)[number];

interface PathSummary {
  single: { requestsPerSecond: Spread; p50Ms: Spread; p99Ms: Spread; failed: Spread; vsNaive: Spread; vsBare: Spread; vsTrpcMinimal: Spread };
  batch1000: { eventsPerSecond: Spread; p99Ms: Spread; failed: Spread; vsCopy: Spread; vsStatement: Spread };
}

interface AdapterSummary {
  eventsPerSecond: Spread;
  p99Ms: Spread;
  failed: Spread;
  /** Events/s over the same round's 500-event ingestBatch. */
  vsIngestBatch: Spread;
  /** Events stored over 500 x answered requests. */
  stored: Spread;
}

interface RuntimeSummary {
  paths: Record<PathName, PathSummary>;
  adapters: Record<(typeof ADAPTER_SCENARIOS)[number], AdapterSummary>;
  baselines: Record<'naive' | 'bare' | 'trpcMinimal', { requestsPerSecond: Spread; p99Ms: Spread }>;
  peakRssMb: { lean: Spread; adapter: Spread };
}

interface Summary {
  copyRowsPerSecond: Spread;
  statementRowsPerSecond: Spread;
  statementVsCopy: Spread;
  runtimes: Partial<Record<Runtime, RuntimeSummary>>;
}

/** Medians and spreads over the rounds; each ratio is taken within its round, against that round's baselines. */
function summarize(rounds: Round[]): Summary {
  const over = (pick: (round: Round) => number) => spread(rounds.map(pick));
  const runtimes: Summary['runtimes'] = {};
  for (const runtime of RUNTIMES) {
    const of = (round: Round) => round.runtimes[runtime]!;
    const pathSummary = (path: PathName): PathSummary => ({
      single: {
        requestsPerSecond: over((r) => of(r)[path].single.requestsPerSecond),
        p50Ms: over((r) => of(r)[path].single.p50Ms),
        p99Ms: over((r) => of(r)[path].single.p99Ms),
        failed: over((r) => of(r)[path].single.failedRequests),
        vsNaive: over((r) => of(r)[path].single.requestsPerSecond / of(r).naive.requestsPerSecond),
        vsBare: over((r) => of(r)[path].single.requestsPerSecond / of(r).bare.requestsPerSecond),
        vsTrpcMinimal: over((r) => of(r)[path].single.requestsPerSecond / of(r).trpcMinimal.requestsPerSecond),
      },
      batch1000: {
        eventsPerSecond: over((r) => of(r)[path].batch1000.eventsPerSecond),
        p99Ms: over((r) => of(r)[path].batch1000.p99Ms),
        failed: over((r) => of(r)[path].batch1000.failedRequests),
        vsCopy: over((r) => of(r)[path].batch1000.eventsPerSecond / r.copyRowsPerSecond),
        vsStatement: over((r) => of(r)[path].batch1000.eventsPerSecond / r.statementRowsPerSecond),
      },
    });
    const baseline = (name: 'naive' | 'bare' | 'trpcMinimal') => ({
      requestsPerSecond: over((r) => of(r)[name].requestsPerSecond),
      p99Ms: over((r) => of(r)[name].p99Ms),
    });
    const adapterSummary = (scenario: (typeof ADAPTER_SCENARIOS)[number]): AdapterSummary => ({
      eventsPerSecond: over((r) => of(r).adapters[scenario].eventsPerSecond),
      p99Ms: over((r) => of(r).adapters[scenario].p99Ms),
      failed: over((r) => of(r).adapters[scenario].failedRequests),
      vsIngestBatch: over((r) => of(r).adapters[scenario].eventsPerSecond / of(r).adapters.ingestBatch.eventsPerSecond),
      stored: over((r) => of(r).adapters[scenario].stored),
    });
    runtimes[runtime] = {
      paths: { lean: pathSummary('lean'), adapter: pathSummary('adapter'), api: pathSummary('api') },
      adapters: Object.fromEntries(ADAPTER_SCENARIOS.map((scenario) => [scenario, adapterSummary(scenario)])) as RuntimeSummary['adapters'],
      baselines: { naive: baseline('naive'), bare: baseline('bare'), trpcMinimal: baseline('trpcMinimal') },
      peakRssMb: { lean: over((r) => of(r).peakRssMb.lean), adapter: over((r) => of(r).peakRssMb.adapter) },
    };
  }
  return {
    copyRowsPerSecond: over((r) => r.copyRowsPerSecond),
    statementRowsPerSecond: over((r) => r.statementRowsPerSecond),
    statementVsCopy: over((r) => r.statementRowsPerSecond / r.copyRowsPerSecond),
    runtimes,
  };
}

/** `1,234 (1,100-1,300)`: the median, and the spread when there is more than one round. */
function figure({ median, min, max }: Spread, unit = ''): string {
  const show = (value: number) => `${value.toLocaleString('en')}${unit}`;
  return ROUNDS > 1 ? `${show(median)} (${show(min)}-${show(max)})` : show(median);
}

const met = (ok: boolean) => (ok ? 'met' : 'MISSED');

function renderTable(insertForms: Record<string, number>, summary: Summary): string {
  const lines: string[] = [];
  lines.push(`${ROUNDS} round(s) of ${SECONDS} s per scenario; each figure is the median over the rounds, with its spread (min-max).`);
  lines.push(`COPY into the partitioned table (2,000-row batches, 4 in flight): ${figure(summary.copyRowsPerSecond)} rows/s`);
  lines.push(
    `The service's write statement alone (JSON form, 1,000-row batches, 4 in flight): ${figure(summary.statementRowsPerSecond)} rows/s = ${figure(summary.statementVsCopy, 'x')} COPY`,
  );
  lines.push(
    `Other insert forms (once per run), rows/s: ${Object.entries(insertForms)
      .map(([form, rate]) => `${form} ${rate.toLocaleString('en')}`)
      .join(', ')}`,
  );
  const pathLabel: Record<PathName, string> = { lean: 'lean /trpc', adapter: 'adapter /trpc', api: '/api' };
  for (const [runtime, data] of Object.entries(summary.runtimes)) {
    lines.push('');
    lines.push(`${runtime}`);
    lines.push(`  ${'path'.padEnd(14)} ${'scenario'.padEnd(28)} ${'rate'.padEnd(28)} ${'p99 ms'.padEnd(18)} ratios`);
    for (const path of PATHS) {
      const { single, batch1000 } = data.paths[path];
      lines.push(
        `  ${pathLabel[path].padEnd(14)} ${'ingest, 64 conns'.padEnd(28)} ${`${figure(single.requestsPerSecond)} req/s`.padEnd(28)} ${figure(single.p99Ms).padEnd(18)} ` +
          `${figure(single.vsNaive, 'x')} naive, ${figure(single.vsBare, 'x')} bare, ${figure(single.vsTrpcMinimal, 'x')} minimal tRPC` +
          (single.failed.max > 0 ? `; failed ${figure(single.failed)}` : ''),
      );
      lines.push(
        `  ${pathLabel[path].padEnd(14)} ${'ingestBatch x1000, 16 conns'.padEnd(28)} ${`${figure(batch1000.eventsPerSecond)} ev/s`.padEnd(28)} ${figure(batch1000.p99Ms).padEnd(18)} ` +
          `${figure(batch1000.vsCopy, 'x')} COPY, service/statement ${figure(batch1000.vsStatement, 'x')}` +
          (batch1000.failed.max > 0 ? `; failed ${figure(batch1000.failed)}` : ''),
      );
    }
    for (const scenario of ADAPTER_SCENARIOS) {
      const adapter = data.adapters[scenario];
      lines.push(
        `  ${'adapters'.padEnd(14)} ${SCENARIO_LABELS[scenario].padEnd(28)} ${`${figure(adapter.eventsPerSecond)} ev/s`.padEnd(28)} ${figure(adapter.p99Ms).padEnd(18)} ` +
          `${figure(adapter.vsIngestBatch, 'x')} ingestBatch x${EXPORT_RECORDS}` +
          (adapter.failed.max > 0 ? `; failed ${figure(adapter.failed)}` : '') +
          // Requests still in flight when a window closes are stored but not counted as answered,
          // so stored/acknowledged is a little over 1; under 1 would be acknowledged events lost.
          (adapter.stored.min < 1 ? `; ACKNOWLEDGED BUT NOT STORED: stored/acknowledged ${figure(adapter.stored)}` : ''),
      );
    }
    const baselineLabel = { naive: 'naive INSERT per call', bare: 'bare Hono', trpcMinimal: 'minimal tRPC on Hono' } as const;
    for (const name of ['naive', 'bare', 'trpcMinimal'] as const) {
      const baseline = data.baselines[name];
      lines.push(
        `  ${'baseline'.padEnd(14)} ${baselineLabel[name].padEnd(28)} ${`${figure(baseline.requestsPerSecond)} req/s`.padEnd(28)} ${figure(baseline.p99Ms).padEnd(18)}`,
      );
    }
    lines.push(`  peak RSS: service on lean paths ${figure(data.peakRssMb.lean, ' MB')}, service on the adapter ${figure(data.peakRssMb.adapter, ' MB')}`);
    const lean = data.paths.lean;
    const maxRss = Math.max(data.peakRssMb.lean.max, data.peakRssMb.adapter.max);
    lines.push('  targets (medians, lean handler):');
    lines.push(
      `    ingest >= ${TARGETS.singleVsNaive}x naive: ${lean.single.vsNaive.median}x ${met(lean.single.vsNaive.median >= TARGETS.singleVsNaive)}; ` +
        `>= ${TARGETS.singleVsBare}x bare: ${lean.single.vsBare.median}x ${met(lean.single.vsBare.median >= TARGETS.singleVsBare)}; ` +
        `p99 < ${TARGETS.singleP99Ms} ms: ${lean.single.p99Ms.median} ms ${met(lean.single.p99Ms.median < TARGETS.singleP99Ms)}`,
    );
    lines.push(
      `    ingestBatch x1000 >= ${TARGETS.batchVsCopy}x COPY: ${lean.batch1000.vsCopy.median}x ${met(lean.batch1000.vsCopy.median >= TARGETS.batchVsCopy)}; ` +
        `service/statement >= ${TARGETS.batchVsStatement}: ${lean.batch1000.vsStatement.median} ${met(lean.batch1000.vsStatement.median >= TARGETS.batchVsStatement)}`,
    );
    lines.push(`    peak RSS < ${TARGETS.peakRssMb} MB (highest of any round): ${maxRss} MB ${met(maxRss < TARGETS.peakRssMb)}`);
  }
  return lines.join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

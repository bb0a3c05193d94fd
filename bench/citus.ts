/**
 * `npm run bench:citus`: ingest on a three-node Citus cluster (a coordinator and two workers,
 * tables sharded by workspace: db/distribution.ts) against plain PostgreSQL, both measured in the
 * same run. Every node and the plain server are private servers started the same way
 * (tests/faults/support/pg-cluster.ts: same settings, fsync off); the plain one only lacks Citus.
 * The machine is shared and noisy, so the ratios to the plain server are the figures that matter.
 * On one machine the workers share its cores: this measures Citus's overhead, not scale-out.
 *
 * Each round measures:
 *   1. the write forms alone (no HTTP): 500-event flushes, 4 in flight, through the writer:
 *      plain PostgreSQL with the JSON statement (the baseline), Citus with the routed form (what
 *      the service picks there), Citus with the JSON statement (the form routing replaces), and plain
 *      PostgreSQL with the routed form (what the form costs without Citus); with every
 *      flush of one workspace (flushes take turns among 8 workspaces) and with every flush
 *      spanning 8 workspaces. The rows stored are checked against the rows the writer claimed.
 *   2. the service over HTTP (the built bundle on Node): ingestBatch x500 from 16 workspaces on
 *      16 connections, against each database; events stored are checked against events acknowledged.
 * Then once: the events each worker holds after the service ran on Citus, and the distributed
 * plans (EXPLAIN) of one routed flush and one JSON flush: task counts, and whether rows are pulled
 * through the coordinator. Writes bench/results/citus-*.json.
 *
 *   BENCH_SECONDS  seconds per measured scenario (default 5: 3 rounds take about 4 minutes here)
 *   BENCH_ROUNDS   rounds, each running every scenario on both databases (default 3)
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import postgres from 'postgres';
import { openPostgres, type PostgresDatabase } from '../db/database.ts';
import { type Distribution, DISTRIBUTED_TABLES } from '../db/distribution.ts';
import { createJsonEventWriter, claimStatements, createRoutedEventWriter, rollupStatements, type EventRow, type EventWriter } from '../db/event-writers.ts';
import { loadConfig } from '../server/config.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { createPgCluster, type PgCluster } from '../tests/faults/support/pg-cluster.ts';
import { type CitusCluster, createCitusCluster, createCitusDatabase, dropCitusDatabase } from '../tests/support/citus-cluster.ts';
import { explainPlan, type RecordedStatement, recordingRunner, taskCounts } from '../tests/support/statements.ts';
import { benchServiceEnv, type LoadResult, runLoad, type Spread, spread, startServer } from './support.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const BATCH = 500;
const IN_FLIGHT = 4;
const WRITER_WORKSPACES = 8;
const SERVICE_WORKSPACES = 16;
const SERVICE_CONNECTIONS = 16;
const WARM_UP_SECONDS = 2;
const ADMIN_KEY = `bench-admin-${randomUUID()}`;
const DATABASE_NAME = `telemetry_bench_citus_${Date.now()}`;
/**
 * The plain server gets the settings the Citus nodes run with (tests/support/citus-cluster.ts),
 * but for loading Citus, so the two differ only in Citus itself.
 */
const PLAIN_SETTINGS = ['max_connections=300', 'max_worker_processes=64'];
/** Every workspace the benchmark writes to; the writer scenarios use the first WRITER_WORKSPACES. */
const WORKSPACES = Array.from({ length: SERVICE_WORKSPACES }, () => randomUUID());

const log = (message: string) => process.stderr.write(`${message}\n`);

function sampleEvent(workspaceId: string, n: number) {
  return {
    workspaceId,
    userId: '7d0b5a4e-3f59-4c1b-9a0e-5b8a2f1c6d3e',
    source: 'web',
    eventType: 'ui.interaction',
    name: `button.click.${n % 10}`,
    targetType: 'button',
    targetId: `signup-${n % 50}`,
    metadata: { route: '/pricing', label: 'Start free trial', viewport: { w: 1440, h: 900 }, experiment: 'b' },
  };
}

/** Flush `k` of a workload: its 500 rows, with fresh ids, in one workspace or spread over eight. */
const WORKLOADS = {
  oneWorkspace: (k: number) => rowsOf(() => WORKSPACES[k % WRITER_WORKSPACES]!, k * BATCH),
  eightWorkspaces: (k: number) => rowsOf((n) => WORKSPACES[n % WRITER_WORKSPACES]!, k * BATCH),
};
type Workload = keyof typeof WORKLOADS;
const WORKLOAD_LABELS: Record<Workload, string> = {
  oneWorkspace: 'each flush one workspace',
  eightWorkspaces: 'each flush 8 workspaces',
};

function rowsOf(workspaceOf: (n: number) => string, first: number): EventRow[] {
  const now = new Date();
  return Array.from({ length: BATCH }, (_, index) => {
    const n = first + index;
    return { ...sampleEvent(workspaceOf(n), n), id: randomUUID(), createdAt: now, receivedAt: now };
  });
}

/** The writer targets of scenario 1: which database, and which write form on it. */
const TARGETS = ['plainJson', 'plainRouted', 'citusRouted', 'citusJson'] as const;
type Target = (typeof TARGETS)[number];
const TARGET_LABELS: Record<Target, string> = {
  plainJson: 'PostgreSQL, JSON form (baseline)',
  plainRouted: 'PostgreSQL, routed form',
  citusRouted: 'Citus, routed form',
  citusJson: 'Citus, JSON form',
};

interface Bench {
  plain: PostgresDatabase;
  citus: PostgresDatabase;
  plainUrl: string;
  citusUrl: string;
}

async function emptyTables(db: PostgresDatabase) {
  await db.client.unsafe(`truncate ${DISTRIBUTED_TABLES.map((table) => `telemetry.${table}`).join(', ')}`);
}

async function storedEvents(db: PostgresDatabase): Promise<number> {
  const [row] = await db.client<{ count: number }[]>`select count(*)::int as count from telemetry.events`;
  return row?.count ?? 0;
}

interface WriterResult {
  eventsPerSecond: number;
  flushes: number;
  written: number;
  claimed: number;
  stored: number;
}

/** 500-event flushes of `workload`, IN_FLIGHT at a time, for `seconds`. */
async function flushFor(writer: EventWriter, workload: Workload, seconds: number, firstFlush: number) {
  let next = firstFlush;
  let written = 0;
  let claimed = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < deadline) {
        const rows = WORKLOADS[workload](next++);
        // Awaited first: `claimed += await ...` would add to the total read before the await.
        const stored = await writer.write(rows);
        claimed += stored.size;
        written += rows.length;
      }
    }),
  );
  return { written, claimed, flushes: next - firstFlush, seconds: (performance.now() - started) / 1000 };
}

async function measureWriter(db: PostgresDatabase, writer: EventWriter, workload: Workload): Promise<WriterResult> {
  await emptyTables(db);
  const warmUp = await flushFor(writer, workload, 1, 0);
  const measured = await flushFor(writer, workload, SECONDS, warmUp.flushes);
  return {
    eventsPerSecond: Math.round(measured.written / measured.seconds),
    flushes: measured.flushes,
    written: warmUp.written + measured.written,
    claimed: warmUp.claimed + measured.claimed,
    stored: await storedEvents(db),
  };
}

interface ServiceResult extends LoadResult {
  eventsPerSecond: number;
  acknowledged: number;
  stored: number;
}

/** ingestBatch x500 bodies, one per workspace, sent in turn. */
const SERVICE_BODIES = WORKSPACES.map((workspaceId) =>
  JSON.stringify({ json: { events: Array.from({ length: BATCH }, (_, n) => sampleEvent(workspaceId, n)) } }),
);

async function measureService(db: PostgresDatabase, databaseUrl: string, distribution: Distribution): Promise<ServiceResult> {
  await emptyTables(db);
  const env = { ...benchServiceEnv(databaseUrl, ADMIN_KEY), DATABASE_DISTRIBUTED: distribution };
  // As `npm start` runs it: the bundle on Node, with the heap limit bin/start.mjs computes.
  const flags = [`--max-old-space-size=${loadConfig({ ...process.env, ...env }).heapLimitMb}`];
  const service = await startServer('node', 'server/main.ts', env, '/readyz', flags);
  let turn = 0;
  const call = {
    url: service.url,
    path: '/trpc/telemetry.ingestBatch',
    body: SERVICE_BODIES[0]!,
    nextBody: () => SERVICE_BODIES[turn++ % SERVICE_BODIES.length]!,
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
    connections: SERVICE_CONNECTIONS,
  };
  let acknowledged = 0;
  let load: LoadResult;
  try {
    const warmUp = await runLoad({ ...call, seconds: WARM_UP_SECONDS });
    load = await runLoad({ ...call, seconds: SECONDS });
    acknowledged = (warmUp.okRequests + load.okRequests) * BATCH;
  } finally {
    // Stopping the service flushes what it still holds, so the count below is final.
    await service.stop();
  }
  return { ...load, eventsPerSecond: Math.round((load.okRequests * BATCH) / load.seconds), acknowledged, stored: await storedEvents(db) };
}

interface Round {
  writers: Record<Workload, Record<Target, WriterResult>>;
  service: { plain: ServiceResult; citus: ServiceResult };
  /** Events each worker holds right after the service ran on Citus. */
  eventsByNode: NodeEvents[];
}

interface NodeEvents {
  nodePort: number;
  shards: number;
  events: number;
}

/** Events per node, counted in each shard of telemetry.events where it lives. */
async function eventsByNode(citus: PostgresDatabase): Promise<NodeEvents[]> {
  return citus.client<NodeEvents[]>`
    select s.nodeport as "nodePort", count(*)::int as shards, sum(r.result::bigint)::int as events
    from run_command_on_shards('telemetry.events', 'select count(*) from %s') r
    join citus_shards s on s.shardid = r.shardid
    group by s.nodeport order by s.nodeport`;
}

async function measureRound(bench: Bench, index: number): Promise<Round> {
  const writers = {} as Round['writers'];
  const targetDb: Record<Target, PostgresDatabase> = { plainJson: bench.plain, plainRouted: bench.plain, citusRouted: bench.citus, citusJson: bench.citus };
  const targetWriter: Record<Target, EventWriter> = {
    plainJson: createJsonEventWriter(bench.plain),
    plainRouted: createRoutedEventWriter(bench.plain),
    citusRouted: createRoutedEventWriter(bench.citus),
    citusJson: createJsonEventWriter(bench.citus),
  };
  // Odd rounds run the targets in reverse, so drift in the machine's load favours none of them.
  const order = index % 2 ? [...TARGETS] : [...TARGETS].reverse();
  for (const workload of Object.keys(WORKLOADS) as Workload[]) {
    const results = {} as Record<Target, WriterResult>;
    for (const target of order) {
      log(`  writer: ${TARGET_LABELS[target]}, ${WORKLOAD_LABELS[workload]}…`);
      results[target] = await measureWriter(targetDb[target], targetWriter[target], workload);
    }
    writers[workload] = results;
  }
  const service = {} as Round['service'];
  let nodes: NodeEvents[] = [];
  for (const which of index % 2 ? (['plain', 'citus'] as const) : (['citus', 'plain'] as const)) {
    log(`  service over HTTP on ${which === 'citus' ? 'Citus' : 'PostgreSQL'}…`);
    service[which] = which === 'citus' ? await measureService(bench.citus, bench.citusUrl, 'citus') : await measureService(bench.plain, bench.plainUrl, 'none');
    if (which === 'citus') nodes = await eventsByNode(bench.citus);
  }
  return { writers, service, eventsByNode: nodes };
}

interface PlanSummary {
  statement: string;
  taskCounts: number[];
  /** Steps Citus runs first and keeps on the coordinator as intermediate results (the CTEs). */
  distributedSubplans: number;
  /** INSERT ... SELECT steps whose rows all pass through the coordinator. */
  pullsToCoordinator: number;
}

/** The distributed plan of each statement, as EXPLAIN prints it (EXPLAIN alone runs nothing). */
async function explainAll(citus: PostgresDatabase, statements: RecordedStatement[]): Promise<{ summaries: PlanSummary[]; plans: string[] }> {
  const plans: string[] = [];
  for (const statement of statements) plans.push(await explainPlan(citus, statement));
  const summaries = statements.map(({ text }, i) => ({
    // The JSON statement is one WITH ... statement writing every table; the routed ones write one each.
    statement: text.trimStart().startsWith('with') ? 'JSON statement' : (/insert into (telemetry\.\w+)/i.exec(text)?.[1] ?? text.slice(0, 40)),
    taskCounts: taskCounts(plans[i]!),
    distributedSubplans: plans[i]!.match(/Distributed Subplan/g)?.length ?? 0,
    pullsToCoordinator: plans[i]!.match(/pull to coordinator/gi)?.length ?? 0,
  }));
  return { summaries, plans };
}

interface Routing {
  routedOneWorkspace: PlanSummary[];
  routedEightWorkspaces: PlanSummary[];
  json: PlanSummary[];
  jsonPlan: string;
}

/** One flush of each shape on Citus, its statements recorded as it ran them, then explained. */
async function measureRouting(citus: PostgresDatabase): Promise<Routing> {
  const routedFlush = async (workload: Workload, flush: number) => {
    // The routed form's claims and rollup upserts as it builds them (its events go by COPY, which
    // Citus splits by shard as it reads the rows: nothing to explain).
    const rows = WORKLOADS[workload](flush);
    return (await explainAll(citus, [...claimStatements(rows), ...rollupStatements(rows)])).summaries;
  };
  const routedOneWorkspace = await routedFlush('oneWorkspace', 1_000_000);
  const routedEightWorkspaces = await routedFlush('eightWorkspaces', 1_000_001);
  const jsonStatements: RecordedStatement[] = [];
  await createJsonEventWriter(recordingRunner(jsonStatements, citus)).write(WORKLOADS.oneWorkspace(1_000_002));
  const json = await explainAll(citus, jsonStatements);
  return { routedOneWorkspace, routedEightWorkspaces, json: json.summaries, jsonPlan: json.plans[0] ?? '' };
}

async function createWorkspaces(db: PostgresDatabase) {
  for (const [n, id] of WORKSPACES.entries()) await db.client`insert into telemetry.workspaces (id, name) values (${id}, ${`Citus bench ${n}`})`;
}

async function main() {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  let cluster: CitusCluster | undefined;
  let plainServer: PgCluster | undefined;
  let bench: Partial<Bench> = {};
  const cleanUp = async () => {
    await Promise.allSettled([bench.plain?.close(), bench.citus?.close()]);
    bench = {};
    if (cluster) await dropCitusDatabase(cluster.nodes, DATABASE_NAME).catch(() => {});
    await Promise.allSettled([cluster?.destroy(), plainServer?.destroy()]);
    cluster = undefined;
    plainServer = undefined;
  };
  // The servers are daemons of their own (pg_ctl): interrupted, the run stops them before leaving.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the database servers…`);
      void cleanUp().finally(() => process.exit(130));
    });
  }

  try {
    log('starting PostgreSQL and a Citus cluster (coordinator and 2 workers)…');
    [cluster, plainServer] = await Promise.all([createCitusCluster(), createPgCluster({ extraSettings: PLAIN_SETTINGS })]);
    log(`  PostgreSQL on port ${plainServer.port}; Citus coordinator on ${cluster.nodes.coordinator}, workers on ${cluster.nodes.workers.join(' and ')}`);
    const citusUrl = await createCitusDatabase(cluster.nodes, DATABASE_NAME);
    const admin = postgres(plainServer.url, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${DATABASE_NAME}"`);
    await admin.end();
    const plainUrl = new URL(plainServer.url);
    plainUrl.pathname = `/${DATABASE_NAME}`;
    bench = {
      plainUrl: plainUrl.toString(),
      citusUrl,
      plain: openPostgres({ url: plainUrl.toString(), maxConnections: 8 }),
      citus: openPostgres({ url: citusUrl, maxConnections: 8, distribution: 'citus' }),
    };
    const ready = bench as Bench;
    for (const db of [ready.plain, ready.citus]) {
      await db.migrate();
      await maintainPartitions(db, { daysAhead: 2 });
      await createWorkspaces(db);
    }

    const rounds: Round[] = [];
    for (let index = 1; index <= ROUNDS; index += 1) {
      log(`round ${index} of ${ROUNDS}…`);
      rounds.push(await measureRound(ready, index));
    }
    log('plans of one flush on Citus…');
    await emptyTables(ready.citus);
    const routing = await measureRouting(ready.citus);

    const summary = summarize(rounds);
    const results = {
      startedAt,
      seconds: SECONDS,
      rounds: ROUNDS,
      durationSeconds: Math.round((performance.now() - started) / 1000),
      machine: { cpus: cpus().length, node: process.version },
      setup: {
        workers: cluster.workers.length,
        batch: BATCH,
        inFlight: IN_FLIGHT,
        writerWorkspaces: WRITER_WORKSPACES,
        serviceWorkspaces: SERVICE_WORKSPACES,
        serviceConnections: SERVICE_CONNECTIONS,
      },
      summary,
      routing,
      perRound: rounds,
    };
    const problems = checks(rounds);
    process.stdout.write(`${renderTable(summary, rounds.at(-1)!.eventsByNode, routing, problems)}\n`);
    mkdirSync('bench/results', { recursive: true });
    const file = `bench/results/citus-${startedAt.replace(/[:.]/g, '-')}.json`;
    writeFileSync(file, `${JSON.stringify({ ...results, problems }, null, 2)}\n`);
    log(`results written to ${file} (${results.durationSeconds} s)`);
    if (problems.length > 0) process.exitCode = 1;
  } finally {
    await cleanUp();
  }
}

/** Every stored count that is not what was written or acknowledged, as a line to print. */
function checks(rounds: Round[]): string[] {
  const problems: string[] = [];
  for (const [index, round] of rounds.entries()) {
    for (const [workload, targets] of Object.entries(round.writers)) {
      for (const [target, result] of Object.entries(targets)) {
        if (result.stored !== result.claimed || result.claimed !== result.written) {
          problems.push(`round ${index + 1}, ${target}, ${workload}: written ${result.written}, claimed ${result.claimed}, stored ${result.stored}`);
        }
      }
    }
    for (const [which, result] of Object.entries(round.service)) {
      // Requests still in flight when the window closes are stored but not acknowledged: more is fine.
      if (result.stored < result.acknowledged)
        problems.push(`round ${index + 1}, service on ${which}: acknowledged ${result.acknowledged}, stored ${result.stored}`);
    }
  }
  return problems;
}

interface Summary {
  writers: Record<Workload, Record<Target, { eventsPerSecond: Spread; vsBaseline: Spread }>>;
  service: Record<'plain' | 'citus', { eventsPerSecond: Spread; p50Ms: Spread; p99Ms: Spread; failed: Spread }> & { citusVsPlain: Spread };
}

/** Medians and spreads over the rounds; each ratio is taken within its round. */
function summarize(rounds: Round[]): Summary {
  const over = (pick: (round: Round) => number) => spread(rounds.map(pick));
  const writers = {} as Summary['writers'];
  for (const workload of Object.keys(WORKLOADS) as Workload[]) {
    writers[workload] = {} as Summary['writers'][Workload];
    for (const target of TARGETS) {
      writers[workload][target] = {
        eventsPerSecond: over((r) => r.writers[workload][target].eventsPerSecond),
        vsBaseline: over((r) => r.writers[workload][target].eventsPerSecond / r.writers[workload].plainJson.eventsPerSecond),
      };
    }
  }
  const service = (which: 'plain' | 'citus') => ({
    eventsPerSecond: over((r) => r.service[which].eventsPerSecond),
    p50Ms: over((r) => r.service[which].p50Ms),
    p99Ms: over((r) => r.service[which].p99Ms),
    failed: over((r) => r.service[which].failedRequests),
  });
  return {
    writers,
    service: { plain: service('plain'), citus: service('citus'), citusVsPlain: over((r) => r.service.citus.eventsPerSecond / r.service.plain.eventsPerSecond) },
  };
}

/** `1,234 (1,100-1,300)`: the median, and the spread when there is more than one round. */
function figure({ median, min, max }: Spread, unit = ''): string {
  const show = (value: number) => `${value.toLocaleString('en')}${unit}`;
  return ROUNDS > 1 ? `${show(median)} (${show(min)}-${show(max)})` : show(median);
}

function renderTable(summary: Summary, nodes: NodeEvents[], routing: Routing, problems: string[]): string {
  const lines: string[] = [];
  lines.push(`${ROUNDS} round(s) of ${SECONDS} s per scenario; each figure is the median over the rounds, with its spread (min-max).`);
  lines.push('');
  lines.push(`1. Write forms alone: ${BATCH}-event flushes, ${IN_FLIGHT} in flight, events/s`);
  lines.push(`  ${'workload'.padEnd(26)} ${'database, form'.padEnd(34)} ${'events/s'.padEnd(26)} vs PostgreSQL JSON`);
  for (const workload of Object.keys(WORKLOADS) as Workload[]) {
    for (const target of TARGETS) {
      const { eventsPerSecond, vsBaseline } = summary.writers[workload][target];
      lines.push(
        `  ${WORKLOAD_LABELS[workload].padEnd(26)} ${TARGET_LABELS[target].padEnd(34)} ${figure(eventsPerSecond).padEnd(26)} ${figure(vsBaseline, 'x')}`,
      );
    }
  }
  lines.push('');
  lines.push(`2. The service over HTTP (Node): ingestBatch x${BATCH} from ${SERVICE_WORKSPACES} workspaces, ${SERVICE_CONNECTIONS} connections`);
  lines.push(`  ${'database'.padEnd(12)} ${'events/s'.padEnd(26)} ${'p50 ms'.padEnd(18)} ${'p99 ms'.padEnd(18)}`);
  for (const which of ['plain', 'citus'] as const) {
    const result = summary.service[which];
    lines.push(
      `  ${(which === 'plain' ? 'PostgreSQL' : 'Citus').padEnd(12)} ${figure(result.eventsPerSecond).padEnd(26)} ${figure(result.p50Ms).padEnd(18)} ${figure(result.p99Ms).padEnd(18)}` +
        (result.failed.max > 0 ? ` failed ${figure(result.failed)}` : ''),
    );
  }
  lines.push(`  Citus / PostgreSQL: ${figure(summary.service.citusVsPlain, 'x')}`);
  lines.push('');
  lines.push('3. Routing');
  lines.push(
    `  events per node after the last service run on Citus: ${nodes.map((node) => `port ${node.nodePort}: ${node.events.toLocaleString('en')} (${node.shards} shards)`).join('; ')}`,
  );
  const describe = (plans: PlanSummary[]) =>
    plans
      .map(
        (plan) =>
          `${plan.statement} tasks ${plan.taskCounts.join('+') || '-'}` +
          (plan.distributedSubplans ? `, ${plan.distributedSubplans} subplans` : '') +
          (plan.pullsToCoordinator ? `, ${plan.pullsToCoordinator} steps PULL TO COORDINATOR` : ''),
      )
      .join('; ');
  lines.push(`  routed flush, one workspace:  ${describe(routing.routedOneWorkspace)}`);
  lines.push(`  routed flush, 8 workspaces:   ${describe(routing.routedEightWorkspaces)}`);
  lines.push(`  JSON flush, one workspace:    ${describe(routing.json)}`);
  lines.push('');
  lines.push(
    problems.length === 0
      ? 'Stored counts: every writer scenario stored exactly what it wrote; the service stored at least what it acknowledged.'
      : `STORED COUNTS WRONG:\n  ${problems.join('\n  ')}`,
  );
  return lines.join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

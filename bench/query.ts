/**
 * `npm run bench:query`: seeds events over 30 days in 20 workspaces on real PostgreSQL (10 million
 * by default), then measures the median latency of each read procedure through the typed HTTP
 * client against the service as `npm start` runs it. Prints a table and writes
 * bench/results/query-*.json.
 *
 *   DATABASE_URL        a Postgres server to create the benchmark database on (default: local)
 *   BENCH_QUERY_EVENTS  events to seed (default 10000000)
 *   BENCH_QUERY_RUNS    timed runs per procedure (default 15)
 *   BENCH_KEEP_DB=1     keep the database afterwards (its name is printed)
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import postgres from 'postgres';
import { createTelemetryClient } from '../client/index.ts';
import { openPostgres } from '../db/database.ts';
import { ensureDailyPartitions } from '../db/partitions.ts';
import { ROLLUPS } from '../db/rollups.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { startServer } from './support.ts';

const EVENTS = Number(process.env.BENCH_QUERY_EVENTS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_QUERY_RUNS ?? 15);
const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const WORKSPACES = 20;
const DAY_MS = 86_400_000;
const log = (message: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);

async function main() {
  // BENCH_DATABASE reuses a database a previous run kept (BENCH_KEEP_DB=1): no seeding.
  const reuse = process.env.BENCH_DATABASE;
  const name = reuse ?? `telemetry_qbench_${Date.now()}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  if (!reuse) await admin.unsafe(`create database "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const db = openPostgres({ url: databaseUrl, maxConnections: 4 });
  const now = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000);
  let seedSeconds = 0;
  const start = new Date(now.getTime() - 30 * DAY_MS);
  let service: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await db.migrate();
    if (!reuse) seedSeconds = await seed();
    async function seed(): Promise<number> {
      await ensureDailyPartitions(db, { from: start, to: new Date(now.getTime() + DAY_MS) });

      log(`seeding ${EVENTS.toLocaleString('en')} events…`);
      const seedStarted = performance.now();
      // Generated inside Postgres: workspace w is 00000000-0000-4000-8000-0000000000ww, 5,000 users each.
      const chunk = 1_000_000;
      for (let offset = 0; offset < EVENTS; offset += chunk) {
        await db.client.unsafe(
          `
        insert into telemetry.events (id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at)
        select gen_random_uuid(),
               ('00000000-0000-4000-8000-' || lpad((n % ${WORKSPACES})::text, 12, '0'))::uuid,
               md5((n % ${WORKSPACES})::text || '-' || (hashint4(n) & 4095))::uuid,
               (array['web','mobile','backend'])[1 + (hashint4(n + 1) & 1023) % 3],
               k.event_type, k.name, 'button', 'target-' || (hashint4(n + 2) & 63),
               case when k.event_type = 'perf.metric' then jsonb_build_object('value', (hashint4(n + 3) & 4095)::float8, 'unit', 'ms') else null end,
               t.at, t.at
        from generate_series(${offset + 1}, ${Math.min(offset + chunk, EVENTS)}) as n,
        lateral (select $1::timestamptz + ((hashint4(n + 4) & 2147483647)::float8 / 2147483647) * interval '30 days' as at) t,
        lateral (select (array['ui.interaction','ui.interaction','ui.interaction','ui.interaction','perf.metric','error','custom'])[1 + (hashint4(n + 5) & 1023) % 7] as event_type) e,
        lateral (select e.event_type,
                        case e.event_type
                          when 'perf.metric' then (array['LCP','INP','TTFB'])[1 + (hashint4(n + 6) & 1023) % 3]
                          when 'ui.interaction' then (array['page.view','signup.start','signup.done','button.click'])[1 + (hashint4(n + 6) & 1023) % 4]
                          else 'other' end as name) k`,
          [start.toISOString()],
        );
        log(`  ${Math.min(offset + chunk, EVENTS).toLocaleString('en')}`);
      }
      log('ledger and rollups…');
      await db.client.unsafe('insert into telemetry.event_ids (id, workspace_id, created_at) select id, workspace_id, created_at from telemetry.events');
      for (const { table, unit } of ROLLUPS) {
        await db.client.unsafe(`insert into telemetry.${table} (workspace_id, ${unit}, event_type, name, source, count)
        select workspace_id, date_trunc('${unit}', created_at, 'UTC'), event_type, name, source, count(*) from telemetry.events group by 1, 2, 3, 4, 5`);
      }
      await db.client.unsafe('vacuum analyze');
      const seconds = Math.round((performance.now() - seedStarted) / 1000);
      log(`seeded in ${seconds} s`);
      return seconds;
    }

    // The seeded workspaces exist, as every event's and key's workspace must.
    await db.client.unsafe(`insert into telemetry.workspaces (id, name)
      select ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'Query bench ' || n from generate_series(0, ${WORKSPACES - 1}) n
      on conflict do nothing`);
    const workspaceId = '00000000-0000-4000-8000-000000000001';
    const readKey = (await createKeyService({ db }).createKey({ kind: 'read', workspaceId, rateLimit: { eventsPerSecond: 100_000, burst: 0 } })).key;
    // The bench's read key is bound to one workspace: lift that workspace's ceiling with its own limit.
    const env = { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', TELEMETRY_ADMIN_KEY: `qbench-${randomUUID()}`, RATE_LIMIT_WORKSPACE_READ_EPS: '100000' };
    service = await startServer('node', 'server/main.ts', env, '/readyz');
    const client = createTelemetryClient({ url: service.url, headers: { authorization: `Bearer ${readKey}` } });
    const lastDay = { from: new Date(now.getTime() - DAY_MS), to: now };
    const lastWeek = { from: new Date(now.getTime() - 7 * DAY_MS), to: now };
    const month = { from: start, to: now };

    const procedures: { name: string; target?: number; run: () => Promise<unknown> }[] = [
      { name: 'stats.timeseries: 30 days by hour', target: 50, run: () => client.telemetry.stats.timeseries.query({ ...month, bucket: 'hour' }) },
      { name: 'events.list: latest 100', target: 10, run: () => client.telemetry.events.list.query({ limit: 100 }) },
      { name: 'stats.percentiles: one day, p95 of LCP', target: 300, run: () => client.telemetry.stats.percentiles.query({ ...lastDay, name: 'LCP' }) },
      {
        name: 'stats.funnel: 3 steps over 7 days',
        target: 1000,
        run: () =>
          client.telemetry.stats.funnel.query({
            ...lastWeek,
            windowSeconds: DAY_MS / 1000,
            steps: [{ name: 'page.view' }, { name: 'signup.start' }, { name: 'signup.done' }],
          }),
      },
      {
        name: 'stats.timeseries: 7 days by day, New York',
        run: () => client.telemetry.stats.timeseries.query({ ...lastWeek, bucket: 'day', timeZone: 'America/New_York' }),
      },
      {
        name: 'stats.timeseries: 1 day by hour, unique users (raw)',
        run: () => client.telemetry.stats.timeseries.query({ ...lastDay, bucket: 'hour', uniqueUsers: true }),
      },
      { name: 'stats.top: names over 30 days', run: () => client.telemetry.stats.top.query({ ...month, by: 'name' }) },
      { name: 'stats.top: targets over 7 days (raw)', run: () => client.telemetry.stats.top.query({ ...lastWeek, by: 'targetId' }) },
      { name: 'stats.anomalies: 7 days by hour', run: () => client.telemetry.stats.anomalies.query({ ...lastWeek, bucket: 'hour' }) },
      {
        name: 'events.get: one event',
        run: async () => client.telemetry.events.get.query({ id: (await client.telemetry.events.list.query({ limit: 1 })).events[0]!.id }),
      },
    ];
    const results: { name: string; medianMs: number; p90Ms: number; targetMs: number | null; met: boolean | null }[] = [];
    for (const procedure of procedures) {
      await procedure.run();
      await procedure.run();
      const times: number[] = [];
      for (let i = 0; i < RUNS; i += 1) {
        const started = performance.now();
        await procedure.run();
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      const medianMs = Math.round(times[Math.floor(times.length / 2)]! * 10) / 10;
      const p90Ms = Math.round(times[Math.floor(times.length * 0.9)]! * 10) / 10;
      results.push({ name: procedure.name, medianMs, p90Ms, targetMs: procedure.target ?? null, met: procedure.target ? medianMs < procedure.target : null });
      log(`${procedure.name}: ${medianMs} ms`);
    }

    const lines = [
      `${EVENTS.toLocaleString('en')} events, ${WORKSPACES} workspaces, 30 days; seeded in ${seedSeconds} s; medians of ${RUNS} runs through the HTTP client (Node)`,
      '',
    ];
    lines.push(`${'procedure'.padEnd(52)} ${'median'.padStart(9)} ${'p90'.padStart(9)}  target`);
    for (const r of results)
      lines.push(
        `${r.name.padEnd(52)} ${`${r.medianMs} ms`.padStart(9)} ${`${r.p90Ms} ms`.padStart(9)}  ${r.targetMs ? `< ${r.targetMs} ms ${r.met ? 'met' : 'MISSED'}` : ''}`,
      );
    process.stdout.write(`${lines.join('\n')}\n`);
    mkdirSync('bench/results', { recursive: true });
    const file = `bench/results/query-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
    const json = `${JSON.stringify({ startedAt: new Date().toISOString(), events: EVENTS, workspaces: WORKSPACES, seedSeconds, runs: RUNS, results }, null, 2)}\n`;
    writeFileSync(file, json);
    writeFileSync('bench/results/query-latest.json', json);
    log(`results written to ${file}`);
  } finally {
    await service?.stop();
    await db.close();
    if (process.env.BENCH_KEEP_DB === '1' || reuse) log(`kept database ${name}`);
    else await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

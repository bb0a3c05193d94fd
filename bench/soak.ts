/**
 * Soak run: `npm run bench:soak`. Starts the service (Node.js, as `npm start` runs it) on a fresh
 * database, measures its maximum ingest rate for batches of 50 events, then holds half of that
 * rate for SOAK_MINUTES (default 10), printing RSS and p99 latency every minute. A healthy service
 * stays flat: memory does not climb and latency does not drift. Results go to bench/results/.
 *
 *   DATABASE_URL     server to create the soak database on (default the local one)
 *   SOAK_MINUTES     minutes at half the maximum (default 10)
 *   SOAK_MAX_SECONDS seconds of the maximum-rate probe (default 20)
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import postgres from 'postgres';
import { runLoad, startServer } from './support.ts';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const MAX_SECONDS = Number(process.env.SOAK_MAX_SECONDS ?? 20);
const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const ADMIN_KEY = `soak-admin-${randomUUID()}`;
const BATCH = 50;
const CONNECTIONS = 32;
const log = (message: string) => process.stdout.write(`${message}\n`);

interface Minute {
  minute: number;
  requestsPerSecond: number;
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  rssMb: number;
}

async function main() {
  const databaseName = `telemetry_soak_${Date.now()}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${databaseName}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${databaseName}`;
  const service = await startServer('node', 'server/main.ts', {
    DATABASE_URL: url.toString(),
    TELEMETRY_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ADMIN_EPS: '100000000',
    RATE_LIMIT_ADMIN_BURST: '0',
  });
  const created = await fetch(new URL('/api/admin/workspaces', service.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `Soak ${databaseName}` }),
  });
  if (!created.ok) throw new Error(`creating the soak workspace answered ${created.status}`);
  const { id: workspaceId } = (await created.json()) as { id: string };
  const body = JSON.stringify({
    events: Array.from({ length: BATCH }, (_, n) => ({
      workspaceId,
      source: 'web',
      eventType: n % 5 === 0 ? 'perf.metric' : 'ui.interaction',
      name: n % 5 === 0 ? 'LCP' : `button.${n % 7}`,
      metadata: n % 5 === 0 ? { value: 1000 + n, unit: 'ms' } : { route: `/page/${n % 11}` },
    })),
  });
  const load = { url: service.url, path: '/api/events/batch', body, headers: { authorization: `Bearer ${ADMIN_KEY}` }, connections: CONNECTIONS };
  const minutes: Minute[] = [];
  try {
    log(`maximum: ${MAX_SECONDS} s of batches of ${BATCH} on ${CONNECTIONS} connections…`);
    const maximum = await runLoad({ ...load, seconds: MAX_SECONDS });
    const rate = Math.max(1, Math.floor(maximum.requestsPerSecond / 2));
    log(
      `maximum ${maximum.requestsPerSecond} req/s (${maximum.requestsPerSecond * BATCH} events/s), p99 ${maximum.p99Ms} ms; soaking at ${rate} req/s for ${MINUTES} min`,
    );
    log('minute  req/s  events/s  p50 ms  p99 ms  failed  RSS MB');
    for (let minute = 1; minute <= MINUTES; minute += 1) {
      const result = await runLoad({ ...load, seconds: 60, overallRate: rate });
      const row: Minute = {
        minute,
        requestsPerSecond: result.requestsPerSecond,
        eventsPerSecond: result.requestsPerSecond * BATCH,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        failed: result.failedRequests,
        rssMb: service.rssMb(),
      };
      minutes.push(row);
      log(
        `${String(minute).padStart(6)}  ${String(row.requestsPerSecond).padStart(5)}  ${String(row.eventsPerSecond).padStart(8)}  ${String(row.p50Ms).padStart(6)}  ${String(row.p99Ms).padStart(6)}  ${String(row.failed).padStart(6)}  ${String(row.rssMb).padStart(6)}`,
      );
    }
    // Flat: the last minutes against the first ones (after warm-up), with room for a noisy machine.
    const settled = minutes.length > 2 ? minutes.slice(1) : minutes;
    const head = settled.slice(0, Math.max(1, Math.floor(settled.length / 3)));
    const tail = settled.slice(-Math.max(1, Math.floor(settled.length / 3)));
    const mean = (rows: Minute[], pick: (row: Minute) => number) => rows.reduce((sum, row) => sum + pick(row), 0) / rows.length;
    const rssGrowth = mean(tail, (row) => row.rssMb) / mean(head, (row) => row.rssMb);
    const p99Growth = mean(tail, (row) => row.p99Ms) / mean(head, (row) => row.p99Ms);
    const failed = minutes.reduce((sum, row) => sum + row.failed, 0);
    const flat = rssGrowth < 1.2 && p99Growth < 2 && failed === 0;
    log(
      `RSS last/first third: ${rssGrowth.toFixed(2)}x; p99 last/first third: ${p99Growth.toFixed(2)}x; failed requests: ${failed}; ${flat ? 'flat' : 'NOT flat'}`,
    );
    mkdirSync('bench/results', { recursive: true });
    const file = `bench/results/soak-${new Date().toISOString().replaceAll(':', '-').replaceAll('.', '-')}.json`;
    writeFileSync(
      file,
      JSON.stringify(
        { startedAt: new Date().toISOString(), batch: BATCH, connections: CONNECTIONS, maximum, rate, minutes, rssGrowth, p99Growth, flat },
        null,
        2,
      ),
    );
    log(`results: ${file}`);
    if (!flat) process.exitCode = 1;
  } finally {
    await service.stop();
    await admin.unsafe(`drop database if exists "${databaseName}" with (force)`);
    await admin.end();
  }
}

await main();

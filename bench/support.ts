import autocannon from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

export type Runtime = 'node' | 'bun';

export interface RunningServer {
  url: string;
  process: ChildProcess;
  /** Peak resident memory so far (VmHWM), in MB. */
  peakRssMb(): number;
  /** Resident memory now (VmRSS), in MB. */
  rssMb(): number;
  /** The peak resident memory (VmHWM) read as `stop` began, in MB. */
  peakRssMbAtStop(): number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

let bunPath: string | undefined;
/** The pinned Bun binary, fetched on first use (Bun is not a dependency: see .ci/bun-path.sh). */
function bunBinary(): string {
  bunPath ??= execFileSync('sh', ['.ci/bun-path.sh'], { encoding: 'utf8' }).trim();
  return bunPath;
}

/**
 * Starts a TypeScript entry point on Node (through tsx) or Bun and waits until `readyPath` answers.
 * `runtimeFlags` go to the runtime before the script (the service's heap limit on Node, as
 * `npm start` sets it; Bun's flags from `npm run start:bun`).
 */
export async function startServer(
  runtime: Runtime,
  script: string,
  env: Record<string, string>,
  readyPath = '/healthz',
  runtimeFlags: string[] = [],
): Promise<RunningServer> {
  const port = await freePort();
  // On Node the service runs as `npm start` does, from the esbuild bundle; everything else through tsx.
  const nodeArgs = [...runtimeFlags, ...(script === 'server/main.ts' ? ['dist/server.mjs'] : ['--import', 'tsx', script])];
  const [command, args] = runtime === 'node' ? [process.execPath, nodeArgs] : [bunBinary(), [...runtimeFlags, script]];
  const child = spawn(command, args, { env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} on ${runtime} exited early:\n${stderr}`);
    const ready = await fetch(`${url}${readyPath}`, { method: readyPath.startsWith('/trpc') ? 'POST' : 'GET' }).then(
      (r) => r.status < 500,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${script} on ${runtime} never became ready:\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const memoryMb = (field: 'VmRSS' | 'VmHWM') => {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    return Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
  };
  let peakAtStop = 0;
  return {
    url,
    process: child,
    peakRssMbAtStop: () => peakAtStop,
    rssMb: () => memoryMb('VmRSS'),
    peakRssMb: () => memoryMb('VmHWM'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      peakAtStop = memoryMb('VmHWM');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface LoadResult {
  requestsPerSecond: number;
  okRequests: number;
  failedRequests: number;
  p50Ms: number;
  p99Ms: number;
  seconds: number;
}

/** Drives `connections` concurrent keep-alive connections posting `body` (or a new `nextBody()` each request) for `seconds`. */
export async function runLoad(options: {
  url: string;
  path: string;
  body: string;
  nextBody?: () => string | Buffer;
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
  overallRate?: number;
}): Promise<LoadResult> {
  const { nextBody } = options;
  const result = await autocannon({
    ...(options.overallRate && { overallRate: options.overallRate }),
    url: `${options.url}${options.path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: options.body,
    ...(nextBody && {
      requests: [
        {
          setupRequest: (request: autocannon.Request) => ({ ...request, body: nextBody() }),
        },
      ],
    }),
    connections: options.connections,
    duration: options.seconds,
  });
  const ok = result['2xx'];
  return {
    requestsPerSecond: Math.round(ok / result.duration),
    okRequests: ok,
    failedRequests: result.non2xx + result.errors + result.timeouts,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    seconds: result.duration,
  };
}

/** A figure over the rounds: its median, and the lowest and highest value. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median: round(median), min: round(sorted[0]!), max: round(sorted.at(-1)!) };
}

/** Whole numbers from 100 up, two decimals below: what the tables print. */
function round(value: number) {
  return value >= 100 ? Math.round(value) : Math.round(value * 100) / 100;
}

/**
 * What every benchmark sets for the service under load: its database and admin key, warnings only,
 * and rate limits out of the way (the load is the point; a bound key's workspace ceiling would
 * otherwise cap it first).
 */
export function benchServiceEnv(databaseUrl: string, adminKey: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    TELEMETRY_ADMIN_KEY: adminKey,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ADMIN_EPS: '100000000',
    RATE_LIMIT_ADMIN_BURST: '0',
    RATE_LIMIT_WORKSPACE_INGEST_EPS: '1000000',
    RATE_LIMIT_WORKSPACE_INGEST_BURST: '10000000',
    DATABASE_POOL_MAX: '8',
  };
}

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

/** What the load client prints when it stops. */
export interface LoadSummary {
  acknowledged: number;
  attempted: number;
  batches: number;
  failures: Record<string, number>;
  /** Longest time a failing call took to fail (ms): "fails fast" is checked against it. */
  slowestFailureMs: number;
  /** Longest call of any kind (ms). */
  slowestCallMs: number;
  gaveUp: number;
}

export interface RunningLoad {
  /** Ids acknowledged so far (read from the client's ledger file). */
  acknowledgedCount(): number;
  /** Asks the client to finish its batches in flight, and resolves with its summary. */
  stop(): Promise<LoadSummary>;
  ledgerFile: string;
  attemptedFile: string;
  dispose(): void;
}

/** Starts the load client (load-client.ts) in its own process against `url`. */
export function startLoad(options: { url: string; key: string; workspaceId: string; env?: Record<string, string> }): RunningLoad {
  const dir = mkdtempSync(join(tmpdir(), 'telemetry-load-'));
  const ledgerFile = join(dir, 'acknowledged.txt');
  const attemptedFile = join(dir, 'attempted.txt');
  writeFileSync(ledgerFile, '');
  writeFileSync(attemptedFile, '');
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/faults/support/load-client.ts'], {
    env: {
      ...process.env,
      LOAD_URL: options.url,
      LOAD_KEY: options.key,
      LOAD_WORKSPACE: options.workspaceId,
      LOAD_LEDGER: ledgerFile,
      LOAD_ATTEMPTED: attemptedFile,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    ledgerFile,
    attemptedFile,
    acknowledgedCount: () => readIds(ledgerFile).length,
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`load client exited with ${code}: ${stderr}`);
      return JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadSummary;
    },
    dispose() {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function readIds(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

export interface Reconciliation {
  acknowledged: number;
  stored: number;
  /** Acknowledged ids the database does not hold: must be empty. */
  lost: string[];
  /** Rows sharing an id: must be 0. */
  duplicateRows: number;
  /** Stored ids the client never generated: must be 0. */
  unknown: number;
}

/** Compares the client's ledger with what the database holds for the workspace. */
export async function reconcile(databaseUrl: string, workspaceId: string, load: RunningLoad): Promise<Reconciliation> {
  const acknowledged = new Set(readIds(load.ledgerFile));
  const attempted = new Set(readIds(load.attemptedFile));
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ id: string }[]>`select id::text as id from telemetry.events where workspace_id = ${workspaceId}`;
    const stored = new Set(rows.map((row) => row.id));
    return {
      acknowledged: acknowledged.size,
      stored: rows.length,
      lost: [...acknowledged].filter((id) => !stored.has(id)),
      duplicateRows: rows.length - stored.size,
      unknown: [...stored].filter((id) => !attempted.has(id)).length,
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

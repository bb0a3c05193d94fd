import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPglite, type Database } from '../db/database.ts';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { ensureDailyPartitions, partitionName } from '../db/partitions.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';

const DAY_MS = 86_400_000;

/**
 * The CLIs run as `npm run` runs them, in a child process, against the database the configuration
 * names: a PGlite directory (which takes one process at a time, so this file closes its own handle
 * around each run) or, in the postgres project, the test database's URL.
 */
let scratch: string;
let testDb: TestDatabase | undefined;
let env: Record<string, string>;

async function withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T> {
  if (testDb) return work(testDb.db);
  const db = await openPglite(path.join(scratch, 'data'));
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

function runCli(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const count = (db: Database) => db.rows<{ n: number | string }>(sql`select count(*) as n from telemetry.events`).then(([row]) => Number(row?.n));

const oldDay = new Date(Math.floor((Date.now() - 200 * DAY_MS) / DAY_MS) * DAY_MS);
const recentDay = new Date(Math.floor((Date.now() - DAY_MS) / DAY_MS) * DAY_MS);

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'telemetry-retention-cli-'));
  const archiveDir = path.join(scratch, 'archive');
  if (process.env.TEST_DB_KIND === 'postgres') {
    testDb = await openTestDatabase();
    env = { DATABASE_URL: testDb.url ?? '', RETENTION_DAYS: '90', ARCHIVE_DIR: archiveDir, LOG_LEVEL: 'silent' };
  } else {
    env = { DATABASE_URL: '', PGLITE_DIR: path.join(scratch, 'data'), RETENTION_DAYS: '90', ARCHIVE_DIR: archiveDir, LOG_LEVEL: 'silent' };
  }
  await withDatabase(async (db) => {
    if (!testDb) await db.migrate();
    for (const day of [oldDay, recentDay]) await ensureDailyPartitions(db, { from: day, to: day });
    const rows: EventRow[] = [];
    for (const day of [oldDay, recentDay]) {
      for (let index = 0; index < 5; index += 1) {
        const at = new Date(day.getTime() + 3_600_000 + index * 60_000);
        rows.push({
          id: randomUUID(),
          workspaceId: randomUUID(),
          userId: null,
          source: 'cli',
          eventType: 'custom',
          name: 'run',
          targetType: null,
          targetId: null,
          metadata: { index },
          createdAt: at,
          receivedAt: at,
        });
      }
    }
    await createEventWriter(db).write(rows);
  });
}, 120_000);
afterAll(async () => {
  await testDb?.drop();
  await rm(scratch, { recursive: true, force: true });
});

describe('npm run retention and npm run archive:load', () => {
  it('a dry run prints what would go and exits 0 without changing anything', async () => {
    const result = await runCli('cli/operator/retention.ts', ['--dry-run']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('nothing was changed');
    expect(result.stdout).toContain('Default retention: 90 days');
    expect(result.stdout).toMatch(/Partitions to drop: 1 \(5 events\)/);
    expect(result.stdout).toContain(partitionName(oldDay));
    expect(await withDatabase(count)).toBe(10);
  }, 60_000);

  it('a run archives and drops the expired partition; archive:load brings it back and refuses a corrupted archive', async () => {
    const run = await runCli('cli/operator/retention.ts', []);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Partitions dropped: 1 \(5 events\)/);
    expect(run.stdout).toMatch(/Ledger ids deleted: 5/);
    expect(run.stdout).toMatch(/Archives written: 1/);
    expect(await withDatabase(count)).toBe(5);

    const manifest = /(\S+\.manifest\.json)/.exec(run.stdout)?.[1];
    if (!manifest) throw new Error(`no manifest in:\n${run.stdout}`);
    const file = manifest.replace(/\.manifest\.json$/, '.ndjson.gz');
    const original = await readFile(file);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 12]! ^= 0x01;
    await writeFile(file, damaged);
    const refused = await runCli('cli/operator/archive-load.ts', [env.ARCHIVE_DIR!]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused, nothing was loaded: .*(checksum mismatch|cannot be read as gzip)/);
    expect(await withDatabase(count)).toBe(5);

    await writeFile(file, original);
    const loaded = await runCli('cli/operator/archive-load.ts', [env.ARCHIVE_DIR!]);
    expect(loaded.stderr).toBe('');
    expect(loaded.code).toBe(0);
    expect(loaded.stdout).toContain('Loaded 5 events from 1 archive(s).');
    expect(await withDatabase(count)).toBe(10);
  }, 60_000);

  it('exits 2 with a usage message on an unknown option', async () => {
    const result = await runCli('cli/operator/retention.ts', ['--everything']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('usage: npm run retention');
  }, 60_000);
});

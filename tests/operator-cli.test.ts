import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDirectory } from '../db/data-directory-lock.ts';
import { type ProcessResult, runNodeToExit } from './support/child-service.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs an operator command as `npm run <script>` would, until it exits on its own. */
function runOperatorCommand(script: string, env: Record<string, string>): Promise<ProcessResult> {
  return runNodeToExit(['--import', 'tsx', script], { ...process.env, LOG_LEVEL: 'info', DATABASE_URL: '', REDIS_URL: '', ...env }, (kill) =>
    cleanups.push(kill),
  );
}

function scratchDataDir(): string {
  const parent = mkdtempSync(join(tmpdir(), 'telemetry-migrate-'));
  cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
  return join(parent, 'data');
}

/** A local port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('npm run db:migrate', () => {
  it('migrates a new embedded data directory and says what it did', async () => {
    const dataDir = scratchDataDir();
    const result = await runOperatorCommand('cli/operator/migrate.ts', { PGLITE_DIR: dataDir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^migrations applied on pglite; \d+ partitions created\n$/);
    // A fresh embedded database and every migration, in a child process beside other test files.
  }, 120_000);

  it('on a data directory held by a running process refuses with one line naming the holder, and exit code 1', async () => {
    const dataDir = scratchDataDir();
    // This test's own process holds the lock, as a running service would.
    cleanups.push(lockDataDirectory(dataDir));

    const result = await runOperatorCommand('cli/operator/migrate.ts', { PGLITE_DIR: dataDir });

    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([
      `db:migrate: The embedded database at ${dataDir} is in use by process ${process.pid} (a running service or operator command): stop it, or point PGLITE_DIR (or DATABASE_URL) elsewhere`,
    ]);
  }, 60_000);

  it('with a DATABASE_URL nothing answers refuses with one line naming the variable, never the URL, and exit code 1', async () => {
    const url = `postgres://operator:s3cret@127.0.0.1:${await closedPort()}/telemetry`;

    const result = await runOperatorCommand('cli/operator/migrate.ts', { DATABASE_URL: url });

    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([
      'db:migrate: the database at DATABASE_URL cannot be reached (ECONNREFUSED): check the URL and that the server is up',
    ]);
    expect(result.stderr).not.toContain('s3cret');
  }, 60_000);

  it('with an invalid setting names it without a stack trace, and exit code 2', async () => {
    const result = await runOperatorCommand('cli/operator/migrate.ts', { PGLITE_DIR: scratchDataDir(), PORT: 'eighty' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^Invalid configuration:/);
    expect(result.stderr).toContain('PORT');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});

/** `vitest run` on one small file, as `npm test` runs it, in an environment without the given variables. */
function runTestRunner(env: Record<string, string | undefined>): Promise<ProcessResult> {
  // The parent run's own markers (VITEST, VITEST_POOL_ID, TEST_DB_KIND ...) would confuse the child run.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST') && !name.startsWith('TEST_') && name !== 'CI'),
  );
  return runNodeToExit(['node_modules/vitest/vitest.mjs', 'run', 'tests/uuid7.test.ts'], { ...inherited, NO_COLOR: '1', ...env }, (kill) =>
    cleanups.push(kill),
  );
}

describe('npm test', () => {
  it('ends by saying what it did not run, why, and how to run it', async () => {
    const result = await runTestRunner({ TEST_REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      'Not run: real PostgreSQL (the "postgres" project: every test file again on PostgreSQL, and the tests only PostgreSQL can run) — TEST_DATABASE_URL is not set — set TEST_DATABASE_URL to a server the tests may create databases on, e.g. postgres://postgres@127.0.0.1:5432/postgres',
    );
    // Redis was given: it is not named as missing.
    expect(result.stdout).not.toContain('Not run: Redis');
    expect(result.stdout).toContain(
      'Run everything: TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_REDIS_URL=redis://127.0.0.1:6379 npm test',
    );
  }, 120_000);

  it('in CI refuses to run without real PostgreSQL, with one line and exit code 1', async () => {
    const result = await runTestRunner({ CI: 'true' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      'CI is set but TEST_DATABASE_URL is not: CI runs every test on real PostgreSQL too (see .ci/run); set TEST_DATABASE_URL, or unset CI',
    ]);
  }, 120_000);
});

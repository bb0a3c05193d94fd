import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirectoryInUseError, lockDataDirectory } from '../db/data-directory-lock.ts';
import { freePort, type ProcessResult, runNodeToExit, startChildService } from './support/child-service.ts';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A port some other program is listening on. */
async function occupiedPort(): Promise<number> {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  return (holder.address() as net.AddressInfo).port;
}

/** Runs server/main.ts as `npm start` would, until it exits on its own. */
function runService(env: Record<string, string>, script = 'server/main.ts'): Promise<ProcessResult> {
  const serviceEnv = { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'info', DATABASE_URL: '', REDIS_URL: '', ...env };
  return runNodeToExit(['--import', 'tsx', script], serviceEnv, (kill) => cleanups.push(kill));
}

describe('starting the service', () => {
  it('on a port in use ends with one line naming the port and PORT, before opening anything', async () => {
    const port = await occupiedPort();
    const parent = mkdtempSync(join(tmpdir(), 'telemetry-start-'));
    cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
    const dataDir = join(parent, 'data');

    const { code, stdout, stderr } = await runService({ PORT: String(port), PGLITE_DIR: dataDir });

    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toEqual([`Port ${port} is already in use (127.0.0.1:${port}): stop what holds it, or set PORT to another port`]);
    // The embedded database was never opened: its directory was not even created.
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('the embedded data directory', () => {
  function scratchDir(): string {
    const parent = mkdtempSync(join(tmpdir(), 'telemetry-lock-'));
    cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
    return join(parent, 'data');
  }

  it('is opened by one process at a time: a second service and an operator command refuse with one line naming the holder', async () => {
    const dataDir = scratchDir();
    const first = await startChildService({ DATABASE_URL: '', REDIS_URL: '', PGLITE_DIR: dataDir });
    cleanups.push(async () => {
      if (first.process.exitCode === null) first.process.kill('SIGKILL');
      await first.exited;
    });

    const second = await runService({ PORT: String(await freePort()), PGLITE_DIR: dataDir });
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n')).toEqual([
      `The embedded database at ${dataDir} is in use by process ${first.process.pid} (a running service or operator command): stop it, or point PGLITE_DIR (or DATABASE_URL) elsewhere`,
    ]);

    const retention = await runService({ PGLITE_DIR: dataDir }, 'cli/operator/retention.ts');
    expect(retention.code).not.toBe(0);
    expect(retention.stderr).toContain(`is in use by process ${first.process.pid}`);

    // The first service was not disturbed, and once it stops the directory is free again.
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    first.process.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
    // Three child processes start in turn, each compiling the service: slow when the suite runs in parallel.
  }, 120_000);

  it('takes over a lock left by a process that no longer runs or by an earlier process with this id, and refuses one this process holds', async () => {
    const dataDir = scratchDir();
    const ended = spawn(process.execPath, ['-e', '']);
    const endedPid = ended.pid!;
    await new Promise((resolve) => ended.once('exit', resolve));
    const release = lockDataDirectory(dataDir);
    release();
    // A crashed owner's lock: its file names a process that has ended.
    writeFileSync(`${dataDir}.lock`, String(endedPid));

    const releaseAgain = lockDataDirectory(dataDir);
    expect(() => lockDataDirectory(dataDir)).toThrow(DataDirectoryInUseError);
    releaseAgain();
    expect(existsSync(`${dataDir}.lock`)).toBe(false);

    // A lock naming this very process id, which this process does not hold: an earlier process
    // that ran with the same id (a container restarted) left it.
    writeFileSync(`${dataDir}.lock`, String(process.pid));
    lockDataDirectory(dataDir)();
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
  });
});

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

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
function runService(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'info', DATABASE_URL: '', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
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

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { type CitusNodes, createCitusCluster } from './citus-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The `citus` project's cluster, started once per run; test files make their own databases on it. */
    citusNodes: CitusNodes;
  }
}

const run = promisify(execFile);
const installScript = fileURLToPath(new URL('../../.ci/citus/install.sh', import.meta.url));

/**
 * Global setup of the `citus` project: one coordinator and two workers for the whole run (starting
 * them takes longer than a database does), stopped and deleted when the run ends.
 * @see https://vitest.dev/config/globalsetup
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureCitusInstalled();
  const cluster = await createCitusCluster();
  project.provide('citusNodes', cluster.nodes);
  return () => cluster.destroy();
}

/** Citus is not a Debian package: the build carried in .ci/citus goes in first (a no-op once installed). */
async function ensureCitusInstalled(): Promise<void> {
  if (process.getuid?.() === 0) {
    await run('bash', [installScript]);
    return;
  }
  // Fail, never skip: a run that asked for Citus must not pass without it.
  if (!existsSync('/usr/lib/postgresql/15/lib/citus.so')) {
    throw new Error(`Citus is not installed for PostgreSQL 15: run \`sudo bash ${installScript}\` once`);
  }
}

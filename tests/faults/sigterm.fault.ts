import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildService } from '../support/child-service.ts';
import { createPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { createWorkspaceOver } from './support/workspaces.ts';
import { reconcile, startLoad } from './support/load.ts';
import { waitUntil } from './support/wait.ts';

const SHUTDOWN_TIMEOUT_MS = 10_000;

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await createPgCluster();
});
afterAll(async () => {
  await cluster?.destroy();
});

describe('SIGTERM under load', () => {
  it('commits every event it accepted before exiting 0, within the shutdown timeout', async () => {
    const service = await startChildService({
      TELEMETRY_ADMIN_KEY: `fault-admin-${randomBytes(16).toString('hex')}`,
      DATABASE_URL: cluster.url,
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      RATE_LIMIT_ADMIN_EPS: '100000000',
      RATE_LIMIT_ADMIN_BURST: '100000000',
    });
    const workspaceId = await createWorkspaceOver(service.url, service.adminKey);
    // Many workers and large batches: the write queue is busy when the signal comes.
    const load = startLoad({ url: service.url, key: service.adminKey, workspaceId, env: { LOAD_WORKERS: '16', LOAD_BATCH: '200', LOAD_GIVE_UP_MS: '3000' } });
    try {
      await waitUntil(() => load.acknowledgedCount() >= 5000, 'events acknowledged before SIGTERM');
      const signalled = Date.now();
      service.process.kill('SIGTERM');
      const code = await service.exited;
      const exitedInMs = Date.now() - signalled;
      const summary = await load.stop();
      const result = await reconcile(cluster.url, workspaceId, load);
      console.log(`sigterm: ${JSON.stringify({ ...result, lost: result.lost.length, code, exitedInMs, failures: summary.failures })}`);
      expect(code).toBe(0);
      expect(exitedInMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
      expect(result.lost).toEqual([]);
      expect(result.duplicateRows).toBe(0);
      expect(service.output()).toContain('"msg":"stopped"');
    } finally {
      load.dispose();
      service.process.kill('SIGKILL');
    }
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startChildService, type ChildService } from '../support/child-service.ts';
import { createPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { createWorkspaceOver } from './support/workspaces.ts';
import { reconcile, startLoad } from './support/load.ts';
import { waitUntil } from './support/wait.ts';

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await createPgCluster();
});
afterAll(async () => {
  await cluster?.destroy();
});

function serviceEnv(port: number, adminKey: string): Record<string, string> {
  return {
    PORT: String(port),
    TELEMETRY_ADMIN_KEY: adminKey,
    DATABASE_URL: cluster.url,
    LOG_LEVEL: 'warn',
    // The load client uses the admin key; its budget must not be what the test measures.
    RATE_LIMIT_ADMIN_EPS: '100000000',
    RATE_LIMIT_ADMIN_BURST: '100000000',
  };
}

describe('the service killed with kill -9 under load', () => {
  it('keeps every event it acknowledged, and client retries after the restart store no duplicates', async () => {
    const port = await freePort();
    const adminKey = `fault-admin-${randomBytes(16).toString('hex')}`;
    let service: ChildService = await startChildService(serviceEnv(port, adminKey));
    const workspaceId = await createWorkspaceOver(service.url, adminKey);
    const load = startLoad({ url: service.url, key: adminKey, workspaceId });
    try {
      await waitUntil(() => load.acknowledgedCount() >= 3000, 'events acknowledged before the crash');
      service.process.kill('SIGKILL');
      await service.exited;
      const acknowledgedAtCrash = load.acknowledgedCount();

      service = await startChildService(serviceEnv(port, adminKey));
      await waitUntil(() => load.acknowledgedCount() >= acknowledgedAtCrash + 3000, 'events acknowledged after the restart');
      const summary = await load.stop();
      const result = await reconcile(cluster.url, workspaceId, load);

      expect(summary.failures['network'] ?? 0).toBeGreaterThan(0); // the crash did hit calls in flight
      expect(result.lost).toEqual([]);
      expect(result.duplicateRows).toBe(0);
      expect(result.unknown).toBe(0);
      expect(result.acknowledged).toBe(summary.acknowledged);
      expect(result.stored).toBeGreaterThanOrEqual(result.acknowledged);
      console.log(`kill -9: ${JSON.stringify({ ...result, lost: result.lost.length, failures: summary.failures })}`);
    } finally {
      load.dispose();
      service.process.kill('SIGKILL');
    }
  });
});

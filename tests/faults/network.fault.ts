import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildService, type ChildService } from '../support/child-service.ts';
import { createPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { createWorkspaceOver } from './support/workspaces.ts';
import { createTcpProxy, type TcpProxy } from './support/tcp-proxy.ts';
import { reconcile, startLoad } from './support/load.ts';
import { waitUntil } from './support/wait.ts';

const POOL_MAX = 5;
const PROCEDURE_TIMEOUT_MS = 3000;

let cluster: PgCluster;
let proxy: TcpProxy;
let service: ChildService;
beforeAll(async () => {
  cluster = await createPgCluster();
  proxy = await createTcpProxy({ host: '127.0.0.1', port: cluster.port });
  service = await startChildService({
    TELEMETRY_ADMIN_KEY: `fault-admin-${randomBytes(16).toString('hex')}`,
    DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`,
    DATABASE_POOL_MAX: String(POOL_MAX),
    DATABASE_CONNECT_TIMEOUT_S: '2',
    INGEST_WRITE_TIMEOUT_MS: '2000',
    PROCEDURE_TIMEOUT_MS: String(PROCEDURE_TIMEOUT_MS),
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ADMIN_EPS: '100000000',
    RATE_LIMIT_ADMIN_BURST: '100000000',
  });
});
afterAll(async () => {
  service?.process.kill('SIGKILL');
  await proxy?.close();
  await cluster?.destroy();
});

async function timedIngest(workspaceId: string): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const response = await fetch(`${service.url}/api/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${service.adminKey}` },
    body: JSON.stringify({ workspaceId, source: 'backend', eventType: 'probe', name: 'network' }),
  });
  await response.body?.cancel();
  return { status: response.status, ms: Date.now() - started };
}

describe('PostgreSQL connections slowed and cut (TCP proxy)', () => {
  it('never holds a call past its deadline, recovers when the network does, leaks no connections and loses nothing acknowledged', async () => {
    const workspaceId = await createWorkspaceOver(service.url, service.adminKey);
    const load = startLoad({ url: service.url, key: service.adminKey, workspaceId, env: { LOAD_RETRY_DELAY_MS: '200', LOAD_REQUEST_TIMEOUT_MS: '30000' } });
    try {
      await waitUntil(() => load.acknowledgedCount() >= 2000, 'events acknowledged before the trouble');

      // Slowed: every packet held 4 s, longer than the deadlines.
      proxy.setDelay(4000);
      const slowed = await timedIngest(workspaceId);
      expect(slowed.status).toBe(503);
      expect(slowed.ms).toBeLessThan(PROCEDURE_TIMEOUT_MS + 1000);
      // The slowdown lasts a few seconds under load (a span of the fault, not a wait for an event).
      await new Promise((resolve) => setTimeout(resolve, 3000));
      proxy.setDelay(0);
      let acknowledged = load.acknowledgedCount();
      await waitUntil(() => load.acknowledgedCount() >= acknowledged + 2000, 'ingestion to resume after the slowdown', 30_000);

      // Cut: every connection dropped, three times.
      for (let cut = 0; cut < 3; cut += 1) {
        // Each cut drops connections the pool has opened again since the last.
        await waitUntil(() => proxy.openConnections() > 0, 'the pool to reconnect', 30_000);
        proxy.cut();
      }
      acknowledged = load.acknowledgedCount();
      await waitUntil(() => load.acknowledgedCount() >= acknowledged + 2000, 'ingestion to resume after the cuts', 30_000);

      const summary = await load.stop();
      const result = await reconcile(cluster.url, workspaceId, load);
      // Connections settle back within the pool (plus the LISTEN connection and the test's own).
      await waitUntil(
        async () => proxy.openConnections() <= POOL_MAX + 1 && (await cluster.clientConnections()) <= POOL_MAX + 1,
        'connections to settle within the pool',
        15_000,
      ).catch(() => {}); // the assertions below name the numbers if they never do
      const serverSide = await cluster.clientConnections();
      const throughProxy = proxy.openConnections();
      console.log(
        `network: ${JSON.stringify({ ...result, lost: result.lost.length, slowedCall: slowed, failures: summary.failures, slowestCallMs: summary.slowestCallMs, serverSide, throughProxy })}`,
      );
      expect(result.lost).toEqual([]);
      expect(result.duplicateRows).toBe(0);
      expect(result.unknown).toBe(0);
      expect(summary.slowestCallMs).toBeLessThan(PROCEDURE_TIMEOUT_MS + 1500);
      expect(throughProxy).toBeLessThanOrEqual(POOL_MAX + 1);
      expect(serverSide).toBeLessThanOrEqual(POOL_MAX + 1);
    } finally {
      load.dispose();
    }
  });
});

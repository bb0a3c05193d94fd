import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildService, type ChildService } from '../support/child-service.ts';
import { createPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { createWorkspaceOver } from './support/workspaces.ts';
import { reconcile, startLoad } from './support/load.ts';
import { waitUntil } from './support/wait.ts';

let cluster: PgCluster;
let service: ChildService;
beforeAll(async () => {
  cluster = await createPgCluster();
  service = await startChildService({
    TELEMETRY_ADMIN_KEY: `fault-admin-${randomBytes(16).toString('hex')}`,
    DATABASE_URL: cluster.url,
    DATABASE_CONNECT_TIMEOUT_S: '2',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_ADMIN_EPS: '100000000',
    RATE_LIMIT_ADMIN_BURST: '100000000',
  });
});
afterAll(async () => {
  service?.process.kill('SIGKILL');
  await cluster?.destroy();
});

async function readyStatus(): Promise<number> {
  return fetch(`${service.url}/readyz`).then(
    (response) => response.status,
    () => 0,
  );
}

describe('PostgreSQL stopped under load, then started again', () => {
  it('fails calls fast with a retryable 503 and fails /readyz while it is down, serves again within seconds of its return, and loses nothing acknowledged', async () => {
    const workspaceId = await createWorkspaceOver(service.url, service.adminKey);
    const load = startLoad({ url: service.url, key: service.adminKey, workspaceId, env: { LOAD_RETRY_DELAY_MS: '200' } });
    try {
      await waitUntil(() => load.acknowledgedCount() >= 3000, 'events acknowledged before the outage');
      await cluster.stop('fast');
      const acknowledgedWhenDown = load.acknowledgedCount();

      // While it is down: readiness fails, and a call fails fast with 503 and Retry-After.
      await waitUntil(async () => (await readyStatus()) === 503, '/readyz to fail', 10_000);
      const started = Date.now();
      const response = await fetch(`${service.url}/api/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${service.adminKey}` },
        body: JSON.stringify({ workspaceId, source: 'backend', eventType: 'probe', name: 'during-outage' }),
      });
      const failedInMs = Date.now() - started;
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(JSON.stringify(await response.json())).not.toMatch(/ECONNREFUSED|postgres|stack/i);
      // "Fast" is the behaviour under test: a call never waits out the outage.
      expect(failedInMs).toBeLessThan(3000);
      // The outage lasts a while under load (a span of the fault, not a wait for an event).
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(load.acknowledgedCount()).toBe(acknowledgedWhenDown);

      const restarted = Date.now();
      await cluster.start();
      await waitUntil(async () => (await readyStatus()) === 200, '/readyz to pass again', 15_000);
      await waitUntil(() => load.acknowledgedCount() >= acknowledgedWhenDown + 2000, 'ingestion to resume', 15_000);
      const recoveredInMs = Date.now() - restarted;

      const summary = await load.stop();
      const result = await reconcile(cluster.url, workspaceId, load);
      console.log(
        `postgres outage: ${JSON.stringify({ ...result, lost: result.lost.length, failedInMs, recoveredInMs, failures: summary.failures, slowestFailureMs: summary.slowestFailureMs })}`,
      );
      expect(result.lost).toEqual([]);
      expect(result.duplicateRows).toBe(0);
      expect(result.unknown).toBe(0);
      expect(summary.failures['http_503'] ?? 0).toBeGreaterThan(0);
      expect(summary.slowestFailureMs).toBeLessThan(5000);
      expect(recoveredInMs).toBeLessThan(15_000);
    } finally {
      load.dispose();
    }
  });
});

describe('PostgreSQL crashed (immediate shutdown: connections refused), then started again', () => {
  const call = (path: string, key: string, body?: unknown) =>
    fetch(`${service.url}/api${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  async function expectRetryable503(response: Response, what: string) {
    expect(response.status, what).toBe(503);
    expect(response.headers.get('retry-after'), what).toMatch(/^\d+$/);
    expect(JSON.stringify(await response.json()), what).not.toMatch(/ECONNREFUSED|ECONNRESET|postgres|stack/i);
  }

  it('answers an ingest call with a key not yet cached, reads and admin calls with 503 and Retry-After while it is down, and serves them all after its restart', async () => {
    const workspaceId = await createWorkspaceOver(service.url, service.adminKey);
    const event = { source: 'backend', eventType: 'custom', name: 'crash-probe' };
    // Created but never used: this instance has not cached it, so its first call must look it up.
    const created = await call('/admin/keys', service.adminKey, { kind: 'ingest', workspaceId });
    expect(created.status).toBe(200);
    const { key: uncachedKey } = (await created.json()) as { key: string };
    expect((await call('/events', service.adminKey, { ...event, workspaceId })).status).toBe(200);

    await cluster.stop('immediate');
    await waitUntil(async () => (await readyStatus()) === 503, '/readyz to fail', 10_000);
    await expectRetryable503(await call('/events', uncachedKey, event), 'ingest with an uncached key');
    await expectRetryable503(await call('/events/list', service.adminKey, { workspaceId }), 'events.list');
    await expectRetryable503(await call('/admin/retention', service.adminKey), 'admin.retention.list');
    await expectRetryable503(await call(`/admin/erasure/${randomUUID()}`, service.adminKey), 'admin.erasure.status');

    await cluster.start();
    await waitUntil(async () => (await readyStatus()) === 200, '/readyz to pass again', 30_000);
    // The write path takes calls again once its probe finds the database answering.
    await waitUntil(async () => (await call('/events', uncachedKey, event)).status === 200, 'ingest with the new key to succeed', 30_000);
    const listed = await call('/events/list', service.adminKey, { workspaceId });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { events: unknown[] }).events.length).toBeGreaterThanOrEqual(2);
    expect((await call('/admin/retention', service.adminKey)).status).toBe(200);
  });

  it('loses nothing acknowledged when it crashes under load, answers 503 while it is down, and takes events again after its restart', async () => {
    const workspaceId = await createWorkspaceOver(service.url, service.adminKey);
    const load = startLoad({ url: service.url, key: service.adminKey, workspaceId, env: { LOAD_RETRY_DELAY_MS: '200' } });
    try {
      await waitUntil(() => load.acknowledgedCount() >= 2000, 'events acknowledged before the crash');
      await cluster.stop('immediate');
      await waitUntil(async () => (await readyStatus()) === 503, '/readyz to fail', 10_000);
      const acknowledgedWhenDown = load.acknowledgedCount();
      await cluster.start();
      await waitUntil(async () => (await readyStatus()) === 200, '/readyz to pass again', 30_000);
      await waitUntil(() => load.acknowledgedCount() >= acknowledgedWhenDown + 2000, 'ingestion to resume', 30_000);

      const summary = await load.stop();
      const result = await reconcile(cluster.url, workspaceId, load);
      console.log(`postgres crash: ${JSON.stringify({ ...result, lost: result.lost.length, failures: summary.failures })}`);
      expect(result.lost).toEqual([]);
      expect(result.duplicateRows).toBe(0);
      expect(result.unknown).toBe(0);
      // Calls during the crash were refused as retryable, never as internal errors.
      expect(summary.failures['http_500'] ?? 0).toBe(0);
    } finally {
      load.dispose();
    }
  });
});

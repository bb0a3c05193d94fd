import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestWorkspace } from './support/app.ts';
import { startChildService } from './support/child-service.ts';
import { storedEvents } from './support/events.ts';

// The child service needs a database it can reach by URL: real Postgres only.
describe.runIf(process.env.TEST_DB_KIND === 'postgres')('graceful shutdown', () => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await openTestDatabase();
  });
  afterAll(async () => {
    await testDb?.drop();
  });

  it('on SIGTERM stops accepting, commits every event it acknowledged, and exits 0', async () => {
    const service = await startChildService({ DATABASE_URL: testDb.url!, INGEST_FLUSH_DELAY_MS: '20' });
    const workspaceId = await createTestWorkspace(testDb.db);
    const acknowledged: string[] = [];
    let refused = 0;
    const send = async () => {
      const response = await fetch(`${service.url}/api/events/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${service.adminKey}` },
        body: JSON.stringify({
          events: Array.from({ length: 20 }, () => ({ id: randomUUID(), workspaceId, source: 'backend', eventType: 'custom', name: 'load' })),
        }),
      }).catch(() => undefined);
      if (response?.ok) {
        const body = (await response.json()) as { receipts: { status: string; id: string }[] };
        acknowledged.push(...body.receipts.filter((r) => r.status === 'accepted').map((r) => r.id));
      } else {
        refused += 1;
      }
    };
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 25; i += 1) await send();
      }),
    );
    // SIGTERM lands while the load is being served.
    await vi.waitFor(() => expect(acknowledged.length).toBeGreaterThan(0), { timeout: 20_000, interval: 20 });
    service.process.kill('SIGTERM');
    await load;
    expect(await service.exited).toBe(0);
    expect(service.output()).toContain('"msg":"stopped"');

    expect(acknowledged.length).toBeGreaterThan(0);
    const stored = new Set((await storedEvents(testDb.db, workspaceId)).map((e) => e.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    expect(refused).toBeGreaterThan(0);
  }, 60_000);
});

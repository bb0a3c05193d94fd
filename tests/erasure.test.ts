import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import type { TestDatabase } from './support/database.ts';
import { procedureCaller, type TestKeys, createTestWorkspace, openTestDatabaseWithKeys } from './support/app.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let keys: TestKeys;
// Today's partitions exist; events from days ago land in the default one: erasure must reach both.
beforeAll(async () => {
  ({ testDb, keys } = await openTestDatabaseWithKeys());
});
afterAll(async () => {
  await testDb?.drop();
});

function row(workspaceId: string, userId: string | null, minutesAgo: number): EventRow {
  const at = new Date(Date.now() - minutesAgo * 60_000);
  return {
    id: randomUUID(),
    workspaceId,
    userId,
    source: 'web',
    eventType: 'custom',
    name: 'x',
    targetType: null,
    targetId: null,
    metadata: null,
    createdAt: at,
    receivedAt: at,
  };
}

async function count(query: ReturnType<typeof sql>): Promise<number> {
  const [result] = await testDb.db.rows<{ n: number | string }>(query);
  return Number(result?.n ?? 0);
}

describe('admin.erasure', () => {
  it('deletes exactly the user’s events in the named workspace, corrects the rollups and keeps an audit row', async () => {
    const workspaceA = await newWorkspace();
    const workspaceB = await newWorkspace();
    const user = randomUUID();
    const other = randomUUID();
    const rows = [
      ...[1, 2, 3, 4000].map((m) => row(workspaceA, user, m)), // one of them days ago, in the default partition
      ...[1, 2].map((m) => row(workspaceA, other, m)),
      row(workspaceA, null, 5),
      ...[1, 2].map((m) => row(workspaceB, user, m)),
    ];
    await createEventWriter(testDb.db).write(rows);

    const receipt = await procedureCaller(testDb.db, { apiKey: keys.admin }).admin.erasure.request({ userId: user, workspaceId: workspaceA });
    expect(receipt).toMatchObject({ userId: user, workspaceId: workspaceA, deletedCount: 4 });

    const remaining = await testDb.db.rows<{ id: string }>(sql`select id from telemetry.events where workspace_id in (${workspaceA}, ${workspaceB})`);
    const expected = rows.filter((r) => !(r.workspaceId === workspaceA && r.userId === user)).map((r) => r.id);
    expect(remaining.map((r) => r.id).sort()).toEqual(expected.sort());
    for (const workspace of [workspaceA, workspaceB]) {
      const raw = await count(sql`select count(*) as n from telemetry.events where workspace_id = ${workspace}`);
      expect(await count(sql`select coalesce(sum(count), 0) as n from telemetry.event_counts_minute where workspace_id = ${workspace}`)).toBe(raw);
      expect(await count(sql`select coalesce(sum(count), 0) as n from telemetry.event_counts_hour where workspace_id = ${workspace}`)).toBe(raw);
    }

    const status = await procedureCaller(testDb.db, { apiKey: keys.admin }).admin.erasure.status({ requestId: receipt.requestId });
    expect(status).toEqual(receipt);
    expect(await count(sql`select count(*) as n from telemetry.erasure_requests where id = ${receipt.requestId} and deleted_count = 4`)).toBe(1);
  });

  it('erases in every workspace when an unbound admin names none', async () => {
    const user = randomUUID();
    await createEventWriter(testDb.db).write([row(randomUUID(), user, 1), row(randomUUID(), user, 2)]);
    const receipt = await procedureCaller(testDb.db, { apiKey: keys.admin }).admin.erasure.request({ userId: user });
    expect(receipt.deletedCount).toBe(2);
    expect(await count(sql`select count(*) as n from telemetry.events where user_id = ${user}`)).toBe(0);
  });

  it('answers a retried erased event as a duplicate without storing it again', async () => {
    const workspaceId = await newWorkspace();
    const user = randomUUID();
    const ingest = procedureCaller(testDb.db, { apiKey: keys.ingest });
    const id = randomUUID();
    await ingest.telemetry.ingest({ id, workspaceId, userId: user, source: 'web', eventType: 'custom', name: 'x' });
    await procedureCaller(testDb.db, { apiKey: keys.admin }).admin.erasure.request({ userId: user, workspaceId });
    const retry = await ingest.telemetry.ingestBatch({ events: [{ id, workspaceId, userId: user, source: 'web', eventType: 'custom', name: 'x' }] });
    expect(retry.receipts[0]?.status).toBe('duplicate');
    expect(await count(sql`select count(*) as n from telemetry.events where id = ${id}`)).toBe(0);
    // A new event of the same user is stored as usual.
    await ingest.telemetry.ingest({ workspaceId, userId: user, source: 'web', eventType: 'custom', name: 'later' });
    expect(await count(sql`select count(*) as n from telemetry.events where user_id = ${user}`)).toBe(1);
  });

  it('keeps a workspace-bound admin to its own workspace, and other keys out', async () => {
    const workspaceId = await newWorkspace();
    const service = createKeyService({ db: testDb.db });
    const boundAdmin = (await service.createKey({ kind: 'admin', workspaceId })).key;
    const read = (await service.createKey({ kind: 'read', workspaceId })).key;
    const bound = procedureCaller(testDb.db, { apiKey: boundAdmin });
    await expect(bound.admin.erasure.request({ userId: randomUUID(), workspaceId: randomUUID() })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const own = await bound.admin.erasure.request({ userId: randomUUID() });
    expect(own.workspaceId).toBe(workspaceId);
    const elsewhere = await procedureCaller(testDb.db, { apiKey: keys.admin }).admin.erasure.request({ userId: randomUUID(), workspaceId: randomUUID() });
    await expect(bound.admin.erasure.status({ requestId: elsewhere.requestId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(procedureCaller(testDb.db, { apiKey: read }).admin.erasure.request({ userId: randomUUID() })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(procedureCaller(testDb.db, { apiKey: keys.ingest }).admin.erasure.request({ userId: randomUUID() })).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
  });
});

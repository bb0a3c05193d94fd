import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Database } from '../db/database.ts';
import { isForeignKeyViolation } from '../db/errors.ts';
import { TRPCError } from '@trpc/server';
import type { inferProcedureInput } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../server/routers/index.ts';
import { workspaces } from '../db/schema.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { createWorkspaceService } from '../server/services/workspaces/workspaces.ts';
import { maintainPartitions } from '../server/partition-maintenance.ts';
import { createTestKeys, createTestWorkspace, procedureCaller, type TestKeys } from './support/app.ts';
import { migrateUpTo } from './support/migrations.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { countEventsWithId, storedEvents } from './support/events.ts';

type CreateKeyInput = inferProcedureInput<AppRouter['admin']['keys']['create']>;

let testDb: TestDatabase;
let keys: TestKeys;
beforeAll(async () => {
  testDb = await openTestDatabase();
  await maintainPartitions(testDb.db, { daysAhead: 2 });
  keys = await createTestKeys(testDb.db);
});
afterAll(async () => {
  await testDb?.drop();
});

const as = (apiKey: string) => procedureCaller(testDb.db, { apiKey });
const uniqueName = (label: string) => `${label} ${randomUUID().slice(0, 8)}`;

async function expectTrpcError(promise: Promise<unknown>, code: TRPCError['code']): Promise<TRPCError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TRPCError);
  expect((error as TRPCError).code).toBe(code);
  return error as TRPCError;
}

async function keyOf(kind: 'read' | 'admin', workspaceId: string): Promise<string> {
  return (await createKeyService({ db: testDb.db }).createKey({ kind, workspaceId })).key;
}

describe('admin.workspaces', () => {
  it('create answers the workspace with its id, trimmed name and creation time, and list shows it', async () => {
    const name = uniqueName('Checkout');
    const created = await as(keys.admin).admin.workspaces.create({ name: `  ${name}  ` });
    expect(created).toMatchObject({ name });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.createdAt).toBeInstanceOf(Date);
    const { workspaces, truncated } = await as(keys.admin).admin.workspaces.list();
    expect(truncated).toBe(false);
    expect(workspaces).toContainEqual(created);
  });

  it('list answers workspaces sorted by name whatever its case', async () => {
    const prefix = `Sorted ${randomUUID().slice(0, 8)}`;
    for (const suffix of ['b', 'C', 'a']) await as(keys.admin).admin.workspaces.create({ name: `${prefix} ${suffix}` });
    const names = (await as(keys.admin).admin.workspaces.list()).workspaces.map((w) => w.name).filter((name) => name.startsWith(prefix));
    expect(names).toEqual([`${prefix} a`, `${prefix} b`, `${prefix} C`]);
  });

  it('create refuses a name already taken, whatever its case, with 409', async () => {
    const name = uniqueName('Billing');
    await as(keys.admin).admin.workspaces.create({ name });
    const error = await expectTrpcError(as(keys.admin).admin.workspaces.create({ name: name.toUpperCase() }), 'CONFLICT');
    expect(error.message).toContain('already exists');
  });

  it('create refuses an empty name, a name over 100 characters and control characters with 400', async () => {
    for (const name of ['   ', 'x'.repeat(101), 'two\nlines', 'bell\u0007']) {
      await expectTrpcError(as(keys.admin).admin.workspaces.create({ name }), 'BAD_REQUEST');
    }
  });

  it('rename changes the name; the same name in another case is allowed, another workspace’s name is 409', async () => {
    const first = await as(keys.admin).admin.workspaces.create({ name: uniqueName('Search') });
    const second = await as(keys.admin).admin.workspaces.create({ name: uniqueName('Ads') });
    const renamed = await as(keys.admin).admin.workspaces.rename({ id: first.id, name: first.name.toUpperCase() });
    expect(renamed).toEqual({ ...first, name: first.name.toUpperCase() });
    await expectTrpcError(as(keys.admin).admin.workspaces.rename({ id: first.id, name: second.name.toLowerCase() }), 'CONFLICT');
  });

  it('rename answers 404 for an unknown id', async () => {
    await expectTrpcError(as(keys.admin).admin.workspaces.rename({ id: randomUUID(), name: uniqueName('Ghost') }), 'NOT_FOUND');
  });

  it('a bound admin key lists only its own workspace, renames only it, and may not create workspaces', async () => {
    const own = await createTestWorkspace(testDb.db);
    const other = await createTestWorkspace(testDb.db);
    const boundAdmin = await keyOf('admin', own);
    const listed = await as(boundAdmin).admin.workspaces.list();
    expect(listed.workspaces.map((w) => w.id)).toEqual([own]);
    const name = uniqueName('Renamed by its admin');
    expect((await as(boundAdmin).admin.workspaces.rename({ id: own, name })).name).toBe(name);
    await expectTrpcError(as(boundAdmin).admin.workspaces.rename({ id: other, name: uniqueName('Not mine') }), 'FORBIDDEN');
    await expectTrpcError(as(boundAdmin).admin.workspaces.create({ name: uniqueName('New') }), 'FORBIDDEN');
  });

  it('read and ingest keys may not call them (403)', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const readKey = await keyOf('read', workspaceId);
    await expectTrpcError(as(readKey).admin.workspaces.list(), 'FORBIDDEN');
    await expectTrpcError(as(readKey).admin.workspaces.create({ name: uniqueName('Read') }), 'FORBIDDEN');
    await expectTrpcError(as(readKey).admin.workspaces.rename({ id: workspaceId, name: uniqueName('Read') }), 'FORBIDDEN');
    await expectTrpcError(as(keys.ingest).admin.workspaces.list(), 'FORBIDDEN');
  });
});

describe('telemetry.workspace', () => {
  it("answers a read key's own workspace, and a bound admin's", async () => {
    const name = uniqueName('Mobile');
    const workspaceId = await createTestWorkspace(testDb.db, name);
    expect(await as(await keyOf('read', workspaceId)).telemetry.workspace({})).toMatchObject({ id: workspaceId, name });
    expect(await as(await keyOf('admin', workspaceId)).telemetry.workspace({})).toMatchObject({ id: workspaceId, name });
  });

  it('answers the workspace an unbound admin names, 400 when it names none and 404 for an unknown one', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    expect((await as(keys.admin).telemetry.workspace({ workspaceId })).id).toBe(workspaceId);
    await expectTrpcError(as(keys.admin).telemetry.workspace({}), 'BAD_REQUEST');
    await expectTrpcError(as(keys.admin).telemetry.workspace({ workspaceId: randomUUID() }), 'NOT_FOUND');
  });
});

describe('admin.keys.create in workspaces', () => {
  it('creates read and ingest keys in an existing workspace', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    for (const kind of ['read', 'ingest'] as const) {
      expect(await as(keys.admin).admin.keys.create({ kind, workspaceId })).toMatchObject({ kind, workspaceId });
    }
  });

  it('refuses a workspace that does not exist with 404 on workspaceId', async () => {
    const error = await expectTrpcError(as(keys.admin).admin.keys.create({ kind: 'read', workspaceId: randomUUID() }), 'NOT_FOUND');
    expect(error.message).toBe('No workspace with this id');
  });

  it('refuses an ingest key with neither workspaceId nor allWorkspaces, and one with both, with 400', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const neither = await expectTrpcError(as(keys.admin).admin.keys.create({ kind: 'ingest' }), 'BAD_REQUEST');
    expect(neither.message).toContain('workspaceId');
    const both: CreateKeyInput = { kind: 'ingest', workspaceId, allWorkspaces: true };
    await expectTrpcError(as(keys.admin).admin.keys.create(both), 'BAD_REQUEST');
    await expectTrpcError(as(keys.admin).admin.keys.create({ kind: 'read', allWorkspaces: true }), 'BAD_REQUEST');
  });

  it('creates an all-workspaces ingest key only on the explicit choice, and only for an unbound admin', async () => {
    const created = await as(keys.admin).admin.keys.create({ kind: 'ingest', allWorkspaces: true });
    expect(created.workspaceId).toBeNull();
    const boundAdmin = await keyOf('admin', await createTestWorkspace(testDb.db));
    await expectTrpcError(as(boundAdmin).admin.keys.create({ kind: 'ingest', allWorkspaces: true }), 'FORBIDDEN');
  });

  it('rotating an all-workspaces ingest key issues another all-workspaces key', async () => {
    const created = await as(keys.admin).admin.keys.create({ kind: 'ingest', allWorkspaces: true });
    const rotated = await as(keys.admin).admin.keys.rotate({ id: created.id });
    expect(rotated).toMatchObject({ kind: 'ingest', workspaceId: null });
  });
});

describe('events of an all-workspaces ingest key', () => {
  it('an event naming no workspace is refused with workspace_required on workspaceId, and nothing is stored', async () => {
    const id = randomUUID();
    const error = await expectTrpcError(as(keys.ingest).telemetry.ingest({ id, source: 'web', eventType: 'custom', name: 'orphan' }), 'BAD_REQUEST');
    expect(error.message).toContain('workspaceId');
    expect(await countEventsWithId(testDb.db, id)).toBe(0);
  });

  it('an event naming a workspace that does not exist is refused with 404, and nothing is stored', async () => {
    const id = randomUUID();
    const workspaceId = randomUUID();
    await expectTrpcError(as(keys.ingest).telemetry.ingest({ id, workspaceId, source: 'web', eventType: 'custom', name: 'lost' }), 'NOT_FOUND');
    expect(await countEventsWithId(testDb.db, id)).toBe(0);
  });

  it('a batch mixing such events with good ones stores only the good ones, with a receipt code for each refusal', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const unknown = randomUUID();
    const result = await as(keys.ingest).telemetry.ingestBatch({
      events: [
        { workspaceId, source: 'web', eventType: 'custom', name: 'good' },
        { source: 'web', eventType: 'custom', name: 'no workspace' },
        { workspaceId: unknown, source: 'web', eventType: 'custom', name: 'unknown workspace' },
        { workspaceId: workspaceId.toUpperCase(), source: 'web', eventType: 'custom', name: 'good too' },
      ],
    });
    expect(result.receipts.map((r) => r.status)).toEqual(['accepted', 'rejected', 'rejected', 'accepted']);
    expect(result.receipts[1]).toMatchObject({ code: 'workspace_required', path: 'workspaceId' });
    expect(result.receipts[2]).toMatchObject({ code: 'unknown_workspace', path: 'workspaceId' });
    expect((await storedEvents(testDb.db, workspaceId)).map((e) => e.name).sort()).toEqual(['good', 'good too']);
    expect(await storedEvents(testDb.db, unknown)).toHaveLength(0);
  });

  it('a workspace refused as unknown is accepted as soon as it exists (unknown ids are not remembered)', async () => {
    const workspaceId = randomUUID();
    const event = { workspaceId, source: 'web', eventType: 'custom', name: 'early' } as const;
    const caller = as(keys.ingest);
    expect((await caller.telemetry.ingestBatch({ events: [event] })).receipts[0]).toMatchObject({ code: 'unknown_workspace' });
    // Created elsewhere (another instance, the migration's backfill): only the database knows it.
    await testDb.db.orm.insert(workspaces).values({ id: workspaceId, name: uniqueName('Late') });
    expect((await caller.telemetry.ingestBatch({ events: [event] })).accepted).toBe(1);
  });

  it('an ingest key created in a workspace stamps it on events that name none', async () => {
    const workspaceId = await createTestWorkspace(testDb.db);
    const { key } = await as(keys.admin).admin.keys.create({ kind: 'ingest', workspaceId });
    const { id } = await as(key).telemetry.ingest({ source: 'web', eventType: 'custom', name: 'stamped' });
    expect((await storedEvents(testDb.db, workspaceId)).map((e) => e.id)).toEqual([id]);
  });
});

describe('the workspace existence check on ingestion', () => {
  it('asks the database once per call about the workspaces it has not seen, however many events name them, and not again once seen', async () => {
    const statements: unknown[] = [];
    const rows: Database['rows'] = (query, options) => {
      statements.push(query);
      return testDb.db.rows(query, options);
    };
    const counted = { ...testDb.db, rows } as Database;
    const service = createWorkspaceService({ db: counted });
    const [a, b] = [await createTestWorkspace(testDb.db), await createTestWorkspace(testDb.db)];
    const unknown = randomUUID();

    expect(await service.existingWorkspaceIds([a, b, a, unknown, b, a])).toEqual(new Set([a, b]));
    expect(statements).toHaveLength(1);
    expect(await service.existingWorkspaceIds([b, a, a])).toEqual(new Set([a, b]));
    expect(statements).toHaveLength(1);
    // An unknown id is not remembered: it is asked about again (it may have been created since).
    expect(await service.existingWorkspaceIds([a, unknown])).toEqual(new Set([a]));
    expect(statements).toHaveLength(2);
  });

  it('remembers a bounded number of ids, and still answers correctly past the bound', async () => {
    const service = createWorkspaceService({ db: testDb.db, maxCachedIds: 2 });
    const ids = [await createTestWorkspace(testDb.db), await createTestWorkspace(testDb.db), await createTestWorkspace(testDb.db)];
    expect(await service.existingWorkspaceIds(ids)).toEqual(new Set(ids));
    expect(await service.existingWorkspaceIds(ids)).toEqual(new Set(ids));
  });
});

describe('the workspaces migration', () => {
  it('names every workspace keys, overrides and rollups already use, keeps names unique when ids share their start, and then refuses keys of unknown workspaces', async () => {
    const older = await openTestDatabase({ migrate: false });
    try {
      await migrateUpTo(older.db, '0007_workspace_rate_limits');
      const ofKey = 'aaaaaaaa-0000-4000-8000-000000000001';
      const twinOfKey = 'aaaaaaaa-0000-4000-8000-000000000002';
      const ofRetention = 'bbbbbbbb-0000-4000-8000-000000000003';
      const ofLimit = 'cccccccc-0000-4000-8000-000000000004';
      const ofRollup = 'dddddddd-0000-4000-8000-000000000005';
      const onlyInEvents = 'eeeeeeee-0000-4000-8000-000000000006';
      await older.db.rows(sql`insert into telemetry.api_keys (id, kind, workspace_id, display_prefix, secret_hash) values
        (${randomUUID()}, 'read', ${ofKey}, 'tlm_read_x', 'h1'), (${randomUUID()}, 'ingest', ${twinOfKey}, 'tlm_ingest_x', 'h2'),
        (${randomUUID()}, 'ingest', null, 'tlm_ingest_y', 'h3'), (${randomUUID()}, 'read', ${ofKey}, 'tlm_read_z', 'h4')`);
      await older.db.rows(sql`insert into telemetry.workspace_retention (workspace_id, days) values (${ofRetention}, 30), (${ofKey}, 60)`);
      await older.db.rows(sql`insert into telemetry.workspace_rate_limits (workspace_id, kind, events_per_second, burst) values (${ofLimit}, 'ingest', 10, 0)`);
      await older.db.rows(
        sql`insert into telemetry.event_counts_minute (workspace_id, minute, event_type, name, source, count) values (${ofRollup}, now(), 'custom', 'a', 'web', 1)`,
      );
      await older.db.rows(
        sql`insert into telemetry.event_counts_hour (workspace_id, hour, event_type, name, source, count) values (${ofRollup}, now(), 'custom', 'a', 'web', 1)`,
      );
      await older.db.rows(sql`insert into telemetry.event_ids (id, workspace_id, created_at) values (${randomUUID()}, ${onlyInEvents}, now())`);

      await older.db.migrate();

      const named = await older.db.rows<{ id: string; name: string }>(sql`select id, name from telemetry.workspaces order by id`);
      expect(named).toEqual([
        { id: ofKey, name: `Workspace ${ofKey}` },
        { id: twinOfKey, name: `Workspace ${twinOfKey}` },
        { id: ofRetention, name: 'Workspace bbbbbbbb' },
        { id: ofLimit, name: 'Workspace cccccccc' },
        { id: ofRollup, name: 'Workspace dddddddd' },
      ]);
      const keysOfMigrated = createKeyService({ db: older.db });
      await expect(keysOfMigrated.createKey({ kind: 'read', workspaceId: ofRetention })).resolves.toMatchObject({ workspaceId: ofRetention });
      await expect(keysOfMigrated.createKey({ kind: 'read', workspaceId: onlyInEvents })).rejects.toMatchObject({ code: 'not_found', path: 'workspaceId' });
    } finally {
      await older.drop();
    }
  });

  it('gives overrides stored for a workspace with no row their workspace, keeps names unique, and then refuses overrides of unknown workspaces', async () => {
    const older = await openTestDatabase({ migrate: false });
    try {
      await migrateUpTo(older.db, '0008_workspaces');
      const ofRetention = 'f1f1f1f1-0000-4000-8000-000000000001';
      const ofLimit = 'f2f2f2f2-0000-4000-8000-000000000002';
      const existing = 'f3f3f3f3-0000-4000-8000-000000000003';
      // A workspace already carries the name the migration would give ofLimit.
      await older.db.rows(sql`insert into telemetry.workspaces (id, name) values (${existing}, 'workspace F2F2F2F2')`);
      await older.db.rows(sql`insert into telemetry.workspace_retention (workspace_id, days) values (${ofRetention}, 30), (${existing}, 60)`);
      await older.db.rows(sql`insert into telemetry.workspace_rate_limits (workspace_id, kind, events_per_second, burst) values (${ofLimit}, 'ingest', 10, 0)`);

      await older.db.migrate();

      const named = await older.db.rows<{ id: string; name: string }>(sql`select id, name from telemetry.workspaces order by id`);
      expect(named).toEqual([
        { id: ofRetention, name: 'Workspace f1f1f1f1' },
        { id: ofLimit, name: `Workspace ${ofLimit}` },
        { id: existing, name: 'workspace F2F2F2F2' },
      ]);
      const unknown = randomUUID();
      await expect(older.db.rows(sql`insert into telemetry.workspace_retention (workspace_id, days) values (${unknown}, 30)`)).rejects.toSatisfy(
        isForeignKeyViolation,
      );
      await expect(
        older.db.rows(sql`insert into telemetry.workspace_rate_limits (workspace_id, kind, events_per_second, burst) values (${unknown}, 'ingest', 10, 0)`),
      ).rejects.toSatisfy(isForeignKeyViolation);
    } finally {
      await older.drop();
    }
  });
});

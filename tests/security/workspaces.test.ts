import { randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../../client/index.ts';
import { appRouter } from '../../server/routers/index.ts';
import { createKeyService } from '../../server/services/keys/keys.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  createTestKeys,
  createTestWorkspace,
  procedureCaller,
  registerTestWorkspaces,
  startTestServer,
  type TestKeys,
  type TestServer,
} from '../support/app.ts';
import { countEventsWithId, storedEvents } from '../support/events.ts';

let testDb: TestDatabase;
let server: TestServer;
let keys: TestKeys;
const workspaceA = randomUUID();
const workspaceB = randomUUID();
let ingestA: string;
let readA: string;
let readB: string;
let eventOfA: string;
let eventOfB: string;

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  await registerTestWorkspaces(testDb.db, workspaceA, workspaceB);
  const keyService = createKeyService({ db: testDb.db });
  ingestA = (await keyService.createKey({ kind: 'ingest', workspaceId: workspaceA })).key;
  readA = (await keyService.createKey({ kind: 'read', workspaceId: workspaceA })).key;
  readB = (await keyService.createKey({ kind: 'read', workspaceId: workspaceB })).key;
  server = await startTestServer(testDb.db);
  eventOfA = (await client(ingestA).telemetry.ingest.mutate({ source: 'web', eventType: 'custom', name: 'a' })).id;
  eventOfB = (await client(keys.ingest).telemetry.ingest.mutate({ workspaceId: workspaceB, source: 'web', eventType: 'custom', name: 'b' })).id;
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

function client(key: string) {
  return createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${key}` } });
}

const statusOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 200,
    (error: { data?: { httpStatus?: number } }) => error.data?.httpStatus,
  );

describe('ingest keys bound to a workspace', () => {
  it('stamp their workspace on events that name none', async () => {
    const { id } = await client(ingestA).telemetry.ingest.mutate({ source: 'web', eventType: 'custom', name: 'stamped' });
    expect((await storedEvents(testDb.db, workspaceA)).some((e) => e.id === id)).toBe(true);
  });

  it('refuse an event naming another workspace with 403 and store nothing there', async () => {
    const other = randomUUID();
    expect(await statusOf(client(ingestA).telemetry.ingest.mutate({ workspaceId: other, source: 'web', eventType: 'custom', name: 'x' }))).toBe(403);
    expect(await storedEvents(testDb.db, other)).toHaveLength(0);
  });

  it('refuse only the foreign events of a mixed batch', async () => {
    const other = randomUUID();
    const result = await client(ingestA).telemetry.ingestBatch.mutate({
      events: [
        { source: 'web', eventType: 'custom', name: 'mine' },
        { workspaceId: other, source: 'web', eventType: 'custom', name: 'theirs' },
        { workspaceId: workspaceA, source: 'web', eventType: 'custom', name: 'mine too' },
      ],
    });
    expect(result.receipts.map((r) => r.status)).toEqual(['accepted', 'rejected', 'accepted']);
    expect(result.receipts[1]).toMatchObject({ code: 'workspace_forbidden', path: 'workspaceId' });
    expect(await storedEvents(testDb.db, other)).toHaveLength(0);
  });

  it('cannot block, read or change another workspace’s event by sending its id: the id makes a separate event in its own workspace', async () => {
    // Another event of B than the one the read tests below look for.
    const { id } = await client(keys.ingest).telemetry.ingest.mutate({ workspaceId: workspaceB, source: 'web', eventType: 'custom', name: 'b again' });
    const before = await storedEvents(testDb.db, workspaceB);
    await client(ingestA).telemetry.ingest.mutate({ id, source: 'web', eventType: 'custom', name: 'same id' });
    expect((await storedEvents(testDb.db, workspaceA)).filter((e) => e.id === id).map((e) => e.name)).toEqual(['same id']);
    expect(await storedEvents(testDb.db, workspaceB)).toEqual(before);
  });
});

describe('read keys bound to a workspace', () => {
  it('read their own events by id', async () => {
    const event = await client(readA).telemetry.events.get.query({ id: eventOfA });
    expect(event).toMatchObject({ id: eventOfA, workspaceId: workspaceA, name: 'a' });
  });

  it('get 404 for another workspace’s event by id, exactly as for a missing id', async () => {
    expect(await statusOf(client(readA).telemetry.events.get.query({ id: eventOfB }))).toBe(404);
    expect(await statusOf(client(readA).telemetry.events.get.query({ id: randomUUID() }))).toBe(404);
  });

  it('get 403 when naming another workspace', async () => {
    expect(await statusOf(client(readA).telemetry.events.get.query({ id: eventOfB, workspaceId: workspaceB }))).toBe(403);
  });

  it('see only their own workspace inside a batched HTTP request of several calls', async () => {
    const readerA = client(readA);
    const [own, foreign, named] = await Promise.allSettled([
      readerA.telemetry.events.get.query({ id: eventOfA }),
      readerA.telemetry.events.get.query({ id: eventOfB }),
      readerA.telemetry.events.get.query({ id: eventOfB, workspaceId: workspaceB }),
    ]);
    expect(own.status === 'fulfilled' && own.value.id).toBe(eventOfA);
    expect(foreign.status === 'rejected' && (foreign.reason as { data?: { httpStatus?: number } }).data?.httpStatus).toBe(404);
    expect(named.status === 'rejected' && (named.reason as { data?: { httpStatus?: number } }).data?.httpStatus).toBe(403);
  });

  it('get the same answers on the plain-JSON face', async () => {
    const get = (id: string, key: string, query = '') => fetch(`${server.url}/api/events/${id}${query}`, { headers: { authorization: `Bearer ${key}` } });
    expect((await get(eventOfA, readA)).status).toBe(200);
    expect((await get(eventOfB, readA)).status).toBe(404);
    expect((await get(eventOfB, readA, `?workspaceId=${workspaceB}`)).status).toBe(403);
    expect((await get(eventOfB, readB)).status).toBe(200);
  });
});

describe('admin keys without a workspace', () => {
  it('must name the workspace to read, and may name any', async () => {
    const admin = client(keys.admin);
    expect(await statusOf(admin.telemetry.events.get.query({ id: eventOfA }))).toBe(400);
    expect((await admin.telemetry.events.get.query({ id: eventOfB, workspaceId: workspaceB })).id).toBe(eventOfB);
    expect(await statusOf(admin.telemetry.events.get.query({ id: eventOfB, workspaceId: workspaceA }))).toBe(404);
  });
});

/**
 * Every procedure must be an ingest, an admin or a workspace-scoped read procedure. A new procedure
 * that is none of these fails here, and every read procedure is checked to refuse another
 * workspace before doing anything.
 */
describe('every procedure is scoped', () => {
  const INGEST = ['telemetry.ingest', 'telemetry.ingestBatch'];
  const procedures = Object.keys(appRouter._def.procedures);
  const reads = procedures.filter((path) => !INGEST.includes(path) && !path.startsWith('admin.'));

  it('has read procedures to check', () => {
    expect(reads.length).toBeGreaterThan(0);
  });

  it.each(reads)('%s refuses a read key naming another workspace with FORBIDDEN', async (path) => {
    const caller = procedureCaller(testDb.db, { apiKey: readA }) as unknown as Record<string, unknown>;
    const procedure = path.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], caller) as (input: unknown) => Promise<unknown>;
    const error = await procedure({ workspaceId: workspaceB }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(TRPCError);
    expect((error as TRPCError).code).toBe('FORBIDDEN');
  });

  it.each(reads)('%s refuses an ingest key with FORBIDDEN', async (path) => {
    const caller = procedureCaller(testDb.db, { apiKey: ingestA }) as unknown as Record<string, unknown>;
    const procedure = path.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], caller) as (input: unknown) => Promise<unknown>;
    const error = await procedure({ workspaceId: workspaceA }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect((error as TRPCError).code).toBe('FORBIDDEN');
  });
});

describe('workspaces on the plain-JSON face', () => {
  const api = (path: string, key: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(`${server.url}/api${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { authorization: `Bearer ${key}`, ...(init.body !== undefined && { 'content-type': 'application/json' }) },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });
  type ErrorBody = { data?: { issues?: { path: string }[]; reason?: string } };

  it('POST /api/admin/workspaces creates one, GET lists it, PATCH /api/admin/workspaces/{id} renames it, a taken name is 409', async () => {
    const name = `Storefront ${randomUUID().slice(0, 8)}`;
    const created = await api('/admin/workspaces', keys.admin, { body: { name } });
    expect(created.status).toBe(200);
    const workspace = (await created.json()) as { id: string; name: string; createdAt: string };
    expect(workspace).toMatchObject({ name });

    const listed = (await (await api('/admin/workspaces', keys.admin)).json()) as { workspaces: { id: string; name: string }[]; truncated: boolean };
    expect(listed.workspaces).toContainEqual(expect.objectContaining({ id: workspace.id, name }));

    const renamed = await api(`/admin/workspaces/${workspace.id}`, keys.admin, { method: 'PATCH', body: { name: `${name} EU` } });
    expect(renamed.status).toBe(200);
    expect(await renamed.json()).toMatchObject({ id: workspace.id, name: `${name} EU` });

    const taken = await api('/admin/workspaces', keys.admin, { body: { name: `${name} eu` } });
    expect(taken.status).toBe(409);
    const unnamed = await api('/admin/workspaces', keys.admin, { body: { name: '' } });
    expect(unnamed.status).toBe(400);
    expect(((await unnamed.json()) as ErrorBody).data?.issues?.[0]?.path).toBe('name');
  });

  it('GET /api/workspace answers a read key its own workspace and an unbound admin the one it names; a read key may not list workspaces', async () => {
    const own = (await (await api('/workspace', readA)).json()) as { id: string; name: string };
    expect(own).toEqual(expect.objectContaining({ id: workspaceA, name: `Test workspace ${workspaceA}` }));
    const named = await api(`/workspace?workspaceId=${workspaceB}`, keys.admin);
    expect(((await named.json()) as { id: string }).id).toBe(workspaceB);
    expect((await api(`/workspace?workspaceId=${randomUUID()}`, keys.admin)).status).toBe(404);
    expect((await api('/admin/workspaces', readA)).status).toBe(403);
  });

  it('POST /api/admin/keys refuses an ingest key with no workspace and no allWorkspaces choice (400 on workspaceId), and an unknown workspace (404)', async () => {
    const neither = await api('/admin/keys', keys.admin, { body: { kind: 'ingest' } });
    expect(neither.status).toBe(400);
    expect(((await neither.json()) as ErrorBody).data?.issues?.[0]?.path).toBe('workspaceId');
    const unknown = await api('/admin/keys', keys.admin, { body: { kind: 'read', workspaceId: randomUUID() } });
    expect(unknown.status).toBe(404);
    const chosen = await api('/admin/keys', keys.admin, { body: { kind: 'ingest', allWorkspaces: true } });
    expect(chosen.status).toBe(200);
  });

  it('POST /api/events with an all-workspaces key refuses an event naming no workspace (400) or an unknown one (404), storing nothing', async () => {
    const noWorkspace = randomUUID();
    const none = await api('/events', keys.ingest, { body: { id: noWorkspace, source: 'web', eventType: 'custom', name: 'x' } });
    expect(none.status).toBe(400);
    expect(((await none.json()) as ErrorBody).data).toMatchObject({ reason: 'workspace_required', issues: [{ path: 'workspaceId' }] });
    const unknownWorkspace = randomUUID();
    const unknown = await api('/events', keys.ingest, {
      body: { id: unknownWorkspace, workspaceId: randomUUID(), source: 'web', eventType: 'custom', name: 'x' },
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as ErrorBody).data).toMatchObject({ reason: 'unknown_workspace', issues: [{ path: 'workspaceId' }] });
    expect(await countEventsWithId(testDb.db, noWorkspace)).toBe(0);
    expect(await countEventsWithId(testDb.db, unknownWorkspace)).toBe(0);

    const workspaceId = await createTestWorkspace(testDb.db);
    const batch = await api('/events/batch', keys.ingest, {
      body: {
        events: [
          { workspaceId, source: 'web', eventType: 'custom', name: 'kept' },
          { source: 'web', eventType: 'custom', name: 'lost' },
        ],
      },
    });
    expect(batch.status).toBe(200);
    expect(await batch.json()).toMatchObject({ accepted: 1, rejected: 1, receipts: [{ status: 'accepted' }, { code: 'workspace_required' }] });
    expect((await storedEvents(testDb.db, workspaceId)).map((e) => e.name)).toEqual(['kept']);
  });
});

import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTelemetryClient } from '../../client/index.ts';
import { createKeyService, hashKeySecret } from '../../server/services/keys/keys.ts';
import { openTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  capturingLogger,
  createTestKeys,
  startTestServer,
  type TestKeys,
  type TestServer,
  createTestWorkspace,
  registerTestWorkspaces,
} from '../support/app.ts';
import { storedEvents } from '../support/events.ts';

let testDb: TestDatabase;
/** A real workspace of its own for a test (events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);
let server: TestServer;
let keys: TestKeys;
const logs = capturingLogger();

beforeAll(async () => {
  testDb = await openTestDatabase();
  await registerTestWorkspaces(testDb.db, sharedWorkspace);
  keys = await createTestKeys(testDb.db);
  server = await startTestServer(testDb.db, { logger: logs.logger });
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

/** Events name this workspace unless a test gives its own. */
const sharedWorkspace = randomUUID();
const event = (workspaceId: string = sharedWorkspace) => ({ workspaceId, source: 'web', eventType: 'custom', name: 'x' });

function ingestRest(authorization: string | undefined, body: unknown = event()) {
  return fetch(`${server.url}/api/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization !== undefined && { authorization }) },
    body: JSON.stringify(body),
  });
}

function clientWith(key: string) {
  return createTelemetryClient({ url: server.url, headers: { authorization: `Bearer ${key}` } });
}

async function adminCreate(body: Record<string, unknown>) {
  const response = await fetch(`${server.url}/api/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.admin}` },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { id: string; key: string; kind: string; workspaceId: string | null };
}

describe('authentication', () => {
  it.each([
    ['no Authorization header', undefined],
    ['an empty Authorization header', ''],
    ['a Basic scheme', 'Basic dXNlcjpwYXNz'],
    ['Bearer without a key', 'Bearer '],
    ['an unknown key', 'Bearer tlm_ingest_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['a key with spaces in it', 'Bearer tlm ingest x'],
    ['a 10 KB key', `Bearer ${'k'.repeat(10_000)}`],
  ])('answers 401 to %s and stores nothing', async (_label, authorization) => {
    const workspaceId = await newWorkspace();
    const response = await ingestRest(authorization, event(workspaceId));
    expect(response.status).toBe(401);
    expect(((await response.json()) as { code: string }).code).toBe('UNAUTHORIZED');
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('answers 401 on the tRPC face too', async () => {
    const error = await createTelemetryClient({ url: server.url })
      .telemetry.ingest.mutate({ source: 'web', eventType: 'custom', name: 'x' })
      .then(
        () => undefined,
        (caught: { data?: { httpStatus?: number } }) => caught,
      );
    expect(error?.data?.httpStatus).toBe(401);
  });

  it('fails a revoked key at once', async () => {
    const created = await adminCreate({ kind: 'ingest', workspaceId: sharedWorkspace, name: 'to revoke' });
    expect((await ingestRest(`Bearer ${created.key}`)).status).toBe(200);
    await clientWith(keys.admin).admin.keys.revoke.mutate({ id: created.id });
    expect((await ingestRest(`Bearer ${created.key}`)).status).toBe(401);
  });

  it('fails a rotated-away key at once, and the new secret keeps kind, workspace and name', async () => {
    const workspaceId = await newWorkspace();
    const created = await adminCreate({ kind: 'ingest', workspaceId, name: 'rotating' });
    const rotated = await clientWith(keys.admin).admin.keys.rotate.mutate({ id: created.id });
    expect(rotated.key).not.toBe(created.key);
    expect(rotated).toMatchObject({ kind: 'ingest', workspaceId });
    expect((await ingestRest(`Bearer ${created.key}`)).status).toBe(401);
    expect((await ingestRest(`Bearer ${rotated.key}`, event(workspaceId))).status).toBe(200);
    const listed = await clientWith(keys.admin).admin.keys.list.query();
    expect(listed.find((k) => k.id === rotated.id)).toMatchObject({ name: 'rotating', revokedAt: null });
    expect(listed.find((k) => k.id === created.id)?.revokedAt).toBeInstanceOf(Date);
  });
});

describe('key storage and listing', () => {
  it('creates keys with a readable kind prefix and at least 128 random bits, stored only as a hash', async () => {
    const created = await adminCreate({ kind: 'read', workspaceId: await newWorkspace() });
    expect(created.key).toMatch(/^tlm_read_[A-Za-z0-9_-]{43}$/);
    const rows = await testDb.db.rows<Record<string, unknown>>(sql`select * from telemetry.api_keys where id = ${created.id}`);
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(created.key);
    expect(stored).toContain(hashKeySecret(created.key));
  });

  it('lists keys without their secrets or hashes', async () => {
    const created = await adminCreate({ kind: 'ingest', allWorkspaces: true });
    const response = await fetch(`${server.url}/api/admin/keys`, { headers: { authorization: `Bearer ${keys.admin}` } });
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).toContain(created.id);
    expect(text).not.toContain(created.key);
    expect(text).not.toContain(hashKeySecret(created.key));
    expect(text).not.toContain(keys.admin);
  });

  it('refuses a read key without a workspace', async () => {
    const error = await clientWith(keys.admin)
      .admin.keys.create.mutate({ kind: 'read' })
      .then(
        () => undefined,
        (caught: { data?: { httpStatus?: number; issues?: { path: string }[] } }) => caught,
      );
    expect(error?.data?.httpStatus).toBe(400);
    expect(error?.data?.issues?.[0]?.path).toBe('workspaceId');
  });

  it('never writes a key into the logs', async () => {
    const created = await adminCreate({ kind: 'ingest', allWorkspaces: true });
    await ingestRest(`Bearer ${created.key}`);
    await ingestRest(`Bearer ${created.key}`, { nonsense: true });
    await ingestRest(`Bearer ${created.key}x`);
    const all = logs.lines.map((line) => line.line).join('\n');
    expect(all).not.toContain(created.key);
    expect(all).not.toContain(keys.admin);
  });
});

describe('key kinds', () => {
  it('answers 403 to an ingest key on a read procedure and on an admin procedure', async () => {
    const client = clientWith(keys.ingest);
    const read = await client.telemetry.events.get.query({ id: randomUUID(), workspaceId: randomUUID() }).then(
      () => undefined,
      (caught: { data?: { httpStatus?: number } }) => caught,
    );
    expect(read?.data?.httpStatus).toBe(403);
    const admin = await client.admin.keys.list.query().then(
      () => undefined,
      (caught: { data?: { httpStatus?: number } }) => caught,
    );
    expect(admin?.data?.httpStatus).toBe(403);
  });

  it('answers 403 to a read key on ingest and on admin procedures, and stores nothing', async () => {
    const workspaceId = await newWorkspace();
    const read = await adminCreate({ kind: 'read', workspaceId });
    expect((await ingestRest(`Bearer ${read.key}`, event(workspaceId))).status).toBe(403);
    const admin = await fetch(`${server.url}/api/admin/keys`, { headers: { authorization: `Bearer ${read.key}` } });
    expect(admin.status).toBe(403);
    expect(await storedEvents(testDb.db, workspaceId)).toHaveLength(0);
  });

  it('lets a workspace-bound admin key manage only keys of its workspace', async () => {
    const workspaceId = await newWorkspace();
    const boundAdmin = await adminCreate({ kind: 'admin', workspaceId });
    const outsider = await adminCreate({ kind: 'ingest', workspaceId: await newWorkspace() });
    const client = clientWith(boundAdmin.key);
    const own = await client.admin.keys.create.mutate({ kind: 'ingest' });
    expect(own.workspaceId).toBe(workspaceId);
    const listed = await client.admin.keys.list.query();
    expect(listed.every((k) => k.workspaceId === workspaceId)).toBe(true);
    const revokeOther = await client.admin.keys.revoke.mutate({ id: outsider.id }).then(
      () => undefined,
      (caught: { data?: { httpStatus?: number } }) => caught,
    );
    expect(revokeOther?.data?.httpStatus).toBe(403);
    expect((await ingestRest(`Bearer ${outsider.key}`, event(outsider.workspaceId ?? undefined))).status).toBe(200);
  });
});

describe('bootstrap admin key', () => {
  it('registers TELEMETRY_ADMIN_KEY once, however often the service starts', async () => {
    const service = createKeyService({ db: testDb.db });
    const secret = `my-own-admin-key-${randomUUID()}`;
    expect(await service.ensureAdminKey(secret)).toEqual({});
    expect(await service.ensureAdminKey(secret)).toEqual({});
    expect((await service.authenticate(secret))?.kind).toBe('admin');
    const rows = await testDb.db.rows<{ count: number }>(
      sql`select count(*)::int as count from telemetry.api_keys where secret_hash = ${hashKeySecret(secret)}`,
    );
    expect(Number(rows[0]?.count)).toBe(1);
  });

  it('generates an admin key when none exists, and only then', async () => {
    const fresh = await openTestDatabase();
    try {
      const service = createKeyService({ db: fresh.db });
      const first = await service.ensureAdminKey(undefined);
      expect(first.generated).toMatch(/^tlm_admin_/);
      expect((await service.authenticate(first.generated!))?.kind).toBe('admin');
      expect(await service.ensureAdminKey(undefined)).toEqual({});
    } finally {
      await fresh.drop();
    }
  });
});

describe('admin key verbs under a scope', () => {
  it('revoke and rotate act on keys of the scope only, in the statement that acts: another workspace is 403, a missing or revoked key 404', async () => {
    const service = createKeyService({ db: testDb.db });
    const scope = await newWorkspace();
    const own = await service.createKey({ kind: 'ingest' }, scope);
    const other = await service.createKey({ kind: 'ingest', workspaceId: await newWorkspace() });
    expect(own.workspaceId).toBe(scope);

    await expect(service.revokeKey(other.id, scope)).rejects.toMatchObject({ code: 'forbidden' });
    await expect(service.rotateKey(other.id, scope)).rejects.toMatchObject({ code: 'forbidden' });
    expect(await service.authenticate(other.key)).toMatchObject({ id: other.id });
    await expect(service.revokeKey(randomUUID(), scope)).rejects.toMatchObject({ code: 'not_found' });

    // Two rotations of one key at once: one revokes it and issues the successor, the other finds nothing to rotate.
    const outcomes = await Promise.allSettled([service.rotateKey(own.id, scope), service.rotateKey(own.id, scope)]);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.find((outcome) => outcome.status === 'rejected')).toMatchObject({ reason: { code: 'not_found' } });
    await expect(service.revokeKey(own.id, scope)).rejects.toMatchObject({ code: 'not_found' });
    expect(await service.authenticate(own.key)).toBeUndefined();

    expect((await service.revokeKey(other.id, null)).id).toBe(other.id);
  });

  it('list answers the keys of the scope only, and create refuses a key for another workspace', async () => {
    const service = createKeyService({ db: testDb.db });
    const scope = await newWorkspace();
    await service.createKey({ kind: 'read' }, scope);
    await service.createKey({ kind: 'read', workspaceId: await newWorkspace() });
    const listed = await service.listKeys(scope);
    expect(listed).toHaveLength(1);
    expect(listed[0]?.workspaceId).toBe(scope);
    await expect(service.createKey({ kind: 'read', workspaceId: await newWorkspace() }, scope)).rejects.toMatchObject({ code: 'forbidden' });
    expect((await service.listKeys(null)).length).toBeGreaterThan(1);
  });
});

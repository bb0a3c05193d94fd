import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildService, type ChildService } from '../support/child-service.ts';
import { createPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { createWorkspaceOver } from './support/workspaces.ts';
import { waitUntil } from './support/wait.ts';

/** A primary and a hot standby streaming from it, with the service reading from the standby. */
let primary: PgCluster;
let standby: PgCluster;
let service: ChildService;
const adminKey = `fault-admin-${randomBytes(16).toString('hex')}`;

beforeAll(async () => {
  primary = await createPgCluster();
  // The service migrates the primary first; the standby then copies it.
  const migrating = await startChildService({ TELEMETRY_ADMIN_KEY: adminKey, DATABASE_URL: primary.url, LOG_LEVEL: 'warn' });
  migrating.process.kill('SIGTERM');
  await migrating.exited;
  standby = await createPgCluster({ primary });
  service = await startChildService({
    TELEMETRY_ADMIN_KEY: adminKey,
    DATABASE_URL: primary.url,
    DATABASE_READ_URL: standby.url,
    LOG_LEVEL: 'warn',
  });
});
afterAll(async () => {
  service?.process.kill('SIGKILL');
  await standby?.destroy();
  await primary?.destroy();
});

async function call(path: string, body: unknown): Promise<Response> {
  return fetch(`${service.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
    body: JSON.stringify(body),
  });
}

async function getEvent(id: string, workspaceId: string): Promise<number> {
  const response = await fetch(`${service.url}/api/events/${id}?workspaceId=${workspaceId}`, { headers: { authorization: `Bearer ${adminKey}` } });
  await response.body?.cancel();
  return response.status;
}

async function onStandby<T>(work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(standby.url, { max: 1, onnotice: () => {} });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

describe('reads from a streaming replica (DATABASE_READ_URL)', () => {
  it('writes to the primary and reads from the standby, which serves what it has replayed', async () => {
    const workspaceId = await createWorkspaceOver(service.url, adminKey);
    const first = (await (await call('/api/events', { workspaceId, source: 'backend', eventType: 'probe', name: 'replicated' })).json()) as { id: string };
    await waitUntil(async () => (await getEvent(first.id, workspaceId)) === 200, 'the event to reach the standby', 10_000);

    // With replay paused on the standby, a new event is committed on the primary but not readable.
    await onStandby((sql) => sql`select pg_wal_replay_pause()`);
    const second = (await (await call('/api/events', { workspaceId, source: 'backend', eventType: 'probe', name: 'not-yet' })).json()) as { id: string };
    expect(second.id).toBeTruthy();
    const onPrimary = postgres(primary.url, { max: 1, onnotice: () => {} });
    const [stored] = await onPrimary<{ count: number }[]>`select count(*)::int as count from telemetry.events where id = ${second.id}`;
    const [primaryAt] = await onPrimary<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
    await onPrimary.end({ timeout: 1 });
    expect(stored!.count).toBe(1);
    // The standby has received the commit (but not replayed it): the 404 is the paused replay.
    await waitUntil(
      () => onStandby(async (sql) => (await sql`select pg_last_wal_receive_lsn() >= ${primaryAt!.lsn}::pg_lsn as received`)[0]?.['received'] === true),
      'the standby to receive the commit',
      10_000,
    );
    expect(await getEvent(second.id, workspaceId)).toBe(404);

    await onStandby((sql) => sql`select pg_wal_replay_resume()`);
    await waitUntil(async () => (await getEvent(second.id, workspaceId)) === 200, 'the event after replay resumes', 10_000);
  });

  it('reads from the primary while the standby is down, and from the standby again once it is back', async () => {
    const workspaceId = await createWorkspaceOver(service.url, adminKey);
    const event = (await (await call('/api/events', { workspaceId, source: 'backend', eventType: 'probe', name: 'fallback' })).json()) as { id: string };
    await waitUntil(async () => (await getEvent(event.id, workspaceId)) === 200, 'the event to reach the standby', 10_000);
    await standby.stop('fast');
    expect(await getEvent(event.id, workspaceId)).toBe(200);
    const list = await call('/api/events/list', { workspaceId, limit: 10 });
    expect(list.status).toBe(200);
    await standby.start();
    await waitUntil(
      async () => onStandby(async (sql) => (await sql`select pg_is_in_recovery() as standby`)[0]?.['standby'] === true),
      'the standby to run again',
      20_000,
    );
    // With replay paused on the standby, an event reads as 404 there and 200 on the primary: once
    // the bypass window (5 s) is over, reads use the standby again.
    await onStandby((sql) => sql`select pg_wal_replay_pause()`);
    const unseen = (await (await call('/api/events', { workspaceId, source: 'backend', eventType: 'probe', name: 'unseen' })).json()) as { id: string };
    await waitUntil(async () => (await getEvent(unseen.id, workspaceId)) === 404, 'reads to use the standby again', 15_000);
    await onStandby((sql) => sql`select pg_wal_replay_resume()`);
  });
});

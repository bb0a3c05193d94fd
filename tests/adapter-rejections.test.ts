import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_KEPT_REJECTIONS } from '../server/services/rejections/schemas.ts';
import type { Services } from '../server/trpc/context.ts';
import { createWorkspaceWithIngestAndReadKeys, openAdapterApp, type AdapterApp } from './support/adapters.ts';
import { procedureCaller, testConfig } from './support/app.ts';
import type { TestDatabase } from './support/database.ts';

const config = testConfig();

let testDb: TestDatabase;
let app: AdapterApp['app'];
let services: Services;

beforeAll(async () => {
  ({ testDb, app, services } = await openAdapterApp(config));
});
afterAll(async () => {
  await testDb.drop();
});

const workspaceWithKeys = () => createWorkspaceWithIngestAndReadKeys(testDb.db);

const nanosAgo = (ms: number) => (BigInt(Date.now() - ms) * 1_000_000n).toString();

function otlpLogs(key: string, logRecords: unknown[]) {
  return app.request('/v1/logs', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ resourceLogs: [{ scopeLogs: [{ scope: { name: 'orders' }, logRecords }] }] }),
  });
}

describe('records refused by an ingest adapter', () => {
  it('are counted per reason and kept with their message, path and request id for the workspace to read', async () => {
    const { ingestKey, readKey } = await workspaceWithKeys();
    const response = await otlpLogs(ingestKey, [
      { timeUnixNano: nanosAgo(1_000), body: { stringValue: 'fine' } },
      { timeUnixNano: '1000000000', body: { stringValue: 'from 1970' } },
    ]);
    expect(response.status).toBe(200);
    const malformed = await app.request('/v1/logs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}`, 'x-request-id': 'bad-export-1' },
      body: '{"resourceLogs": [',
    });
    expect(malformed.status).toBe(400);

    const answer = await procedureCaller(testDb.db, { apiKey: readKey, services, config }).telemetry.adapterRejections({});
    expect(answer.counts).toEqual(
      expect.arrayContaining([
        { adapter: 'otlp', reason: 'created_at_out_of_range', refused: 1, lastAt: expect.any(Date) },
        { adapter: 'otlp', reason: 'malformed_request', refused: 1, lastAt: expect.any(Date) },
      ]),
    );
    expect(answer.counts).toHaveLength(2);
    expect(answer.recent).toEqual([
      expect.objectContaining({ adapter: 'otlp', reason: 'malformed_request', path: '', recordIndex: null, requestId: 'bad-export-1' }),
      expect.objectContaining({
        adapter: 'otlp',
        reason: 'created_at_out_of_range',
        path: 'createdAt',
        recordIndex: 1,
        message: expect.stringMatching(/in the past/),
      }),
    ]);
  });

  it('are readable on /api and counted on /metrics by adapter and reason', async () => {
    const { ingestKey, readKey } = await workspaceWithKeys();
    await otlpLogs(ingestKey, [{ timeUnixNano: '1000000000', body: { stringValue: 'from 1970' } }]);

    const api = await app.request('/api/adapter-rejections?limit=5', { headers: { authorization: `Bearer ${readKey}` } });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { counts: unknown[]; recent: Array<{ reason: string; recordIndex: number }> };
    expect(body.counts).toEqual([expect.objectContaining({ adapter: 'otlp', reason: 'created_at_out_of_range', refused: 1 })]);
    expect(body.recent).toEqual([expect.objectContaining({ reason: 'created_at_out_of_range', recordIndex: 0 })]);

    const metrics = await (await app.request('/metrics')).text();
    expect(metrics).toMatch(/telemetry_adapter_rejected_events_total\{adapter="otlp",reason="created_at_out_of_range"\} [1-9]/);
  });

  it("are not shown to another workspace's keys", async () => {
    const first = await workspaceWithKeys();
    const second = await workspaceWithKeys();
    await otlpLogs(first.ingestKey, [{ timeUnixNano: '1000000000', body: { stringValue: 'from 1970' } }]);

    const theirs = await procedureCaller(testDb.db, { apiKey: second.readKey, services, config }).telemetry.adapterRejections({});
    expect(theirs).toEqual({ counts: [], recent: [] });
    await expect(
      procedureCaller(testDb.db, { apiKey: second.readKey, services, config }).telemetry.adapterRejections({ workspaceId: first.workspaceId }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('keep every refusal counted but only the newest samples, a few per request and the last hundred per workspace', async () => {
    const { workspaceId, readKey } = await workspaceWithKeys();
    const refusal = (recordIndex: number) => ({ reason: 'invalid_event' as const, message: `record ${recordIndex} is bad`, path: 'name', recordIndex });
    // One request refusing a thousand records keeps ten of them to read...
    services.adapterRejections.report({ workspaceId, adapter: 'segment', requestId: 'big', refusals: Array.from({ length: 1000 }, (_, i) => refusal(i)) });
    // ...and many requests keep the newest hundred.
    for (let request = 0; request < 30; request += 1) {
      services.adapterRejections.report({
        workspaceId,
        adapter: 'posthog',
        requestId: `small-${request}`,
        refusals: [refusal(0), refusal(1), refusal(2), refusal(3), refusal(4)],
      });
      if (request % 7 === 0) await services.adapterRejections.flush();
    }

    const answer = await procedureCaller(testDb.db, { apiKey: readKey, services, config }).telemetry.adapterRejections({ limit: MAX_KEPT_REJECTIONS });
    expect(answer.counts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ adapter: 'segment', reason: 'invalid_event', refused: 1000 }),
        expect.objectContaining({ adapter: 'posthog', reason: 'invalid_event', refused: 150 }),
      ]),
    );
    expect(answer.recent).toHaveLength(MAX_KEPT_REJECTIONS);
    expect(answer.recent[0]).toMatchObject({ adapter: 'posthog', requestId: 'small-29', recordIndex: 4 });
    expect(answer.recent.every((rejection) => rejection.adapter === 'posthog')).toBe(true);
    const rows = await testDb.db.rows<{ kept: number }>(
      sql`select count(*)::int as kept from telemetry.adapter_rejections where workspace_id = ${workspaceId}`,
    );
    expect(rows[0]?.kept).toBe(MAX_KEPT_REJECTIONS);
  });

  it('clip long messages and paths so one refusal cannot make the record large', async () => {
    const { workspaceId, readKey } = await workspaceWithKeys();
    services.adapterRejections.report({
      workspaceId,
      adapter: 'segment',
      requestId: null,
      refusals: [{ reason: 'invalid_event', message: 'x'.repeat(100_000), path: 'p.'.repeat(10_000), recordIndex: 3 }],
    });
    const [kept] = (await procedureCaller(testDb.db, { apiKey: readKey, services, config }).telemetry.adapterRejections({})).recent;
    expect(kept?.message.length).toBeLessThanOrEqual(500);
    expect(kept?.path.length).toBeLessThanOrEqual(200);
  });

  it('refuse a limit above what is kept, naming the field', async () => {
    const { readKey } = await workspaceWithKeys();
    await expect(
      procedureCaller(testDb.db, { apiKey: readKey, services, config }).telemetry.adapterRejections({ limit: MAX_KEPT_REJECTIONS + 1 }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { summarizeZodIssues } from '../server/trpc/errors.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, createTestWorkspace, startTestServer, type TestKeys, type TestServer } from './support/app.ts';

/**
 * What a caller reads in a 400, on both faces: each issue once, with its field path, in words. The
 * same bad input goes to /trpc (as the typed client sends it) and to /api; both must name the
 * same issues, and neither may show a regular expression the service validates with.
 */

let testDb: TestDatabase;
let server: TestServer;
let keys: TestKeys;
let workspaceId: string;

beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  workspaceId = await createTestWorkspace(testDb.db);
  server = await startTestServer(testDb.db);
});
afterAll(async () => {
  await server?.close();
  await testDb?.drop();
});

interface Issue {
  path: string;
  message: string;
}
interface Refusal {
  status: number;
  /** The whole body as sent, to look for what must never be in it. */
  text: string;
  body: Record<string, unknown>;
  issues: Issue[];
}

/** A procedure on the tRPC face: queries in the query string, mutations as a body, as the typed client sends them. */
async function viaTrpc(procedure: string, kind: 'query' | 'mutation', input: unknown): Promise<Refusal> {
  const encoded = JSON.stringify({ json: input });
  const response =
    kind === 'query'
      ? await fetch(`${server.url}/trpc/${procedure}?input=${encodeURIComponent(encoded)}`, { headers: { authorization: `Bearer ${keys.admin}` } })
      : await fetch(`${server.url}/trpc/${procedure}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.admin}` },
          body: encoded,
        });
  const text = await response.text();
  const body = JSON.parse(text) as { error: { json: { data: { issues?: Issue[] } } } };
  return { status: response.status, text, body, issues: body.error.json.data.issues ?? [] };
}

async function viaApi(path: string, input: unknown): Promise<Refusal> {
  const response = await fetch(`${server.url}/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.admin}` },
    body: JSON.stringify(input),
  });
  const text = await response.text();
  const body = JSON.parse(text) as { data: { issues?: Issue[] } };
  return { status: response.status, text, body, issues: body.data.issues ?? [] };
}

/** Text of a regular expression as Zod quotes it (`/^...$/`), or a character class: never for a caller. */
const REGEX_SOURCE = /\/\^|\$\/|\[[a-z0-9]-[a-z0-9]/i;

function expectReadableOnce(refusal: Refusal): void {
  expect(refusal.status).toBe(400);
  const keysOfIssues = refusal.issues.map((issue) => `${issue.path}: ${issue.message}`);
  expect(new Set(keysOfIssues).size).toBe(keysOfIssues.length);
  expect(refusal.text).not.toMatch(REGEX_SOURCE);
  expect(refusal.text).not.toContain('must match pattern');
}

const cases: { name: string; trpc: [string, 'query' | 'mutation']; api: string; input: () => Record<string, unknown>; issues: Issue[] }[] = [
  {
    name: 'an event with a bad source, event type and an empty name',
    trpc: ['telemetry.ingest', 'mutation'],
    api: '/events',
    input: () => ({ source: 'fridge', eventType: 'Page View!', name: '' }),
    issues: [
      { path: 'source', message: 'Invalid option: expected one of "web"|"mobile"|"backend"|"cli"|"extension"' },
      { path: 'eventType', message: 'Must be a dotted lower-case identifier such as "ui.interaction"' },
      { path: 'name', message: 'Must not be empty' },
    ],
  },
  {
    name: 'a metric whose value is text and whose unit is missing',
    trpc: ['telemetry.ingest', 'mutation'],
    api: '/events',
    input: () => ({ source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: 'fast' } }),
    issues: [
      { path: 'metadata.value', message: 'Invalid input: expected number, received string' },
      { path: 'metadata.unit', message: 'Invalid input: expected string, received undefined' },
    ],
  },
  {
    name: 'a listing with a user id that is no UUID, a time that is no ISO 8601 time and a limit of 0',
    trpc: ['telemetry.events.list', 'query'],
    api: '/events/list',
    input: () => ({ workspaceId, userId: 'alice', from: 'yesterday', limit: 0 }),
    issues: [
      { path: 'userId', message: 'Expected a UUID, e.g. 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61' },
      { path: 'from', message: 'Expected an ISO 8601 date and time with a zone offset, e.g. 2026-11-30T09:30:00Z' },
      { path: 'limit', message: 'Too small: expected number to be >=1' },
    ],
  },
  {
    name: 'a time sent as a number, which fits neither form of a time',
    trpc: ['telemetry.stats.top', 'query'],
    api: '/stats/top',
    input: () => ({ workspaceId, from: 1_764_460_800_000, to: '2026-12-01T00:00:00Z', by: 'name' }),
    issues: [{ path: 'from', message: 'Invalid input: expected date or string, received number' }],
  },
  {
    name: 'a statistic whose start is no time, beside a valid end',
    trpc: ['telemetry.stats.timeseries', 'query'],
    api: '/stats/timeseries',
    input: () => ({ workspaceId, from: 'last monday', to: '2026-12-01T00:00:00Z', bucket: 'day' }),
    issues: [{ path: 'from', message: 'Expected an ISO 8601 date and time with a zone offset, e.g. 2026-11-30T09:30:00Z' }],
  },
  {
    name: 'percentiles of a field that is no dotted path, over a range missing its end',
    trpc: ['telemetry.stats.percentiles', 'query'],
    api: '/stats/percentiles',
    input: () => ({ workspaceId, from: '2026-11-01T00:00:00Z', field: '9lives' }),
    issues: [
      { path: 'field', message: 'A dotted path of metadata keys, e.g. value or timing.ttfb' },
      { path: 'to', message: 'Required: "to", or a relative "range" such as "24h" instead of "from" and "to"' },
    ],
  },
];

describe('a 400 for invalid input', () => {
  it.each(cases)('for $name lists each issue once with its path, the same on /trpc and /api', async ({ trpc, api, input, issues }) => {
    const [trpcAnswer, apiAnswer] = [await viaTrpc(trpc[0], trpc[1], input()), await viaApi(api, input())];
    expectReadableOnce(trpcAnswer);
    expectReadableOnce(apiAnswer);
    expect(trpcAnswer.issues).toEqual(issues);
    expect(apiAnswer.issues).toEqual(issues);
  });

  it("on /api lists the issues in data.issues only, not again as Zod's raw issues beside them", async () => {
    const answer = await viaApi('/events', { source: 'web', eventType: 'Not.Valid', name: 'x' });
    expectReadableOnce(answer);
    expect(answer.body).not.toHaveProperty('issues');
    expect(answer.body).toMatchObject({ message: 'Input validation failed', code: 'BAD_REQUEST', data: { httpStatus: 400 } });
    expect(answer.issues).toEqual([{ path: 'eventType', message: 'Must be a dotted lower-case identifier such as "ui.interaction"' }]);
    expect(answer.text.match(/Must be a dotted lower-case identifier/g)).toHaveLength(1);
  });

  it('on /trpc names the first issue and its path in the message', async () => {
    const answer = await viaTrpc('telemetry.ingest', 'mutation', { source: 'web', eventType: 'ui.interaction', name: '' });
    expectReadableOnce(answer);
    expect(answer.body).toMatchObject({ error: { json: { message: 'Invalid input at "name": Must not be empty' } } });
  });

  it('in a batch keeps the index of the event in the path', async () => {
    const input = { events: 'not a list' };
    const [trpcAnswer, apiAnswer] = [await viaTrpc('telemetry.ingestBatch', 'mutation', input), await viaApi('/events/batch', input)];
    for (const answer of [trpcAnswer, apiAnswer]) {
      expectReadableOnce(answer);
      expect(answer.issues).toEqual([{ path: 'events', message: 'Invalid input: expected array, received string' }]);
    }
  });
});

describe('summarizing Zod issues', () => {
  it('lists an issue reported twice once, and words a pattern without quoting it', () => {
    const schema = z.object({ code: z.string().regex(/^[A-Z]{3}$/) }).superRefine((_value, ctx) => {
      // Two validators reaching the same verdict on the same field.
      ctx.addIssue({ code: 'custom', path: ['code'], message: 'Unknown code' });
      ctx.addIssue({ code: 'custom', path: ['code'], message: 'Unknown code' });
    });
    const result = schema.safeParse({ code: 'abc' });
    expect(result.success).toBe(false);
    expect(summarizeZodIssues(result.error!)).toEqual([
      { path: 'code', message: 'Not in the expected format' },
      { path: 'code', message: 'Unknown code' },
    ]);
  });

  it("follows the one branch of a union that took the value's type, with its path", () => {
    const schema = z.object({ target: z.union([z.string(), z.object({ id: z.uuid() })]) });
    const result = schema.safeParse({ target: { id: 'nope' } });
    expect(summarizeZodIssues(result.error!)).toEqual([{ path: 'target.id', message: 'Expected a UUID, e.g. 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61' }]);
  });
});

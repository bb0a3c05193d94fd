import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_IDS, OPERATION_EXAMPLES, documentOperations } from '../server/openapi-examples.ts';
import type { ServiceLifecycle } from '../server/services/index.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, startTestServer, testConfig, testWiring, type TestServer } from './support/app.ts';

/**
 * Every operation of the served OpenAPI document carries an example that its /api route accepts:
 * what /docs prefills in "try it" works the first time. The example ids name nothing in a new
 * service, so each is replaced with one made here first (a workspace, an event, a key, an erasure
 * request), as a reader replaces them with their own. The examples are sent with an admin key
 * bound to that workspace (reads and events then need no workspaceId), and the operations only an
 * unbound admin may call with the unbound one.
 */
const UNBOUND_ADMIN_ONLY = new Set([
  'POST /admin/workspaces',
  'POST /admin/workspace-limits',
  'POST /admin/workspace-limits/{workspaceId}/clear',
  'POST /admin/retention/run',
]);

interface DocumentParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  example?: unknown;
}
interface DocumentOperation {
  parameters?: DocumentParameter[];
  requestBody?: { required?: boolean; content?: Record<string, { example?: unknown }> };
}
interface ServedDocument {
  paths: Record<string, Record<string, DocumentOperation> & { servers?: { url: string }[] }>;
}

/** The ingest adapters' routes: at the service's root (their path item names it as server), with examples of their own. */
const servedAtRoot = (document: ServedDocument, path: string) => document.paths[path]?.servers?.some((server) => server.url === '/') ?? false;

/** The value with every example id replaced by the real one. */
function substitute(value: unknown, ids: Record<string, string>): unknown {
  if (typeof value === 'string') return ids[value] ?? value;
  if (Array.isArray(value)) return value.map((item) => substitute(item, ids));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substitute(item, ids)]));
  return value;
}

describe('OpenAPI examples', () => {
  let testDb: TestDatabase;
  let server: TestServer;
  let lifecycle: ServiceLifecycle;
  let adminKey: string;
  let boundAdminKey: string;
  let document: ServedDocument;

  const api = async (method: string, path: string, body?: unknown, key = adminKey, base = '/api') => {
    const response = await fetch(`${server.url}${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  const created = async (method: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
    const answer = await api(method, path, body);
    if (answer.status !== 200) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.json)}`);
    return answer.json;
  };

  beforeAll(async () => {
    testDb = await openTestDatabase();
    const config = testConfig();
    const wiring = testWiring(testDb.db, { config });
    lifecycle = wiring.lifecycle;
    server = await startTestServer(testDb.db, { config, services: wiring.services });
    adminKey = (await createTestKeys(testDb.db)).admin;
    document = (await (await fetch(`${server.url}/openapi.json`)).json()) as ServedDocument;
  });

  afterAll(async () => {
    await server?.close();
    await lifecycle?.close();
    await testDb?.drop();
  });

  it('has an example for every operation, every parameter and every JSON body of the served document', () => {
    const operations = documentOperations(document as Parameters<typeof documentOperations>[0]);
    expect(operations.length).toBeGreaterThan(20);
    const missing: string[] = [];
    for (const { key, method, path } of operations) {
      if (!OPERATION_EXAMPLES[key] && !servedAtRoot(document, path)) missing.push(`${key}: no example`);
      const operation = document.paths[path]![method.toLowerCase()]!;
      for (const parameter of operation.parameters ?? []) {
        if (parameter.required && parameter.example === undefined) missing.push(`${key}: parameter ${parameter.name}`);
      }
      const json = operation.requestBody?.content?.['application/json'];
      if (json && json.example === undefined) missing.push(`${key}: body`);
    }
    expect(missing).toEqual([]);
    // No example for an operation the document no longer has.
    expect(Object.keys(OPERATION_EXAMPLES).filter((key) => !operations.some((operation) => operation.key === key))).toEqual([]);
  });

  it("answers every operation's example with a 2xx when sent with an admin key, the ingest adapters' at the service's root", async () => {
    const workspace = await created('POST', '/admin/workspaces', { name: 'Examples' });
    const workspaceId = String(workspace['id']);
    boundAdminKey = String((await created('POST', '/admin/keys', { kind: 'admin', workspaceId }))['key']);
    const event = await created('POST', '/events', { workspaceId, source: 'web', eventType: 'custom', name: 'examples.seed' });
    const erasure = await created('POST', '/admin/erasure', { workspaceId, userId: EXAMPLE_IDS.user });
    const ids: Record<string, string> = {
      [EXAMPLE_IDS.workspace]: workspaceId,
      [EXAMPLE_IDS.event]: String(event['id']),
      [EXAMPLE_IDS.erasureRequest]: String(erasure['requestId'] ?? erasure['id']),
    };

    const refused: string[] = [];
    for (const { key, method, path } of documentOperations(document as Parameters<typeof documentOperations>[0])) {
      const operation = document.paths[path]![method.toLowerCase()]!;
      // A key revoked or rotated by one example is gone for the next: each gets a fresh one.
      const exampleKey = await created('POST', '/admin/keys', { kind: 'read', workspaceId });
      const operationIds = { ...ids, [EXAMPLE_IDS.key]: String(exampleKey['id']) };
      let url = path;
      const query = new URLSearchParams();
      for (const parameter of operation.parameters ?? []) {
        if (parameter.example === undefined) continue;
        const value = String(substitute(parameter.example, operationIds));
        if (parameter.in === 'path') url = url.replace(`{${parameter.name}}`, encodeURIComponent(value));
        else if (parameter.in === 'query') query.set(parameter.name, value);
      }
      const body = operation.requestBody?.content?.['application/json']?.example;
      const answer = await api(
        method,
        `${url}${query.size ? `?${query}` : ''}`,
        body === undefined ? undefined : substitute(body, operationIds),
        UNBOUND_ADMIN_ONLY.has(key) ? adminKey : boundAdminKey,
        servedAtRoot(document, path) ? '' : '/api',
      );
      if (answer.status < 200 || answer.status > 299) refused.push(`${key}: ${answer.status} ${JSON.stringify(answer.json).slice(0, 400)}`);
      // A batch is answered 200 with a receipt per event: each must be accepted.
      const receipts = Array.isArray(answer.json['receipts']) ? (answer.json['receipts'] as { status: string }[]) : [];
      for (const receipt of receipts) if (receipt.status !== 'accepted') refused.push(`${key}: receipt ${JSON.stringify(receipt)}`);
      // An OTLP export is answered 200 with partialSuccess when some of its records were refused.
      if (answer.json['partialSuccess']) refused.push(`${key}: ${JSON.stringify(answer.json['partialSuccess'])}`);
    }
    expect(refused).toEqual([]);
  });
});

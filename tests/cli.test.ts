import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, runCli } from '../cli/run.ts';
import { ExitCode } from '../cli/exit-codes.ts';
import type { CliIo } from '../cli/io.ts';
import { createTelemetryClient, type EventInput, type TelemetryClient } from '../client/index.ts';
import { uuidv7 } from '../client/uuid7.ts';
import type { Services } from '../server/trpc/context.ts';
import type { ServiceLifecycle } from '../server/services/index.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';
import { createTestKeys, createTestWorkspace, startTestServer, testConfig, type TestKeys, type TestServer, testWiring } from './support/app.ts';

const BIN = fileURLToPath(new URL('../bin/telemetry.mjs', import.meta.url));

// One database, server and set of keys for the whole file: every child process costs about half
// a second, so tests share the server and keep apart by workspace instead.
let testDb: TestDatabase;
let keys: TestKeys;
let services: Services;
let lifecycle: ServiceLifecycle | undefined;
let server: TestServer;
let ingest: TelemetryClient;
beforeAll(async () => {
  testDb = await openTestDatabase();
  keys = await createTestKeys(testDb.db);
  const config = testConfig();
  ({ services, lifecycle } = testWiring(testDb.db, { config }));
  server = await startTestServer(testDb.db, { config, services });
  ingest = createTelemetryClient({ url: server.url, apiKey: keys.ingest });
});
afterAll(async () => {
  lifecycle?.endLiveStreams();
  await server?.close();
  await lifecycle?.close();
  await testDb?.drop();
});

/** Each test writes into a workspace of its own (a real one: events must name an existing workspace). */
const newWorkspace = () => createTestWorkspace(testDb.db);

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/telemetry.mjs ...args` against the test server, as a user would. */
function telemetry(args: string[], options: { key?: string | null; input?: string } = {}): Promise<CliResult> {
  const { TELEMETRY_KEY: _key, TELEMETRY_URL: _url, ...env } = process.env;
  const key = options.key === undefined ? keys.admin : options.key;
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...env, TELEMETRY_URL: server.url, ...(key !== null && { TELEMETRY_KEY: key }) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function ndjson(values: readonly object[]): string {
  return values.map((value) => `${JSON.stringify(value)}\n`).join('');
}

function jsonLines<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

interface EventRow {
  id: string;
  name: string;
  source: string;
  event_type: string;
  user_id: string | null;
  metadata: unknown;
}

function storedEvents(workspaceId: string): Promise<EventRow[]> {
  return testDb.db.rows<EventRow>(
    sql`select id, name, source, event_type, user_id, metadata from telemetry.events where workspace_id = ${workspaceId} order by name, id`,
  );
}

function event(workspaceId: string, name: string, extra: Partial<EventInput> = {}): EventInput {
  return { id: uuidv7(), workspaceId, source: 'web', eventType: 'custom', name, ...extra } as EventInput;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const STACK_TRACE = /\n\s+at /;

describe('telemetry send', () => {
  it('stores one event built from flags, with a UUIDv7 id made by the CLI, and prints its receipt', async () => {
    const workspaceId = await newWorkspace();
    const userId = randomUUID();
    const result = await telemetry(
      ['send', '--type', 'perf.metric', '--name', 'build.duration', '--workspace', workspaceId, '--user', userId, '--metadata', '{"value":8120,"unit":"ms"}'],
      { key: keys.ingest },
    );

    expect(result).toMatchObject({ code: ExitCode.ok, stderr: '' });
    const [receiptId] = /accepted ([0-9a-f-]{36})/.exec(result.stdout)?.slice(1) ?? [];
    expect(receiptId?.[14]).toBe('7');
    expect(await storedEvents(workspaceId)).toEqual([
      { id: receiptId, name: 'build.duration', source: 'cli', event_type: 'perf.metric', user_id: userId, metadata: { value: 8120, unit: 'ms' } },
    ]);
  });

  it('stores NDJSON from stdin in batches, and stores each event exactly once when the same lines are sent again', async () => {
    const workspaceId = await newWorkspace();
    const lines = ndjson([1, 2, 3, 4, 5].map((n) => ({ id: uuidv7(), workspaceId, source: 'backend', eventType: 'job.finished', name: `job-${n}` })));

    const first = await telemetry(['send', '-', '--batch-size', '2', '--progress'], { key: keys.ingest, input: lines });
    const again = await telemetry(['send', '--batch-size', '2', '--json'], { key: keys.ingest, input: lines });

    expect(first).toMatchObject({ code: ExitCode.ok, stdout: '5 accepted, 0 duplicate, 0 rejected\n' });
    expect(first.stderr).toMatch(/^sent 5 events \([\d,]+\/s\): 5 accepted, 0 duplicate, 0 rejected$/m);
    expect(again.code).toBe(ExitCode.ok);
    expect(JSON.parse(again.stdout)).toEqual({ accepted: 0, duplicate: 5, rejected: 0, rejections: [] });
    const stored = await storedEvents(workspaceId);
    expect(stored.map((row) => row.name)).toEqual(['job-1', 'job-2', 'job-3', 'job-4', 'job-5']);
    expect(stored.map((row) => row.id).sort()).toEqual(
      jsonLines<{ id: string }>(lines)
        .map((line) => line.id)
        .sort(),
    );
  });

  it('exits 1 and names the line and field path of each rejected event, storing the valid ones', async () => {
    const workspaceId = await newWorkspace();
    const input = [
      JSON.stringify({ workspaceId, eventType: 'perf.metric', name: 'LCP', metadata: { value: 1830, unit: 'ms' } }),
      JSON.stringify({ workspaceId, eventType: 'perf.metric', name: 'LCP', metadata: { value: 'slow', unit: 'ms' } }),
      '{"workspaceId": oops',
      '',
    ].join('\n');

    const [batch, single] = await Promise.all([
      telemetry(['send'], { key: keys.ingest, input }),
      telemetry(['send', '--type', 'perf.metric', '--name', 'LCP', '--workspace', workspaceId, '--metadata', '{"unit":"ms"}'], { key: keys.ingest }),
    ]);

    expect(batch.code).toBe(ExitCode.refused);
    expect(batch.stdout).toBe('1 accepted, 0 duplicate, 2 rejected\n');
    expect(batch.stderr).toMatch(/^line 2: metadata\.value: .*number.* \(invalid_event\)$/m);
    expect(batch.stderr).toMatch(/^line 3: not valid JSON/m);
    expect(single.code).toBe(ExitCode.refused);
    expect(single.stderr).toMatch(/^rejected: --metadata \(metadata\.value\): .*\(invalid_event\)$/m);
    expect((await storedEvents(workspaceId)).map((row) => row.metadata)).toEqual([{ value: 1830, unit: 'ms' }]);
  });

  it('splits a batch the key’s rate budget cannot pay for and waits out 429s, storing every event once', async () => {
    const workspaceId = await newWorkspace();
    // Two events per second and no burst: a batch of 4 is refused whole (413), two in a row are 429.
    const slowKey = await telemetry(['keys', 'create', '--kind', 'ingest', '--workspace', workspaceId, '--events-per-second', '2', '--burst', '0']);
    const lines = ndjson([1, 2, 3, 4, 5, 6].map((n) => ({ workspaceId, eventType: 'custom', name: `slow-${n}` })));

    const result = await telemetry(['send', '--batch-size', '4'], { key: slowKey.stdout.trim(), input: lines });

    expect(result).toMatchObject({ code: ExitCode.ok, stdout: '6 accepted, 0 duplicate, 0 rejected\n' });
    expect(result.stderr).toMatch(/^Rate limited \(429\).*; retry 1 of 5 in \d/m);
    expect((await storedEvents(workspaceId)).map((row) => row.name)).toEqual(['slow-1', 'slow-2', 'slow-3', 'slow-4', 'slow-5', 'slow-6']);
  });

  it('exits 3 with a hint to set TELEMETRY_KEY when the key is missing or refused', async () => {
    const [missing, refused] = await Promise.all([
      telemetry(['send', '--name', 'x'], { key: null }),
      telemetry(['send', '--name', 'x'], { key: 'tlm_ingest_not-a-real-key-at-all-0000000000' }),
    ]);

    expect(missing.code).toBe(ExitCode.auth);
    expect(missing.stderr).toMatch(/No API key\. Set TELEMETRY_KEY or pass --key/);
    expect(refused.code).toBe(ExitCode.auth);
    expect(refused.stderr).toMatch(/401.*Set TELEMETRY_KEY or pass --key/);
    expect(missing.stderr + refused.stderr).not.toMatch(STACK_TRACE);
  });

  it('resumes an NDJSON send with --skip-lines, and says where to resume when a send stops', async () => {
    const workspaceId = await newWorkspace();
    // No ids: the CLI gives each line a fresh one, so resending from the start would store them twice.
    const lines = ndjson([1, 2, 3, 4].map((n) => ({ workspaceId, source: 'backend', eventType: 'job.finished', name: `job-${n}` })));
    const stopped = await telemetry(['send', '-', '--url', `http://127.0.0.1:${await closedPort()}`, '--retries', '0'], { key: keys.ingest, input: lines });
    expect(stopped.code).toBe(ExitCode.unavailable);
    expect(stopped.stderr).toContain('resume with --skip-lines 0');

    const resumed = await telemetry(['send', '-', '--skip-lines', '2'], { key: keys.ingest, input: lines });
    expect(resumed).toMatchObject({ code: ExitCode.ok, stdout: '2 accepted, 0 duplicate, 0 rejected\n' });
    expect((await storedEvents(workspaceId)).map((row) => row.name)).toEqual(['job-3', 'job-4']);
  });

  it('exits 4 naming the URL when the service cannot be reached, without a stack trace', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const result = await telemetry(['send', '--name', 'x', '--url', url, '--retries', '0']);

    expect(result.code).toBe(ExitCode.unavailable);
    expect(result.stderr).toContain(`Cannot reach the telemetry service at ${url} (ECONNREFUSED)`);
    expect(result.stderr).not.toMatch(STACK_TRACE);
  });
});

describe('telemetry query', () => {
  it('query list --json prints the filtered events of the workspace newest first, one JSON object per line', async () => {
    const workspaceId = await newWorkspace();
    const now = Date.now();
    const sent = [1, 2, 3].map((n) => event(workspaceId, `page-${n}`, { eventType: 'ui.view', createdAt: new Date(now - (10 - n) * 1000) }));
    await ingest.telemetry.ingestBatch.mutate({
      events: [...sent, event(workspaceId, 'other-type'), event(await newWorkspace(), 'other-workspace', { eventType: 'ui.view' })],
    });

    const [json, table] = await Promise.all([
      telemetry(['query', 'list', '--workspace', workspaceId, '--type', 'ui.view', '--json']),
      telemetry(['query', 'list', '--workspace', workspaceId, '--limit', '2']),
    ]);

    expect(json.code).toBe(ExitCode.ok);
    expect(jsonLines<{ id: string; name: string; workspaceId: string }>(json.stdout)).toEqual(
      [...sent].reverse().map((item) => expect.objectContaining({ id: item.id, name: item.name, workspaceId })),
    );
    expect(table.code).toBe(ExitCode.ok);
    expect(table.stdout.split('\n')[0]).toMatch(/^created at\s+type\s+name\s+source/);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
    expect(table.stderr).toMatch(/More events: add --cursor \S+/);
  });

  it('query top and query timeseries count the workspace’s events in the range', async () => {
    const workspaceId = await newWorkspace();
    await ingest.telemetry.ingestBatch.mutate({ events: [event(workspaceId, 'signup'), event(workspaceId, 'signup'), event(workspaceId, 'login')] });

    const [top, series, usage] = await Promise.all([
      telemetry(['query', 'top', '--workspace', workspaceId, '--by', 'name', '--from', '1h', '--json']),
      telemetry(['query', 'timeseries', '--workspace', workspaceId, '--bucket', 'hour', '--from', '3h', '--to', 'now']),
      telemetry(['query', 'top', '--workspace', workspaceId, '--from', 'yesterday']),
    ]);

    expect(top.code).toBe(ExitCode.ok);
    expect(JSON.parse(top.stdout).items).toEqual([
      { key: 'signup', count: 2 },
      { key: 'login', count: 1 },
    ]);
    expect(series.code).toBe(ExitCode.ok);
    expect(series.stdout).toMatch(/^bucket start\s+count$/m);
    expect(series.stdout).toMatch(/^total\s+3$/m);
    expect(usage.code).toBe(ExitCode.usage);
    expect(usage.stderr).toMatch(/--from must be "now", a duration ago/);
  });

  it('query timeseries --breakdown shows the largest values and sums the rest in an "other" column', async () => {
    const workspaceId = await newWorkspace();
    await ingest.telemetry.ingestBatch.mutate({ events: ['signup', 'signup', 'signup', 'login', 'login', 'logout'].map((name) => event(workspaceId, name)) });

    const result = await telemetry([
      'query',
      'timeseries',
      '--workspace',
      workspaceId,
      '--bucket',
      'hour',
      '--from',
      '3h',
      '--to',
      'now',
      '--breakdown',
      'name',
      '--series',
      '1',
    ]);

    expect(result.code).toBe(ExitCode.ok);
    expect(result.stdout).toMatch(/^bucket start\s+signup\s+other \(2\)$/m);
    expect(result.stdout).toMatch(/^total\s+3\s+3$/m);
  });

  it('reports an input the service refuses with the flag to fix, exit 2', async () => {
    const result = await telemetry(['query', 'list', '--workspace', randomUUID(), '--user', 'not-a-uuid']);

    expect(result.code).toBe(ExitCode.usage);
    expect(result.stderr).toMatch(/Invalid input:\n\s+--user \(userId\): /);
  });
});

describe('telemetry keys', () => {
  it('keys create prints a working secret once, keys list never shows it, and keys revoke makes it fail', async () => {
    const workspaceId = await newWorkspace();
    const created = await telemetry(['keys', 'create', '--kind', 'read', '--workspace', workspaceId, '--name', 'cli test', '--json']);
    expect(created.code).toBe(ExitCode.ok);
    const key = JSON.parse(created.stdout) as { id: string; key: string; kind: string; workspaceId: string };
    expect(key).toMatchObject({ kind: 'read', workspaceId });

    const [list, readWithKey] = await Promise.all([telemetry(['keys', 'list', '--json']), telemetry(['query', 'list', '--json'], { key: key.key })]);
    expect(list.code).toBe(ExitCode.ok);
    expect(JSON.parse(list.stdout)).toContainEqual(expect.objectContaining({ id: key.id, kind: 'read', name: 'cli test', workspaceId }));
    expect(list.stdout).not.toContain(key.key);
    expect(readWithKey).toMatchObject({ code: ExitCode.ok, stdout: '' });

    const revoked = await telemetry(['keys', 'revoke', key.id]);
    expect(revoked).toMatchObject({ code: ExitCode.ok, stdout: expect.stringContaining(`Revoked key ${key.id}`) });
    const [afterRevoke, listed] = await Promise.all([telemetry(['query', 'list'], { key: key.key }), telemetry(['keys', 'list', '--json'])]);
    expect(afterRevoke.code).toBe(ExitCode.auth);
    expect(JSON.parse(listed.stdout)).not.toContainEqual(expect.objectContaining({ id: key.id }));
  });
});

describe('telemetry workspaces', () => {
  it('workspaces create prints the id of a new workspace, list shows it by name, rename renames it', async () => {
    const name = `Web shop ${randomUUID().slice(0, 8)}`;
    const created = await telemetry(['workspaces', 'create', name]);
    expect(created.code).toBe(ExitCode.ok);
    const id = created.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.stderr).toContain(`telemetry keys create --kind ingest --workspace ${id}`);

    const [listed, table, renamed] = await Promise.all([
      telemetry(['workspaces', 'list', '--json']),
      telemetry(['workspaces', 'list']),
      telemetry(['workspaces', 'rename', id, `${name} (EU)`]),
    ]);
    expect(listed.code).toBe(ExitCode.ok);
    // Listed before or after the rename, whichever ran first: the id is there either way.
    expect(JSON.parse(listed.stdout)).toMatchObject({ truncated: false, workspaces: expect.arrayContaining([expect.objectContaining({ id })]) });
    expect(table.stdout.split('\n')[0]).toMatch(/^id\s+name\s+created/);
    expect(table.stdout).toContain(name);
    expect(renamed).toMatchObject({ code: ExitCode.ok, stdout: `Workspace ${id} is now named "${name} (EU)".\n` });
    expect((await services.workspaces.getWorkspace(id)).name).toBe(`${name} (EU)`);
  });

  it('workspaces create exits 1 on a name taken in another case, and 2 on an empty name, without a stack trace', async () => {
    const name = `Taken ${randomUUID().slice(0, 8)}`;
    expect((await telemetry(['workspaces', 'create', name])).code).toBe(ExitCode.ok);
    const [taken, empty] = await Promise.all([telemetry(['workspaces', 'create', name.toLowerCase()]), telemetry(['workspaces', 'create', '  '])]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('already exists');
    expect(empty.code).toBe(ExitCode.usage);
    expect(taken.stderr + empty.stderr).not.toMatch(STACK_TRACE);
  });

  it('keys create needs --workspace or --all-workspaces for an ingest key, and an all-workspaces key’s events must name an existing workspace', async () => {
    const [neither, both, unknown, created] = await Promise.all([
      telemetry(['keys', 'create', '--kind', 'ingest']),
      telemetry(['keys', 'create', '--kind', 'ingest', '--all-workspaces', '--workspace', randomUUID()]),
      telemetry(['keys', 'create', '--kind', 'read', '--workspace', randomUUID()]),
      telemetry(['keys', 'create', '--kind', 'ingest', '--all-workspaces', '--json']),
    ]);
    expect(neither.code).toBe(ExitCode.usage);
    expect(neither.stderr).toContain('--workspace');
    expect(both).toMatchObject({ code: ExitCode.usage, stderr: expect.stringContaining('not both') });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No workspace with this id');

    expect(created.code).toBe(ExitCode.ok);
    const { key, id } = JSON.parse(created.stdout) as { id: string; key: string; workspaceId: string | null };
    expect(JSON.parse(created.stdout)).toMatchObject({ kind: 'ingest', workspaceId: null });
    const workspaceId = await newWorkspace();
    const [sent, listed] = await Promise.all([
      telemetry(['send'], {
        key,
        input: ndjson([
          { workspaceId, source: 'web', eventType: 'custom', name: 'named' },
          { source: 'web', eventType: 'custom', name: 'unnamed' },
          { workspaceId: randomUUID(), source: 'web', eventType: 'custom', name: 'unknown' },
        ]),
      }),
      telemetry(['keys', 'list']),
    ]);
    expect(listed.stdout.split('\n').find((line) => line.startsWith(id))).toMatch(/^\S+\s+ingest\s+\(all\)/);
    expect(sent.code).toBe(1);
    expect(sent.stderr).toContain('workspace_required');
    expect(sent.stderr).toContain('unknown_workspace');
    expect((await storedEvents(workspaceId)).map((row) => row.name)).toEqual(['named']);
  });
});

describe('telemetry tail', () => {
  it('tail --count 2 prints the matching events committed while it runs, then exits', async () => {
    const workspaceId = await newWorkspace();
    const tail = telemetry(['tail', '--workspace', workspaceId, '--type', 'ui.click', '--count', '2', '--json']);
    await waitFor(() => services.live.openStreams() === 1, 'the tail’s live stream');

    await ingest.telemetry.ingestBatch.mutate({
      events: [
        event(workspaceId, 'first', { eventType: 'ui.click' }),
        event(workspaceId, 'not a click'),
        event(await newWorkspace(), 'elsewhere', { eventType: 'ui.click' }),
      ],
    });
    await ingest.telemetry.ingest.mutate(event(workspaceId, 'second', { eventType: 'ui.click' }));
    const result = await tail;

    expect(result.code).toBe(ExitCode.ok);
    expect(jsonLines<{ name: string }>(result.stdout).map((item) => item.name)).toEqual(['first', 'second']);
    await waitFor(() => services.live.openStreams() === 0, 'the stream to be freed');
  });
});

describe('telemetry erase and retention', () => {
  it('erase deletes every event of the user in the workspace, and erase status reports the count', async () => {
    const workspaceId = await newWorkspace();
    const userId = randomUUID();
    const otherUser = randomUUID();
    await ingest.telemetry.ingestBatch.mutate({
      events: [event(workspaceId, 'a', { userId }), event(workspaceId, 'b', { userId }), event(workspaceId, 'c', { userId: otherUser })],
    });

    const erased = await telemetry(['erase', '--user', userId, '--workspace', workspaceId, '--json']);
    expect(erased.code).toBe(ExitCode.ok);
    const receipt = JSON.parse(erased.stdout) as { requestId: string; deletedCount: number };
    expect(receipt.deletedCount).toBe(2);
    expect((await storedEvents(workspaceId)).map((row) => row.user_id)).toEqual([otherUser]);

    const status = await telemetry(['erase', 'status', receipt.requestId]);
    expect(status).toMatchObject({ code: ExitCode.ok, stdout: expect.stringContaining(`Erased 2 events of user ${userId} in workspace ${workspaceId}`) });
  });

  it('retention run --dry-run prints the report with each override and deletes nothing', async () => {
    const workspaceId = await newWorkspace();
    await ingest.telemetry.ingest.mutate(event(workspaceId, 'kept'));
    const set = await telemetry(['retention', 'set', '--workspace', workspaceId, '--days', '30']);
    expect(set.code).toBe(ExitCode.ok);

    const [dryRun, list] = await Promise.all([telemetry(['retention', 'run', '--dry-run']), telemetry(['retention', 'list', '--json'])]);

    expect(dryRun.code).toBe(ExitCode.ok);
    expect(dryRun.stdout).toMatch(/^Retention dry run: nothing was changed\./);
    expect(dryRun.stdout).toMatch(/^Default retention: \d+ days/m);
    expect(dryRun.stdout).toContain(`workspace ${workspaceId}: 30 days`);
    expect(JSON.parse(list.stdout).overrides).toContainEqual(expect.objectContaining({ workspaceId, days: 30 }));
    expect(await storedEvents(workspaceId)).toHaveLength(1);
    expect((await telemetry(['retention', 'clear', '--workspace', workspaceId])).stdout).toContain('back to the default retention');
  });
});

describe('telemetry help and usage', () => {
  async function* noInput(): AsyncGenerator<string> {}

  /** The CLI in this process with captured output: no service is called for help and usage errors. */
  async function runInProcess(argv: string[]) {
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: {
        write: (text) => {
          stdout += text;
        },
        isTTY: false,
      },
      stderr: {
        write: (text) => {
          stderr += text;
        },
        isTTY: false,
      },
      stdin: { stream: noInput(), isTTY: true },
      env: {},
      onInterrupt: () => () => {},
    };
    const code = await runCli(argv, io);
    return { code, stdout, stderr };
  }

  it('bin/telemetry.mjs runs the TypeScript CLI with no build step and lists every command', async () => {
    const result = await telemetry(['--help'], { key: null });

    expect(result.code).toBe(ExitCode.ok);
    for (const command of COMMANDS) expect(result.stdout).toContain(`  ${command.path.join(' ')} `);
  });

  it('every command answers --help with its usage and exit code 0', async () => {
    for (const command of COMMANDS) {
      const result = await runInProcess([...command.path, '--help']);
      expect(result, command.path.join(' ')).toMatchObject({ code: ExitCode.ok, stderr: '' });
      expect(result.stdout).toMatch(new RegExp(`^Usage:\\n  telemetry ${command.path.join(' ')}`));
    }
  });

  it('an unknown command, an unknown flag or a missing value is a usage error, exit 2', async () => {
    const [unknownCommand, unknownFlag, missingValue, group] = await Promise.all([
      runInProcess(['launch']),
      runInProcess(['query', 'list', '--colour']),
      runInProcess(['keys', 'create', '--key', 'k']),
      runInProcess(['keys']),
    ]);

    expect(unknownCommand).toMatchObject({ code: ExitCode.usage, stderr: expect.stringContaining('Unknown command "launch"') });
    expect(unknownFlag).toMatchObject({ code: ExitCode.usage, stderr: expect.stringContaining("Unknown option '--colour'") });
    expect(missingValue).toMatchObject({ code: ExitCode.usage, stderr: expect.stringContaining('--kind is required') });
    expect(group).toMatchObject({ code: ExitCode.usage, stderr: expect.stringContaining('telemetry keys <create|list|revoke|rotate>') });
  });
});

describe('telemetry limits', () => {
  it('limits set, list and clear manage a workspace ceiling with an unbound admin key, and a bound admin key may not set one', async () => {
    const workspaceId = await newWorkspace();
    const bound = (await services.keys.createKey({ kind: 'admin', workspaceId })).key;
    const refused = await telemetry(['limits', 'set', '--workspace', workspaceId, '--kind', 'ingest', '--events-per-second', '100000'], { key: bound });
    expect(refused.code).toBe(ExitCode.auth);
    expect(refused.stderr).toContain('not bound to a workspace');

    const set = await telemetry(['limits', 'set', '--workspace', workspaceId, '--kind', 'ingest', '--events-per-second', '300', '--burst', '900']);
    expect(set).toMatchObject({ code: ExitCode.ok, stdout: `The ingest keys of workspace ${workspaceId} now share 300/s, burst 900.\n` });
    const [list, boundList] = await Promise.all([telemetry(['limits', 'list', '--json']), telemetry(['limits', 'list', '--json'], { key: bound })]);
    expect(JSON.parse(list.stdout)).toMatchObject({
      overrides: expect.arrayContaining([expect.objectContaining({ workspaceId, kind: 'ingest', rateLimit: { eventsPerSecond: 300, burst: 900 } })]),
    });
    expect(JSON.parse(boundList.stdout).overrides).toEqual([expect.objectContaining({ workspaceId })]);
    // The bound admin's keys stay within it.
    const above = await telemetry(['keys', 'create', '--kind', 'ingest', '--events-per-second', '301'], { key: bound });
    expect(above.code).toBe(ExitCode.auth);
    expect(above.stderr).toContain("above this workspace's ceiling");

    const cleared = await telemetry(['limits', 'clear', '--workspace', workspaceId]);
    expect(cleared).toMatchObject({ code: ExitCode.ok, stdout: expect.stringContaining('back to the default ceiling for ingest keys') });
  });

  it('limits set and retention set for a workspace that does not exist exit 1 with one line saying no workspace has this id, without a stack trace', async () => {
    const unknown = randomUUID();
    const results = await Promise.all([
      telemetry(['limits', 'set', '--workspace', unknown, '--kind', 'ingest', '--events-per-second', '300']),
      telemetry(['retention', 'set', '--workspace', unknown, '--days', '7']),
    ]);
    for (const result of results) {
      expect(result).toMatchObject({ code: ExitCode.refused, stdout: '' });
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/no workspace with this id/i);
      expect(result.stderr).not.toMatch(/\bat |foreign key|23503/);
    }
  });
});

describe('telemetry rejections', () => {
  it('shows what an adapter refused in a workspace, totals then the latest with their reason, and nothing for a workspace with none', async () => {
    const workspaceId = await newWorkspace();
    const ingestKey = (await services.keys.createKey({ kind: 'ingest', workspaceId })).key;
    const exported = await fetch(`${server.url}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
      body: JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: '1000000000', body: { stringValue: 'from 1970' } }] }] }] }),
    });
    expect(exported.status).toBe(200);

    const [table, json, none] = await Promise.all([
      telemetry(['rejections', '--workspace', workspaceId]),
      telemetry(['rejections', '--workspace', workspaceId, '--json', '--limit', '5']),
      telemetry(['rejections', '--workspace', await newWorkspace()]),
    ]);
    expect(table.code).toBe(ExitCode.ok);
    expect(table.stdout).toMatch(/otlp\s+created_at_out_of_range\s+1\s/);
    expect(table.stdout).toMatch(/Latest:\n.*\n.*otlp\s+created_at_out_of_range\s+0\s+createdAt\s+createdAt is more than/);
    expect(JSON.parse(json.stdout)).toMatchObject({
      counts: [{ adapter: 'otlp', reason: 'created_at_out_of_range', refused: 1 }],
      recent: [{ recordIndex: 0 }],
    });
    expect(none).toMatchObject({ code: ExitCode.ok, stdout: expect.stringContaining('Nothing sent through') });
  });
});

/**
 * The client package as another team's app gets it: packed with `npm pack`, installed into an app
 * in a temporary folder (from npm's cache, which the project's own install filled), compiled by
 * the project's TypeScript with the tsconfig `tsc --init` writes (strict, exactOptionalPropertyTypes,
 * without skipLibCheck), and run with plain `node` against a live service.
 */
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClientPackage } from '../scripts/build-client-package.ts';
import { createKeyService } from '../server/services/keys/keys.ts';
import { createTestWorkspace, startTestServer, type TestServer } from './support/app.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const SERVICE = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  devDependencies: Record<string, string>;
  dependencies: Record<string, string>;
};

interface Run {
  code: number;
  output: string;
}

/** Runs a program to its end; npm's own variables (set when the tests run under `npm test`) are left out. */
function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 90_000): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...base, ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

async function runOk(command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const result = await run(command, args, cwd, env);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.code}):\n${result.output}`);
  return result.output;
}

const tsc = (app: string, ...args: string[]) => run(process.execPath, [TSC, ...args], app);

/** The errors of a tsc run: `file(line,col): error TSxxxx: message`, with the message's indented detail lines. */
function compileErrors(output: string): { file: string; line: number; code: string; message: string }[] {
  return [...output.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*(?:\n[ \t]+.*)*)/gm)].map((m) => ({
    file: m[1]!,
    line: Number(m[2]),
    code: m[3]!,
    message: m[4]!,
  }));
}

async function pack(packageDir: string, destination: string): Promise<{ tarball: string; files: string[] }> {
  const output = await runOk('npm', ['pack', '--json', '--pack-destination', destination], packageDir);
  const [result] = JSON.parse(output.slice(output.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  return { tarball: path.join(destination, result!.filename), files: result!.files.map((file) => file.path) };
}

// ---- The outside app ----------------------------------------------------------------------------

/** Right calls, run against the service: ingest, ingestBatch, events.list and a live stream. */
const MAIN = `import { EventSource } from 'eventsource';
import { createTelemetryClient, type EventInput } from '@telemetry-service/client';
import { createTracker } from '@telemetry-service/client/tracker';
import { reportWebVitals } from '@telemetry-service/client/web-vitals';

const url = process.env.TELEMETRY_URL ?? 'http://localhost:3000';
// As the README writes it: an environment variable may be unset (string | undefined).
const ingest = createTelemetryClient({ url, apiKey: process.env.TELEMETRY_INGEST_KEY });
const reader = createTelemetryClient({ url, apiKey: process.env.TELEMETRY_READ_KEY, EventSource });

const seen: string[] = [];
let onSeen = () => {};
const subscription = reader.telemetry.live.subscribe(
  {},
  {
    onData: ({ data }) => {
      seen.push(data.name);
      onSeen();
    },
    onError: (error) => {
      console.error('live stream failed:', error.message);
      process.exit(1);
    },
  },
);
const nextSeen = () => new Promise<void>((resolve) => (onSeen = resolve));
const within = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

// The stream is open once a probe sent after it started comes back (bounded attempts).
for (let attempt = 1; !seen.includes('probe'); attempt++) {
  if (attempt > 50) throw new Error('the live stream delivered nothing');
  await ingest.telemetry.ingest.mutate({ source: 'backend', eventType: 'probe', name: 'probe' });
  await Promise.race([nextSeen(), within(200)]);
}

const receipt = await ingest.telemetry.ingest.mutate({ source: 'backend', eventType: 'perf.metric', name: 'one', metadata: { value: 12, unit: 'ms' } });
const events: EventInput[] = [
  { source: 'backend', eventType: 'error', name: 'two', metadata: { message: 'boom' } },
  { source: 'backend', eventType: 'signup.completed', name: 'three', metadata: { plan: 'team' } },
];
const batch = await ingest.telemetry.ingestBatch.mutate({ events, sentAt: new Date() });
while (!['one', 'two', 'three'].every((name) => seen.includes(name))) {
  await Promise.race([nextSeen(), within(10_000).then(() => Promise.reject(new Error('live events missing: ' + seen.join(','))))]);
}
subscription.unsubscribe();

const listed = await reader.telemetry.events.list.query({ limit: 10 });
const tracker = createTracker({ url, apiKey: process.env.TELEMETRY_INGEST_KEY ?? '', source: 'backend', storage: null });
reportWebVitals(tracker, { onLCP: () => {}, onINP: () => {}, onCLS: () => {}, onTTFB: () => {} });
tracker.track({ eventType: 'ui.click', name: 'tracked' });
await tracker.shutdown({ timeoutMs: 10_000 });

const createdAt: Date = receipt.createdAt;
console.log(JSON.stringify({
  receiptCreatedAtIsDate: createdAt instanceof Date,
  accepted: batch.accepted,
  listed: listed.events.map((event) => event.name).filter((name) => name !== 'probe').sort(),
  live: seen.filter((name) => name !== 'probe'),
}));
`;

const WRONG_PRELUDE = `import { createTelemetryClient } from '@telemetry-service/client';
const client = createTelemetryClient({ url: 'http://localhost:3000', apiKey: process.env.TELEMETRY_INGEST_KEY });
`;

/** The app's package.json, with the client from `clientSpec` (a tarball or a directory). */
function appManifest(clientSpec: string): string {
  const manifest = {
    name: 'outside-app',
    private: true,
    type: 'module',
    dependencies: { '@telemetry-service/client': clientSpec, eventsource: SERVICE.dependencies.eventsource },
    devDependencies: { '@types/node': SERVICE.devDependencies['@types/node'] },
  };
  return JSON.stringify(manifest, null, 2);
}

/** Each wrong call in its own file; the marker names the line tsc must refuse. */
const WRONG_CALLS = {
  'wrong-source.ts': `await client.telemetry.ingest.mutate({ source: 'desktop', eventType: 'custom', name: 'x' }); // refused`,
  'missing-name.ts': `await client.telemetry.ingest.mutate({ source: 'web', eventType: 'custom' }); // refused`,
  'metric-value.ts': `await client.telemetry.ingest.mutate({ source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: 'fast', unit: 'ms' } }); // refused`,
  'unknown-procedure.ts': `await client.telemetry.ingestMany.mutate({ events: [] }); // refused`,
};

/** The tsconfig `tsc --init` writes, with its Node.js hints taken, skipLibCheck off, and the app's sources in src/. */
function strictTsconfig(init: string): string {
  const edits: [string, string][] = [
    ['// "rootDir": "./src",', '"rootDir": "./src",'],
    ['// "outDir": "./dist",', '"outDir": "./dist",'],
    ['"types": [],', '"types": ["node"],'],
    ['"skipLibCheck": true,', '"skipLibCheck": false,'],
  ];
  let text = init;
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`tsc --init no longer writes ${from}:\n${init}`);
    text = text.replace(from, to);
  }
  // The app's sources (its wrong calls live beside them, in wrong/, with their own tsconfig).
  text = text.replace(/\n\}\s*$/, ',\n  "include": ["src"]\n}\n');
  expect(text).toContain('"exactOptionalPropertyTypes": true');
  expect(text).toContain('"strict": true');
  return text;
}

/** Builds, installs and compiles take seconds each, more while other test files keep the cores busy. */
const CHILD_TIMEOUT_MS = 120_000;

const onPostgres = process.env.TEST_DB_KIND === 'postgres';
const npmMissing = spawnSync('npm', ['--version']).status !== 0;
if (onPostgres) console.info('client-package.test.ts runs on the PGlite project only: it tests the package, which is the same on either database');
if (npmMissing) console.info('client-package.test.ts skipped: npm is not on PATH (it packs and installs the package)');

describe.skipIf(onPostgres || npmMissing)('the client package in an outside app', () => {
  let work: string;
  let app: string;
  let packed: { tarball: string; files: string[] };
  let testDb: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'telemetry-client-app-'));
    testDb = await openTestDatabase();
    server = await startTestServer(testDb.db);
    const { dir } = await buildClientPackage({ out: path.join(work, 'package') });
    packed = await pack(dir, work);

    app = path.join(work, 'app');
    mkdirSync(path.join(app, 'src'), { recursive: true });
    mkdirSync(path.join(app, 'wrong'), { recursive: true });
    writeFileSync(path.join(app, 'package.json'), appManifest(`file:${packed.tarball}`));
    await runOk('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], app);
    await runOk(process.execPath, [TSC, '--init'], app);
    writeFileSync(path.join(app, 'tsconfig.json'), strictTsconfig(readFileSync(path.join(app, 'tsconfig.json'), 'utf8')));
    writeFileSync(path.join(app, 'src/main.ts'), MAIN);
    for (const [file, call] of Object.entries(WRONG_CALLS)) writeFileSync(path.join(app, 'wrong', file), `${WRONG_PRELUDE}${call}\n`);
    writeFileSync(
      path.join(app, 'tsconfig.wrong.json'),
      JSON.stringify({ extends: './tsconfig.json', compilerOptions: { rootDir: '.', noEmit: true }, include: ['wrong'] }),
    );
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    await testDb?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships compiled modules, declarations and the tracker browser bundles, and no source or server file', () => {
    expect(packed.files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/router.d.ts',
        'dist/tracker.js',
        'dist/tracker.d.ts',
        'dist/web-vitals.js',
        'dist/web-vitals.d.ts',
        'dist/browser/tracker.js',
        'dist/browser/tracker.mjs',
      ]),
    );
    expect(packed.files.filter((file) => (file.endsWith('.ts') && !file.endsWith('.d.ts')) || /server|db\//.test(file))).toEqual([]);
    // The modules import only the package's own files and its declared dependencies.
    const installed = path.join(app, 'node_modules/@telemetry-service/client');
    const modules = packed.files.filter((file) => file.endsWith('.js') && !file.startsWith('dist/browser/'));
    const imported = new Set(
      modules.flatMap((file) =>
        [...readFileSync(path.join(installed, file), 'utf8').matchAll(/(?:from|import)\s*\(?\s*["']([^"'.][^"']*)["']/g)].map((m) => m[1]!),
      ),
    );
    expect([...imported].sort()).toEqual(['@trpc/client', 'superjson']);
    // The script-tag bundle defines the TelemetryTracker global with the tracker in it.
    const context: { TelemetryTracker?: { createTracker?: unknown }; TextEncoder: unknown; TextDecoder: unknown } = { TextEncoder, TextDecoder };
    vm.runInNewContext(readFileSync(path.join(app, 'node_modules/@telemetry-service/client/dist/browser/tracker.js'), 'utf8'), context);
    expect(typeof context.TelemetryTracker?.createTracker).toBe('function');
  });

  it("carries the service's version and dependency versions in its committed manifest", () => {
    const built = readFileSync(path.join(work, 'package/package.json'), 'utf8');
    expect(readFileSync(path.join(ROOT, 'packages/client/package.json'), 'utf8')).toBe(built);
  });

  it(
    'compiles right calls under the strict tsconfig of tsc --init, without skipLibCheck',
    async () => {
      const result = await tsc(app, '-p', '.');
      expect(result.output).toBe('');
      expect(result.code).toBe(0);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    'refuses each wrong call at its own line',
    async () => {
      const result = await tsc(app, '-p', 'tsconfig.wrong.json');
      expect(result.code).not.toBe(0);
      const errors = compileErrors(result.output);
      const refused = Object.fromEntries(
        Object.keys(WRONG_CALLS).map((file) => [file, [...new Set(errors.filter((e) => e.file === `wrong/${file}`).map((e) => e.line))]]),
      );
      // Each file is the prelude and then the wrong call.
      const expectedLine = WRONG_PRELUDE.split('\n').length;
      expect(refused).toEqual(Object.fromEntries(Object.keys(WRONG_CALLS).map((file) => [file, [expectedLine]])));
      expect(errors.every((e) => e.file.startsWith('wrong/'))).toBe(true);
      const messageOf = (file: string) =>
        errors
          .filter((e) => e.file === `wrong/${file}`)
          .map((e) => e.message)
          .join('\n');
      expect(messageOf('wrong-source.ts')).toMatch(/Type '"desktop"' is not assignable to type 'Source'/);
      expect(messageOf('missing-name.ts')).toMatch(/Property 'name' is missing/);
      expect(messageOf('metric-value.ts')).toMatch(/Types of property 'value' are incompatible\.\s+Type 'string' is not assignable to type 'number'/);
      expect(messageOf('unknown-procedure.ts')).toMatch(/'ingestMany' does not exist/);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    'declares nothing from the server, its database or Redis: only the package, @trpc, superjson and the app',
    async () => {
      const result = await tsc(app, '-p', '.', '--listFilesOnly');
      expect(result.code).toBe(0);
      const files = result.output
        .split('\n')
        .filter(Boolean)
        .map((file) => path.resolve(app, file));
      const modules = path.join(app, 'node_modules');
      const allowed = [
        path.join(app, 'src'),
        path.join(modules, '@telemetry-service/client'),
        path.join(modules, '@trpc'),
        path.join(modules, 'superjson'),
        // The app's own imports and Node.js types.
        path.join(modules, 'eventsource'),
        path.join(modules, '@types/node'),
        path.join(modules, 'undici-types'),
      ];
      const outside = files.filter((file) => !allowed.some((root) => file.startsWith(`${root}/`)) && !/\/lib\.[\w.]+\.d\.ts$/.test(file));
      expect(outside).toEqual([]);
      const trpc = path.join(modules, '@trpc');
      expect(
        files.filter((file) => !file.startsWith(trpc) && /server|drizzle|pglite|postgres|redis|hono|zod|openapi/i.test(path.relative(modules, file))),
      ).toEqual([]);
      expect(files.some((file) => file.startsWith(path.join(modules, '@telemetry-service/client/dist/router.d.ts')))).toBe(true);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    'runs with plain node against a live service: ingest, batch, list and live',
    async () => {
      const built = await tsc(app, '-p', '.');
      expect(built.code).toBe(0);
      const workspaceId = await createTestWorkspace(testDb.db);
      const keys = createKeyService({ db: testDb.db });
      const [ingestKey, readKey] = await Promise.all([keys.createKey({ kind: 'ingest', workspaceId }), keys.createKey({ kind: 'read', workspaceId })]);
      const result = await run(process.execPath, ['dist/main.js'], app, {
        TELEMETRY_URL: server.url,
        TELEMETRY_INGEST_KEY: ingestKey.key,
        TELEMETRY_READ_KEY: readKey.key,
      });
      expect(result.output).not.toMatch(/Error/);
      expect(result.code).toBe(0);
      const answer = JSON.parse(result.output.trim().split('\n').at(-1)!) as {
        receiptCreatedAtIsDate: boolean;
        accepted: number;
        listed: string[];
        live: string[];
      };
      expect(answer).toEqual({ receiptCreatedAtIsDate: true, accepted: 2, listed: ['one', 'three', 'two'], live: ['one', 'two', 'three'] });
      // The tracker's event too, sent by shutdown() before the program ended.
      const stored = await testDb.db.rows<{ name: string }>(sql`select name from telemetry.events where workspace_id = ${workspaceId} and name = 'tracked'`);
      expect(stored).toHaveLength(1);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    'works as a file: dependency on the package directory too: compiles, and each entry loads with plain node',
    async () => {
      const linked = path.join(work, 'linked-app');
      mkdirSync(path.join(linked, 'src'), { recursive: true });
      writeFileSync(path.join(linked, 'package.json'), appManifest(`file:${path.join(work, 'package')}`));
      // --install-links: installed as a copy with its dependencies (a bare link would find them only
      // in a node_modules above the package directory, as in the service's own checkout).
      await runOk('npm', ['install', '--install-links', '--prefer-offline', '--no-audit', '--no-fund'], linked);
      cpSync(path.join(app, 'tsconfig.json'), path.join(linked, 'tsconfig.json'));
      writeFileSync(path.join(linked, 'src/main.ts'), MAIN);
      const result = await tsc(linked, '-p', '.', '--noEmit');
      expect(result.output).toBe('');
      expect(result.code).toBe(0);
      const entries = ['@telemetry-service/client', '@telemetry-service/client/tracker', '@telemetry-service/client/web-vitals'];
      const script = `const loaded = await Promise.all(${JSON.stringify(entries)}.map((entry) => import(entry))); console.log(JSON.stringify(loaded.map((m) => Object.keys(m))));`;
      const exported = JSON.parse((await runOk(process.execPath, ['--input-type=module', '-e', script], linked)).trim()) as string[][];
      expect(exported).toEqual([['createTelemetryClient'], ['createTracker'], ['reportWebVitals']]);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    "fails the app's typecheck when the router changes under it (telemetry.ingest takes eventName)",
    async () => {
      const { dir } = await buildClientPackage({ out: path.join(work, 'package-changed'), routerModule: 'tests/types/router-with-changed-ingest.ts' });
      const changed = await pack(dir, path.join(work, 'package-changed'));
      await runOk('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', changed.tarball], app);
      const result = await tsc(app, '-p', '.', '--noEmit');
      expect(result.code).not.toBe(0);
      const failing = [...new Set(compileErrors(result.output).map((e) => `${e.file}:${e.line}`))].sort();
      const ingestCalls = MAIN.split('\n').flatMap((line, i) => (line.includes('ingest.telemetry.ingest.mutate(') ? [`src/main.ts:${i + 1}`] : []));
      expect(ingestCalls).toHaveLength(2);
      expect(failing).toEqual(ingestCalls.sort());
    },
    CHILD_TIMEOUT_MS,
  );
});

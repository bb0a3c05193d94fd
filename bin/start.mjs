#!/usr/bin/env node
// `npm start`: runs the built service (dist/server.mjs) in a Node process whose V8 heap limit
// follows the service's memory bounds. It builds first only when the build is missing or a file it
// was built from changed since, so a restart costs no build.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (file) => join(root, file);
const modified = (file) => statSync(file).mtimeMs;

/** The esbuild metafiles name every input of each build; extra inputs are files copied or read beside them. */
const builds = [
  { meta: 'dist/server.meta.json', extra: readdirSync(at('db/migrations'), { recursive: true }).map((name) => join('db/migrations', String(name))) },
  { meta: 'dist/dashboard/meta.json', extra: ['dashboard/index.html'] },
  { meta: 'dist/config.meta.json', extra: [] },
];

function isStale() {
  for (const { meta, extra } of builds) {
    if (!existsSync(at(meta))) return true;
    const builtAt = modified(at(meta));
    const inputs = [...Object.keys(JSON.parse(readFileSync(at(meta), 'utf8')).inputs), ...extra];
    if (inputs.some((input) => !existsSync(at(input)) || modified(at(input)) > builtAt)) return true;
  }
  return false;
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// The build includes the configuration alone (dist/config.mjs), so the heap limit is read from the
// same declarations the service loads.
if (isStale()) run('npm', ['run', '-s', 'build']);

const { ConfigError, loadConfig } = await import('../dist/config.mjs');
let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}

// V8 lets garbage grow with its heap limit (several GB by default): a limit sized from the bounds on
// in-flight data (NODE_HEAP_LIMIT_MB, see docs/configuration.md) keeps memory near what is live. An
// operator's --max-old-space-size in NODE_OPTIONS or on this command wins.
const HEAP_FLAG = '--max-old-space-size';
const heapAlreadySet = [...(process.env.NODE_OPTIONS ?? '').split(/\s+/), ...process.execArgv].some((flag) => flag.startsWith(HEAP_FLAG));
const heapArgs = heapAlreadySet ? [] : [`${HEAP_FLAG}=${config.heapLimitMb}`];

// Its own process group: a terminal's Ctrl-C reaches this process only, which passes it on once
// (twice would end the service's graceful shutdown early).
const service = spawn(process.execPath, [...process.execArgv, ...heapArgs, '--enable-source-maps', at('dist/server.mjs')], {
  stdio: 'inherit',
  detached: true,
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => service.kill(signal));
service.on('exit', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});

#!/usr/bin/env node
// `npm start`: runs the built service (dist/server.mjs). It builds first only when the build is
// missing or a file it was built from changed since, so a restart costs no build.
import { spawnSync } from 'node:child_process';
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

if (isStale()) {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
process.setSourceMapsEnabled(true);
await import('../dist/server.mjs');

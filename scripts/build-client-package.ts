/**
 * Builds the client package (packages/client): the typed client, the tracker and the web-vitals
 * adapter as ES modules with declaration files, plus the tracker's browser bundles.
 *
 *   npm run build:client                        # into packages/client/dist
 *   tsx scripts/build-client-package.ts --out DIR --router MODULE
 *
 * The declarations carry the router's types printed from the router as it is now (see
 * client-package/router-declarations.ts), so an app that installs the package needs none of the
 * service's files or dependencies, and a breaking router change breaks that app's typecheck.
 * `--router` names another module exporting `type AppRouter` (tests build from a changed router);
 * `--out` builds a complete package directory elsewhere (package.json and README included).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type BuildOptions } from 'esbuild';
import { printRouterDeclarations } from './client-package/router-declarations.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE_DIR = path.join(ROOT, 'packages/client');
const CLIENT_DIR = path.join(ROOT, 'client');
/** The package's entry points: `.`, `./tracker`, `./web-vitals`. */
const ENTRIES = { index: 'client/index.ts', tracker: 'client/tracker.ts', 'web-vitals': 'client/web-vitals.ts' };
/** Runtime dependencies of the client sources; their versions come from the service's package.json. */
const DEPENDENCIES = ['@trpc/client', '@trpc/server', 'superjson'];

export interface BuildClientPackageOptions {
  /** The package directory to build (default packages/client). */
  out?: string;
  /** A module exporting `type AppRouter` (default the service's router). */
  routerModule?: string;
}

export async function buildClientPackage(options: BuildClientPackageOptions = {}): Promise<{ dir: string }> {
  const out = path.resolve(options.out ?? PACKAGE_DIR);
  const dist = path.join(out, 'dist');
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  writePackageFiles(out);

  const routerDeclarations = printRouterDeclarations({
    root: ROOT,
    routerModule: options.routerModule ?? 'server/routers/index.ts',
    shapesModule: 'client/router.ts',
  });
  writeDeclarations(routerDeclarations, dist);
  await buildModules(dist);
  await buildBrowserBundles(path.join(dist, 'browser'));
  return { dir: out };
}

/**
 * package.json (version and dependency versions kept equal to the service's) and README.md; in
 * packages/client itself only package.json is rewritten, and only when it is out of date.
 */
function writePackageFiles(out: string): void {
  const service = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
  const manifest = JSON.parse(readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as Record<string, unknown>;
  manifest.version = service.version;
  manifest.dependencies = Object.fromEntries(DEPENDENCIES.map((name) => [name, service.dependencies[name]]));
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  const target = path.join(out, 'package.json');
  if (!existsSync(target) || readFileSync(target, 'utf8') !== text) writeFileSync(target, text);
  if (out !== PACKAGE_DIR) cpSync(path.join(PACKAGE_DIR, 'README.md'), path.join(out, 'README.md'));
}

/**
 * Declaration files from the client sources, compiled by the project's TypeScript against the
 * printed router (in place of client/router.ts) in a copy of the sources: the compile sees no
 * server file at all, so neither can the declarations it writes.
 */
function writeDeclarations(routerDeclarations: string, dist: string): void {
  const work = mkdtempSync(path.join(os.tmpdir(), 'client-declarations-'));
  try {
    const sources = path.join(work, 'client');
    cpSync(CLIENT_DIR, sources, { recursive: true, filter: (file) => !file.endsWith('.test.ts') });
    writeFileSync(path.join(sources, 'router.ts'), routerDeclarations);
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'), 'dir');
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        // @trpc/server's declarations name Disposable and AsyncDisposable (esnext.disposable).
        lib: ['ESNext', 'DOM', 'DOM.Iterable'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noUncheckedIndexedAccess: true,
        verbatimModuleSyntax: true,
        isolatedModules: true,
        allowImportingTsExtensions: true,
        rewriteRelativeImportExtensions: true,
        declaration: true,
        emitDeclarationOnly: true,
        rootDir: './client',
        outDir: './types',
        types: [],
      },
      files: Object.values(ENTRIES),
    };
    writeFileSync(path.join(work, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', work], { cwd: work, stdio: 'pipe' });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`the client's declarations do not compile against the printed router:\n${stdout ?? ''}${stderr ?? ''}`);
    }
    for (const file of listFiles(path.join(work, 'types'))) {
      const relative = path.relative(path.join(work, 'types'), file);
      const text = readFileSync(file, 'utf8').replace(/(from\s+['"]\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1.js$2');
      mkdirSync(path.dirname(path.join(dist, relative)), { recursive: true });
      writeFileSync(path.join(dist, relative), text);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(path.join(dir, entry.name)) : [path.join(dir, entry.name)],
  );
}

/** The ES modules apps import: one file per entry, shared code in chunks, dependencies left as imports. */
async function buildModules(dist: string): Promise<void> {
  await build({
    absWorkingDir: ROOT,
    entryPoints: Object.entries(ENTRIES).map(([out, entry]) => ({ in: entry, out })),
    outdir: dist,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
    logLevel: 'warning',
  });
}

/**
 * The tracker for pages without a bundler, dependencies included: `tracker.js` for a script tag
 * (a `TelemetryTracker` global) and `tracker.mjs` for `<script type="module">`.
 */
async function buildBrowserBundles(dir: string): Promise<void> {
  const common: BuildOptions = {
    absWorkingDir: ROOT,
    entryPoints: [ENTRIES.tracker],
    bundle: true,
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  };
  await build({ ...common, format: 'iife', globalName: 'TelemetryTracker', outfile: path.join(dir, 'tracker.js') });
  await build({ ...common, format: 'esm', outfile: path.join(dir, 'tracker.mjs') });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, router: { type: 'string' } } });
  const { dir } = await buildClientPackage({ ...(values.out && { out: values.out }), ...(values.router && { routerModule: values.router }) });
  console.log(`client package built in ${path.relative(process.cwd(), dir) || '.'}`);
}

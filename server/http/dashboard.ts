import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono, type Context as HonoContext } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import type { Logger } from '../logger.ts';

/** The bundled dashboard: its page with the asset URLs filled in, and the assets themselves. */
interface DashboardBundle {
  html: string;
  script: DashboardAsset;
  stylesheet: DashboardAsset;
}

interface DashboardAsset {
  body: string;
  /** Short content hash: the `v` query parameter of the page's asset URLs, and the ETag. */
  version: string;
}

export interface DashboardOptions {
  logger: Logger;
  /** Folder holding the dashboard's sources (index.html, main.ts, styles.css); found next to the code by default. */
  sourceDir?: string;
  /**
   * Folder holding the assets `npm run build` wrote (app.js, app.css, index.html): served as they
   * are, with no bundler at run time. By default `dashboard/` beside the built server
   * (dist/dashboard), which does not exist when running from source.
   */
  prebuiltDir?: string;
}

/** The page template and the two bundled assets, before their versions are filled in. */
interface DashboardFiles {
  template: string;
  script: string;
  stylesheet: string;
}

const PREBUILT_FILES = { script: 'app.js', stylesheet: 'app.css', template: 'index.html' } as const;

const SOURCE_ENTRY = join('dashboard', 'main.ts');
const ONE_YEAR_S = 31_536_000;

/**
 * The dashboard's sources sit at the project root, beside `server/` when running from source
 * (tsx, Bun, tests) and beside `dist/` when running the `npm run build` output: look upwards from
 * this module rather than hard-coding either depth.
 */
export function findDashboardSources(from = dirname(fileURLToPath(import.meta.url))): string {
  let directory = from;
  for (let depth = 0; depth < 5; depth += 1) {
    if (existsSync(join(directory, SOURCE_ENTRY))) return join(directory, 'dashboard');
    const parent = dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  throw new Error(`dashboard sources (${SOURCE_ENTRY}) not found above ${from}`);
}

const contentVersion = (body: string) => createHash('sha256').update(body).digest('base64url').slice(0, 16);

/**
 * Bundles the browser code (TypeScript, the typed client, uPlot) and the styles (uPlot's included)
 * with esbuild's JS API, which runs on Node.js and Bun alike. `npm run build` calls it once to write
 * dist/dashboard; a service running from source (tsx, Bun, tests) calls it on the first dashboard
 * request. esbuild is a build tool (a dev dependency), imported only here.
 */
export async function bundleDashboard(sourceDir: string): Promise<DashboardFiles & { metafile: unknown }> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [
      { in: join(sourceDir, 'main.ts'), out: 'app' },
      { in: join(sourceDir, 'styles.css'), out: 'app' },
    ],
    bundle: true,
    write: false,
    // Kept in memory (write: false); esbuild still needs an outdir to name two entry points' outputs.
    outdir: join(sourceDir, 'out'),
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
    minify: true,
    legalComments: 'eof',
    charset: 'utf8',
    logLevel: 'silent',
    metafile: true,
  });
  const output = (extension: string): string => {
    const file = result.outputFiles.find((candidate) => candidate.path.endsWith(extension));
    if (!file) throw new Error(`dashboard build produced no ${extension} file`);
    return file.text;
  };
  const template = await readFile(join(sourceDir, 'index.html'), 'utf8');
  return { template, script: output('.js'), stylesheet: output('.css'), metafile: result.metafile };
}

/** Writes the bundled dashboard where the built server finds it (`npm run build`: dist/dashboard). */
export async function writeDashboardAssets(sourceDir: string, outDir: string): Promise<void> {
  const { metafile, ...files } = await bundleDashboard(sourceDir);
  await mkdir(outDir, { recursive: true });
  for (const [key, name] of Object.entries(PREBUILT_FILES)) await writeFile(join(outDir, name), files[key as keyof DashboardFiles]);
  // Read by `npm start` to rebuild only when a source is newer than the build.
  await writeFile(join(outDir, 'meta.json'), JSON.stringify(metafile));
}

async function readPrebuilt(dir: string): Promise<DashboardFiles> {
  const read = (name: string) => readFile(join(dir, name), 'utf8');
  return { script: await read(PREBUILT_FILES.script), stylesheet: await read(PREBUILT_FILES.stylesheet), template: await read(PREBUILT_FILES.template) };
}

/** Beside the built server (dist/server.mjs: dist/dashboard), when `npm run build` wrote it there. */
function findPrebuilt(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  const dir = join(from, 'dashboard');
  return existsSync(join(dir, PREBUILT_FILES.script)) ? dir : undefined;
}

function assemble(files: DashboardFiles): DashboardBundle {
  const script = { body: files.script, version: contentVersion(files.script) };
  const stylesheet = { body: files.stylesheet, version: contentVersion(files.stylesheet) };
  const html = files.template
    .replace('{{scriptUrl}}', `/dashboard/app.js?v=${script.version}`)
    .replace('{{stylesheetUrl}}', `/dashboard/app.css?v=${stylesheet.version}`);
  return { html, script, stylesheet };
}

/**
 * The page runs only its own bundled script and stylesheet and talks only to this service; uPlot
 * sets element styles through the CSSOM, which `style-src 'self'` allows, and draws on canvas.
 */
const dashboardSecurityHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  crossOriginResourcePolicy: 'same-origin',
  crossOriginEmbedderPolicy: false,
  // The page's URL never carries a key, but nothing about it needs to leave with a link either.
  referrerPolicy: 'no-referrer',
});

/**
 * `GET /dashboard` (the page), `/dashboard/app.js` and `/dashboard/app.css`, to mount with
 * `app.route('/dashboard', dashboardRoutes(...))`. The assets are loaded once, on first request
 * (read from the build output, or bundled from source), and kept in memory; a failure is retried on
 * the next request.
 */
export function dashboardRoutes({ logger, sourceDir, prebuiltDir = findPrebuilt() }: DashboardOptions) {
  const routes = new Hono();
  let bundle: Promise<DashboardBundle> | undefined;

  const loadFiles = (): Promise<DashboardFiles> => (prebuiltDir ? readPrebuilt(prebuiltDir) : bundleDashboard(sourceDir ?? findDashboardSources()));
  const loadBundle = (): Promise<DashboardBundle> => {
    bundle ??= loadFiles().then(assemble, (error: unknown) => {
      bundle = undefined;
      throw error;
    });
    return bundle;
  };

  const withBundle = (respond: (loaded: DashboardBundle, c: HonoContext) => Response | Promise<Response>) => async (c: HonoContext) => {
    let loaded: DashboardBundle;
    try {
      loaded = await loadBundle();
    } catch (error) {
      logger.error('dashboard build failed', { error });
      return c.text('The dashboard could not be built; see the service log.', 500);
    }
    return respond(loaded, c);
  };

  /**
   * Assets asked for with their current version are immutable for a year (the page names them by
   * content hash); any other request revalidates with the ETag.
   */
  const serveAsset = (asset: DashboardAsset, contentType: string, c: HonoContext): Response => {
    const etag = `"${asset.version}"`;
    c.header('ETag', etag);
    c.header('Cache-Control', c.req.query('v') === asset.version ? `public, max-age=${ONE_YEAR_S}, immutable` : 'no-cache');
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    c.header('Content-Type', contentType);
    return c.body(asset.body);
  };

  routes.use('*', dashboardSecurityHeaders);
  routes.get(
    '/',
    withBundle(({ html }, c) => {
      // Always revalidated, so a new build's asset versions are picked up at once.
      c.header('Cache-Control', 'no-cache');
      return c.html(html);
    }),
  );
  routes.get(
    '/app.js',
    withBundle(({ script }, c) => serveAsset(script, 'text/javascript; charset=utf-8', c)),
  );
  routes.get(
    '/app.css',
    withBundle(({ stylesheet }, c) => serveAsset(stylesheet, 'text/css; charset=utf-8', c)),
  );
  return routes;
}

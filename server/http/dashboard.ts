import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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
}

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
 * with esbuild's JS API, which runs on Node.js and Bun alike. esbuild is imported only here, on the
 * first dashboard request, so starting the service never pays for it.
 */
async function buildDashboard(sourceDir: string): Promise<DashboardBundle> {
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
  });
  const output = (extension: string): DashboardAsset => {
    const file = result.outputFiles.find((candidate) => candidate.path.endsWith(extension));
    if (!file) throw new Error(`dashboard build produced no ${extension} file`);
    return { body: file.text, version: contentVersion(file.text) };
  };
  const script = output('.js');
  const stylesheet = output('.css');
  const template = await readFile(join(sourceDir, 'index.html'), 'utf8');
  const html = template
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
 * `app.route('/dashboard', dashboardRoutes(...))`. The bundle is built once, on first request, and
 * kept in memory; a failed build is retried on the next request.
 */
export function dashboardRoutes({ logger, sourceDir }: DashboardOptions) {
  const routes = new Hono();
  let bundle: Promise<DashboardBundle> | undefined;

  const loadBundle = (): Promise<DashboardBundle> => {
    bundle ??= buildDashboard(sourceDir ?? findDashboardSources()).catch((error: unknown) => {
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
  routes.get('/app.js', withBundle(({ script }, c) => serveAsset(script, 'text/javascript; charset=utf-8', c)));
  routes.get('/app.css', withBundle(({ stylesheet }, c) => serveAsset(stylesheet, 'text/css; charset=utf-8', c)));
  return routes;
}

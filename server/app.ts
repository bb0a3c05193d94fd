import { trpcServer } from '@hono/trpc-server';
import { Scalar } from '@scalar/hono-api-reference';
import { Hono, type MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { secureHeaders } from 'hono/secure-headers';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Database } from '../db/database.ts';
import { checkReadiness } from '../db/readiness.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { buildOpenApiDocument, OPENAPI_BASE_PATH, OPENAPI_SECURITY_SCHEME } from './openapi.ts';
import { appRouter } from './routers/index.ts';
import type { Context, Services } from './trpc/context.ts';
import { faceOptions } from './http/face-options.ts';
import { createBodyBudget, decompressRequestBody, limitRequestBody, reserveRequestBody } from './http/request-body.ts';
import { createOpenApiRequestHandler } from './http/openapi-handler.ts';
import { createLeanIngestApiHandler } from './http/lean-ingest-api.ts';
import { leanIngestTrpc } from './http/lean-ingest-trpc.ts';
import { dashboardRoutes } from './http/dashboard.ts';
import { frontPageRoutes } from './http/front-page.ts';
import { otlpRoutes } from './ingest-adapters/otlp/routes.ts';
import { POSTHOG_BODY_PATHS, posthogRoutes } from './ingest-adapters/posthog/routes.ts';
import { segmentRoutes } from './ingest-adapters/segment/routes.ts';
import { bearerToken } from './services/keys/keys.ts';
import { SERVICE_VERSION } from './version.ts';

export interface AppDeps {
  /** Asked by /readyz only: procedures reach the database through `services`. */
  db: Database;
  config: Config;
  logger: Logger;
  /** The verbs procedures call (built by the composition root, or by a test). */
  services: Services;
  /** Version shown on the front page and in the OpenAPI document; the package's by default. */
  version?: string;
  /** True once shutdown has begun: new requests are turned away and connections not kept alive. */
  isDraining?: () => boolean;
}

const require = createRequire(import.meta.url);

// Unique per process start, then a counter: cheaper than a random UUID on every request.
const REQUEST_ID_PREFIX = Math.random().toString(36).slice(2, 8);
let requestCounter = 0;
const nextRequestId = () => {
  requestCounter += 1;
  return `${REQUEST_ID_PREFIX}-${requestCounter.toString(36)}`;
};
const SCALAR_BUNDLE_PATH = require.resolve('@scalar/api-reference/browser/standalone.js');

/**
 * Credentials a live stream carries in its URL (`connectionParams`), since a browser's EventSource
 * cannot send headers: a stream ticket (`{ ticket }`), or a read key bound to one workspace
 * (`{ apiKey }`; any other key is refused there, see `authorize`).
 */
function urlCredentials(params: Record<string, string | undefined> | null): Pick<Context, 'apiKey' | 'streamTicket' | 'credentialInUrl'> {
  const ticket = params?.['ticket'];
  if (typeof ticket === 'string' && ticket) return { apiKey: undefined, streamTicket: ticket, credentialInUrl: true };
  const key = params?.['apiKey'];
  return { apiKey: typeof key === 'string' && key ? key : undefined, credentialInUrl: true };
}

/** What middleware shares with handlers: the request's id. */
type AppEnv = { Variables: { requestId: string } };

export function createApp({ db, config, logger, services, version = SERVICE_VERSION, isDraining = () => false }: AppDeps) {
  const app = new Hono<AppEnv>();

  // Shutting down: requests already running finish; a request arriving on a kept-alive connection
  // is answered 503 (retry elsewhere) and every response closes its connection, so the server can
  // close instead of serving busy keep-alive clients until the shutdown timeout.
  app.use('*', async (c, next) => {
    if (isDraining()) {
      return c.json({ error: { code: 'SERVICE_UNAVAILABLE', message: 'The service is shutting down; retry on another instance' } }, 503, {
        'Retry-After': '1',
        Connection: 'close',
      });
    }
    await next();
    if (isDraining()) c.header('Connection', 'close');
  });
  const openApiDocument = buildOpenApiDocument(appRouter, { version });
  let scalarBundle: Promise<string> | undefined;

  const contextFor = (id: string, authorization: string | undefined, fromUrl?: Pick<Context, 'apiKey' | 'streamTicket' | 'credentialInUrl'>): Context => ({
    config,
    services,
    logger,
    requestId: id,
    apiKey: bearerToken(authorization),
    ...fromUrl,
  });

  // Request ids: the caller's X-Request-Id when it sent a sane one, else a new one. Returned on
  // error responses (where support needs it) and in every log line.
  app.use('*', async (c, next) => {
    const incoming = c.req.header('x-request-id');
    c.set('requestId', incoming && incoming.length <= 128 && /^[\w\-=.]+$/.test(incoming) ? incoming : nextRequestId());
    await next();
    if (c.res.status >= 400) {
      c.res.headers.set('X-Request-Id', c.get('requestId'));
      if (c.res.status >= 500) logger.warn('request failed', { requestId: c.get('requestId'), method: c.req.method, path: c.req.path, status: c.res.status });
    }
  });

  // Security headers on the HTML pages; JSON answers need none of them, and setting headers on
  // every ingest response measurably slowed the hot path.
  const htmlSecurityHeaders = secureHeaders({
    // The explorer's page carries Scalar's inline configuration and styles; everything it loads
    // comes from this service.
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'", "'unsafe-inline'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      fontSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      frameAncestors: ["'none'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
    },
    crossOriginResourcePolicy: 'same-origin',
    crossOriginEmbedderPolicy: false,
  });
  app.use('/docs', htmlSecurityHeaders);
  app.use('/docs/*', htmlSecurityHeaders);

  // Browsers send events from other origins: allow them (all by default, or the configured list).
  // Keys travel in the Authorization header, never in cookies, so no credentials mode is needed.
  // Requests without an Origin header are not from a browser and skip the CORS work.
  const corsPolicy = cors({
    origin: config.corsOrigins === '*' ? '*' : config.corsOrigins,
    allowMethods: ['GET', 'POST', 'OPTIONS'],
    // x-retry-count: analytics-next marks its retries with it, and a preflight refusing it would stop them.
    allowHeaders: ['authorization', 'content-type', 'content-encoding', 'trpc-accept', 'x-trpc-source', 'last-event-id', 'x-retry-count'],
    exposeHeaders: ['retry-after', 'x-request-id'],
    maxAge: 600,
  });
  const corsForBrowsers: MiddlewareHandler = (c, next) => (c.req.header('origin') ? corsPolicy(c, next) : next());
  app.use('/trpc/*', corsForBrowsers);
  app.use('/api/*', corsForBrowsers);

  app.onError((error, c) => {
    logger.error('unhandled request error', { requestId: c.get('requestId'), path: c.req.path, error });
    return c.json({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: `No route for ${c.req.method} ${c.req.path}` } }, 404));

  // One line per request, with its id, when debugging; failures always. Never headers: they carry keys.
  if (config.logLevel === 'debug') {
    app.use('*', async (c, next) => {
      const started = performance.now();
      await next();
      logger.debug('request', {
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    });
  }

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/metrics', async (c) => {
    services.metrics.rateLimitFallback.set(services.rateLimiter.store() === 'memory-fallback' ? 1 : 0);
    // Read at scrape time (one Redis round trip with the Redis bus); left as it was if the bus cannot answer.
    const replayWindow = await services.live.windowSize().catch(() => undefined);
    if (replayWindow) {
      services.metrics.liveReplayWindowBytes.set(replayWindow.bytes);
      services.metrics.liveReplayWindowEvents.set(replayWindow.events);
    }
    c.header('Content-Type', services.metrics.registry.contentType);
    return c.body(await services.metrics.registry.metrics());
  });
  app.get('/readyz', async (c) => {
    const readiness = await checkReadiness(db, { timeoutMs: config.readyCheckTimeoutMs });
    return readiness.ready ? c.json({ status: 'ready' }) : c.json({ status: 'not_ready', reason: readiness.reason }, 503, { 'Retry-After': '2' });
  });

  const limitBody = limitRequestBody({
    maxBytes: config.limits.maxBodyBytes,
    onTooLarge: (c) => c.json({ error: { code: 'PAYLOAD_TOO_LARGE', message: `Request body exceeds ${config.limits.maxBodyBytes} bytes` } }, 413),
  });

  const inflateBody = decompressRequestBody({ maxBytes: config.limits.maxBodyBytes });

  // One budget for both faces: the bytes concurrent calls hold (bodies, the events parsed from them,
  // events waiting for their commit) stay bounded whatever the number of connections. Mounted
  // before the size limit, which reads a chunked body whole before passing it on.
  const reserveBody = reserveRequestBody({
    budget: createBodyBudget(config.limits.maxInflightBodyBytes),
    maxBodyBytes: config.limits.maxBodyBytes,
    onBusy: (c) => c.json({ error: { code: 'SERVICE_UNAVAILABLE', message: 'Too many request bodies in flight; retry shortly' } }, 503, { 'Retry-After': '1' }),
  });

  // The typed face: tRPC with superjson.
  app.use('/trpc/*', reserveBody, limitBody, inflateBody);
  // The two ingest procedures, answered by the same router without the generic adapter; every
  // other call falls through to it (ADR-010).
  if (config.leanIngestHandler) {
    app.use(
      '/trpc/*',
      leanIngestTrpc<AppEnv>({
        router: appRouter,
        endpoint: '/trpc',
        createContext: (c) => contextFor(c.get('requestId'), c.req.header('authorization')),
        maxBatchSize: config.maxTrpcBatchCalls,
        ...faceOptions('trpc', logger),
      }),
    );
  }
  app.use(
    '/trpc/*',
    trpcServer({
      router: appRouter,
      // @hono/trpc-server needs the full path prefix here.
      // @see https://github.com/honojs/middleware/tree/main/packages/trpc-server
      endpoint: '/trpc',
      // Browsers' EventSource cannot send headers, so a live stream may carry a stream ticket (or a
      // bound read key) in the subscription link's connectionParams instead.
      createContext: (options, c) =>
        contextFor(
          c.get('requestId'),
          c.req.header('authorization'),
          // Only for live streams: a credential in any other URL would end up in proxy logs for nothing.
          !c.req.header('authorization') && options.info.type === 'subscription' && options.info.calls.every((call) => call.path === 'telemetry.live')
            ? urlCredentials(options.info.connectionParams)
            : undefined,
        ) as unknown as Record<string, unknown>,
      // Each call in an HTTP batch is validated, authorised and rate-limited on its own; this caps
      // how many one request may carry.
      maxBatchSize: config.maxTrpcBatchCalls,
      ...faceOptions('trpc', logger),
    }),
  );

  // The plain-JSON face, generated from the same router.
  app.use(`${OPENAPI_BASE_PATH}/*`, reserveBody, limitBody, inflateBody);
  const openApiHandler = createOpenApiRequestHandler({
    endpoint: OPENAPI_BASE_PATH,
    router: appRouter,
    createContext: ({ requestId: id, authorization }) => contextFor(id, authorization),
    ...faceOptions('openapi', logger),
  });
  // POST /api/events and /api/events/batch answered by the same router without trpc-to-openapi's
  // per-request work; everything else falls through to it (ADR-010).
  const leanIngestApi = config.leanIngestHandler
    ? createLeanIngestApiHandler({
        endpoint: OPENAPI_BASE_PATH,
        router: appRouter,
        createContext: ({ requestId: id, authorization }) => contextFor(id, authorization),
        ...faceOptions('openapi', logger),
      })
    : undefined;
  app.all(`${OPENAPI_BASE_PATH}/*`, async (c) => {
    const context = { requestId: c.get('requestId'), authorization: c.req.header('authorization') };
    return (await leanIngestApi?.(c.req.raw, context)) ?? openApiHandler(c.req.raw, context);
  });

  // Foreign instrumentation (docs/ingest-adapters.md): OpenTelemetry exporters and Segment SDKs on
  // /v1, PostHog SDKs on their own paths. The same body bounds as every face; their records go
  // through telemetry.ingestBatch. Browser SDKs post from other origins.
  for (const path of ['/v1/*', ...POSTHOG_BODY_PATHS]) app.use(path, corsForBrowsers, reserveBody, limitBody, inflateBody);
  const adapterDeps = { config, services, logger };
  app.route('/', otlpRoutes(adapterDeps));
  app.route('/', segmentRoutes(adapterDeps));
  app.route('/', posthogRoutes(adapterDeps));

  // The front door: what this service is, where its pages are, and the first three steps.
  app.route('/', frontPageRoutes({ version }));

  // The dashboard: its own CSP (no inline code) and bundled assets, built on first request.
  app.route('/dashboard', dashboardRoutes({ logger }));
  // Routing is strict about the trailing slash; people type it anyway.
  app.get('/dashboard/', (c) => c.redirect('/dashboard', 301));

  app.get('/openapi.json', (c) => c.json(openApiDocument));
  app.get('/docs/standalone.js', async (c) => {
    scalarBundle ??= readFile(SCALAR_BUNDLE_PATH, 'utf8');
    c.header('Content-Type', 'text/javascript; charset=utf-8');
    c.header('Cache-Control', 'public, max-age=86400');
    return c.body(await scalarBundle);
  });
  app.get(
    '/docs',
    Scalar({
      url: '/openapi.json',
      pageTitle: 'Telemetry service API',
      // Served by this service: no CDN, nothing loaded from outside.
      cdn: '/docs/standalone.js',
      withDefaultFonts: false,
      // "Try it" sends the key as a bearer token without choosing an auth type first.
      authentication: { preferredSecurityScheme: OPENAPI_SECURITY_SCHEME },
      // Hosted features need scalar.com (blocked by the CSP, and no place for keys): the AI agent
      // (on by default on localhost), the toolbar's share and deploy, the separate API client.
      // Options of @scalar/api-reference 1.46 that the 0.9 middleware's types predate.
      ...{ agent: { disabled: true }, showDeveloperTools: 'never', telemetry: false, hideClientButton: true },
    }),
  );

  return app;
}

export type App = ReturnType<typeof createApp>;

import { serve } from '@hono/node-server';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { startService } from './composition.ts';
import { DataDirectoryInUseError } from '../db/data-directory-lock.ts';

/** Starts the service on Node.js or Bun, whichever runs this file. */
async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const runtime = typeof Bun === 'undefined' ? 'node' : 'bun';

  // The port is bound before anything else is opened (database, Redis, the PGlite data directory):
  // a port in use ends the start with one line, and nothing was touched. Until the service is
  // ready, requests are answered 503 with Retry-After.
  type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;
  let handle: Fetch = answerStarting;
  const fetch: Fetch = (request, env) => handle(request, env);

  let stopServer: () => Promise<void>;
  let boundPort: number;
  try {
    if (typeof Bun === 'undefined') {
      const server = serve({
        fetch,
        port: config.port,
        hostname: config.host,
        // Slow or stalled clients are cut off instead of holding a connection forever.
        serverOptions: { requestTimeout: config.requestTimeoutMs, headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: 1000 },
      });
      await new Promise<void>((resolve, reject) => {
        server.once('listening', () => resolve());
        server.once('error', reject);
      });
      const address = server.address();
      boundPort = typeof address === 'object' && address ? address.port : config.port;
      stopServer = () =>
        new Promise((resolve) => {
          // Stop accepting; let requests in progress finish; drop idle keep-alive connections.
          server.close(() => resolve());
          if ('closeIdleConnections' in server) server.closeIdleConnections();
        });
    } else {
      const server = Bun.serve({
        fetch,
        port: config.port,
        hostname: config.host,
        idleTimeout: Math.max(1, Math.min(255, Math.ceil(config.requestTimeoutMs / 1000))),
      });
      boundPort = server.port ?? config.port;
      stopServer = () => server.stop(false);
    }
  } catch (error) {
    process.stderr.write(`${listenFailure(error, config)}\n`);
    process.exit(1);
  }

  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService(config, logger);
  } catch (error) {
    await stopServer();
    throw error;
  }
  const { app } = service;
  handle = (request, env) => app.fetch(request, env);
  const urls = serviceUrls(config.host, boundPort);
  logger.info('listening', { runtime, ...urls, database: service.db.kind });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    const deadline = setTimeout(() => {
      logger.error('shutdown timed out; exiting with work unfinished', { timeoutMs: config.shutdownTimeoutMs });
      process.exit(1);
    }, config.shutdownTimeoutMs);
    service.beginShutdown();
    await stopServer();
    await service.close();
    clearTimeout(deadline);
    logger.info('stopped', { signal });
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * Where to open the service and its pages from this machine: a wildcard address (listening on every
 * interface) is reached as localhost.
 */
function serviceUrls(host: string, port: number) {
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${reachable}:${port}`;
  return { url, docs: `${url}/docs`, dashboard: `${url}/dashboard`, metrics: `${url}/metrics` };
}

function answerStarting(): Response {
  return new Response(JSON.stringify({ error: { code: 'SERVICE_UNAVAILABLE', message: 'The service is starting; retry shortly' } }), {
    status: 503,
    headers: { 'content-type': 'application/json', 'retry-after': '1' },
  });
}

/** One line saying why the port could not be bound and what to change. */
function listenFailure(error: unknown, config: Config): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const where = `${config.host}:${config.port}`;
  if (code === 'EADDRINUSE') return `Port ${config.port} is already in use (${where}): stop what holds it, or set PORT to another port`;
  if (code === 'EACCES') return `No permission to listen on port ${config.port} (${where}): set PORT to a port above 1023`;
  if (code === 'EADDRNOTAVAIL') return `Cannot listen on ${where}: this machine has no such address; set HOST (0.0.0.0 listens on every interface)`;
  return `Cannot listen on ${where}: ${error instanceof Error ? error.message : String(error)}; check PORT and HOST`;
}

main().catch((error: unknown) => {
  if (error instanceof DataDirectoryInUseError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(
    `${JSON.stringify({ level: 'error', msg: 'failed to start', error: error instanceof Error ? { message: error.message, stack: error.stack } : String(error) })}\n`,
  );
  process.exit(1);
});

import { serve } from '@hono/node-server';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { startService } from './composition.ts';

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
  const service = await startService(config, logger);
  const runtime = typeof Bun === 'undefined' ? 'node' : 'bun';

  let stopServer: () => Promise<void>;
  if (typeof Bun === 'undefined') {
    const server = serve({
      fetch: service.app.fetch,
      port: config.port,
      hostname: config.host,
      // Slow or stalled clients are cut off instead of holding a connection forever.
      serverOptions: { requestTimeout: config.requestTimeoutMs, headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: 1000 },
    });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.info('listening', { runtime, url: `http://${config.host}:${port}`, database: service.db.kind });
    stopServer = () =>
      new Promise((resolve) => {
        // Stop accepting; let requests in progress finish; drop idle keep-alive connections.
        server.close(() => resolve());
        if ('closeIdleConnections' in server) server.closeIdleConnections();
      });
  } else {
    const server = Bun.serve({
      fetch: service.app.fetch,
      port: config.port,
      hostname: config.host,
      idleTimeout: Math.max(1, Math.min(255, Math.ceil(config.requestTimeoutMs / 1000))),
    });
    logger.info('listening', { runtime, url: `http://${config.host}:${server.port}`, database: service.db.kind });
    stopServer = () => server.stop(false);
  }

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

main().catch((error: unknown) => {
  process.stderr.write(
    `${JSON.stringify({ level: 'error', msg: 'failed to start', error: error instanceof Error ? { message: error.message, stack: error.stack } : String(error) })}\n`,
  );
  process.exit(1);
});

import { serve as serveNode } from '@hono/node-server';
import type { Hono } from 'hono';

/** Serves a Hono app on Node.js or Bun, whichever runs this file, on PORT. */
export function serveApp(app: Hono, port: number) {
  if (typeof Bun === 'undefined') {
    serveNode({ fetch: app.fetch, port, hostname: '127.0.0.1' });
  } else {
    Bun.serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
  }
  process.stdout.write(`listening on ${port}\n`);
}

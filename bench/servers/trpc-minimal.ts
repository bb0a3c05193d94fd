/**
 * The tRPC ceiling: the smallest tRPC v11 router (superjson, one zod-validated mutation, no
 * database) mounted on Hono with @hono/trpc-server, as the service is. Whatever the service does
 * beyond this is our own cost; this itself is the framework's.
 */
import { trpcServer } from '@hono/trpc-server';
import { initTRPC } from '@trpc/server';
import { Hono } from 'hono';
import { randomUUID } from 'node:crypto';
import superjson from 'superjson';
import { z } from 'zod';
import { serveApp } from './serve.ts';

const t = initTRPC.create({ transformer: superjson, isDev: false });
const router = t.router({
  telemetry: t.router({
    ingest: t.procedure
      .input(z.looseObject({ source: z.string(), eventType: z.string(), name: z.string() }))
      .mutation(() => ({ id: randomUUID(), createdAt: new Date() })),
  }),
});
const app = new Hono();
app.use('/trpc/*', trpcServer({ router, endpoint: '/trpc' }));
serveApp(app, Number(process.env.PORT ?? 3000));

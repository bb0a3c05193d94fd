/**
 * The HTTP ceiling: Hono parses the same JSON body and answers, touching no database. Mirrors the
 * tRPC envelope the service receives so the parsing work is the same.
 */
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { serveApp } from './serve.ts';

const app = new Hono();
app.post('/trpc/telemetry.ingest', async (c) => {
  const body = (await c.req.json().catch(() => undefined)) as { json?: { name?: string } } | undefined;
  if (typeof body?.json?.name !== 'string') return c.json({ error: 'bad input' }, 400);
  return c.json({ result: { data: { json: { id: randomUUID(), createdAt: new Date().toISOString() } } } });
});
serveApp(app, Number(process.env.PORT ?? 3000));

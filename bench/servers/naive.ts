/**
 * The naive baseline: Hono with one postgres.js INSERT per call, no batching, no ledger.
 * This is what "just write each event" costs.
 */
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import postgres from 'postgres';
import { serveApp } from './serve.ts';

const sql = postgres(process.env.DATABASE_URL!, { max: 10, onnotice: () => {} });
const app = new Hono();
app.post('/trpc/telemetry.ingest', async (c) => {
  const { json: event } = (await c.req.json()) as {
    json: { workspaceId?: string; source: string; eventType: string; name: string; metadata?: Record<string, unknown> };
  };
  const id = randomUUID();
  const createdAt = new Date();
  await sql`
    insert into telemetry.events (id, workspace_id, source, event_type, name, metadata, created_at, received_at)
    values (${id}, ${event.workspaceId ?? null}, ${event.source}, ${event.eventType}, ${event.name},
            ${event.metadata ? JSON.stringify(event.metadata) : null}::jsonb, ${createdAt.toISOString()}, now())`;
  return c.json({ result: { data: { json: { id, createdAt: createdAt.toISOString() } } } });
});
serveApp(app, Number(process.env.PORT ?? 3000));

import { Hono } from 'hono';
import type { AdapterDeps } from '../deliver.ts';

/** Segment's HTTP Tracking API (docs/ingest-adapters.md). */
export function segmentRoutes(_deps: AdapterDeps) {
  return new Hono<{ Variables: { requestId: string } }>();
}

import { Hono } from 'hono';
import type { AdapterDeps } from '../deliver.ts';

/** The request paths whose bodies PostHog SDKs send: the same body bounds as every face apply to them. */
export const POSTHOG_BODY_PATHS: readonly string[] = [];

/** PostHog's capture API (docs/ingest-adapters.md). */
export function posthogRoutes(_deps: AdapterDeps) {
  return new Hono<{ Variables: { requestId: string } }>();
}

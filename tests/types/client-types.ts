/**
 * Type tests: this file is never run, only typechecked by `npm run typecheck`. Each
 * `@ts-expect-error` must hold, or the typecheck fails; a router change that breaks a client's
 * valid call fails it too.
 */
import { createTelemetryClient, type EventInput, type FreeFormEventType, type TelemetryInputs } from '../../client/index.ts';
import * as webVitals from 'web-vitals';
import { createTracker } from '../../client/tracker.ts';
import { reportWebVitals } from '../../client/web-vitals.ts';

const client = createTelemetryClient({ url: 'http://localhost:3000' });

export async function validCalls() {
  const receipt = await client.telemetry.ingest.mutate({ source: 'web', eventType: 'ui.interaction', name: 'button.click' });
  const id: string = receipt.id;
  const at: Date = receipt.createdAt;

  await client.telemetry.ingest.mutate({ source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: 1200, unit: 'ms', route: '/' } });
  await client.telemetry.ingest.mutate({ source: 'backend', eventType: 'error', name: 'TypeError', metadata: { message: 'boom', stack: 'at x' } });
  await client.telemetry.ingest.mutate({ source: 'cli', eventType: 'checkout.completed', name: 'paid', metadata: { cents: 1999, items: [1, 2] } });
  await client.telemetry.ingest.mutate({ source: 'mobile', eventType: 'custom', name: 'x', workspaceId: null, createdAt: new Date() });

  const batch = await client.telemetry.ingestBatch.mutate({ sentAt: new Date(), events: [{ source: 'web', eventType: 'custom', name: 'a' }] });
  for (const r of batch.receipts) {
    if (r.status === 'rejected') {
      const path: string = r.path;
      const code: 'invalid_event' | 'created_at_out_of_range' | 'id_conflict' | 'workspace_forbidden' | 'workspace_required' | 'unknown_workspace' = r.code;
      void path;
      void code;
    } else {
      const createdAt: string = r.createdAt;
      void createdAt;
    }
  }

  // A dynamic event type names its free-form type explicitly.
  const dynamicType = `feature.${'flag'}` as FreeFormEventType;
  const dynamic: EventInput = { source: 'web', eventType: dynamicType, name: 'on' };
  await client.telemetry.ingest.mutate(dynamic);

  const input: TelemetryInputs['telemetry']['ingestBatch'] = { events: [dynamic] };
  void input;
  void id;
  void at;
}

export async function invalidCalls() {
  // @ts-expect-error a source outside web | mobile | backend | cli | extension
  await client.telemetry.ingest.mutate({ source: 'desktop', eventType: 'custom', name: 'x' });

  // @ts-expect-error name is required
  await client.telemetry.ingest.mutate({ source: 'web', eventType: 'custom' });

  // @ts-expect-error perf.metric needs a numeric value
  await client.telemetry.ingest.mutate({ source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: 'fast', unit: 'ms' } });

  // @ts-expect-error perf.metric needs a unit
  await client.telemetry.ingest.mutate({ source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: 12 } });

  // @ts-expect-error perf.metric needs metadata at all
  await client.telemetry.ingest.mutate({ source: 'web', eventType: 'perf.metric', name: 'LCP' });

  // @ts-expect-error error events need a message
  await client.telemetry.ingest.mutate({ source: 'web', eventType: 'error', name: 'TypeError', metadata: { stack: 'x' } });

  // @ts-expect-error metadata must be JSON (no functions)
  await client.telemetry.ingest.mutate({ source: 'web', eventType: 'custom', name: 'x', metadata: { f: () => 1 } });

  // @ts-expect-error unknown procedure
  await client.telemetry.ingestMany.mutate({ events: [] });

  // @ts-expect-error batch items are typed too
  await client.telemetry.ingestBatch.mutate({ events: [{ source: 'web', eventType: 'perf.metric', name: 'LCP', metadata: { value: '1', unit: 'ms' } }] });
}

// ---- The tracker takes the router's event shapes ----------------------------------------------

const tracker = createTracker({ url: 'http://localhost:3000', apiKey: 'key', source: 'web', storage: null });
tracker.track({ eventType: 'ui.click', name: 'signup.button' });
tracker.track({ eventType: 'perf.metric', name: 'LCP', metadata: { value: 1200, unit: 'ms' } });
// @ts-expect-error perf.metric needs a numeric value
tracker.track({ eventType: 'perf.metric', name: 'LCP', metadata: { value: 'slow', unit: 'ms' } });
// @ts-expect-error perf.metric needs metadata with value and unit
tracker.track({ eventType: 'perf.metric', name: 'LCP' });
// @ts-expect-error error events need a message
tracker.track({ eventType: 'error', name: 'TypeError', metadata: { stack: '' } });
// The web-vitals library's reporters fit the adapter as they are.
reportWebVitals(tracker, webVitals);

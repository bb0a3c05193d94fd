/**
 * The typed client of the telemetry service. The service's types come through router.ts only (as
 * types: no server code ends up in an app that uses it); the published package carries them
 * printed out, see scripts/build-client-package.ts. Optional options also accept `undefined`, so
 * apps compiled with `exactOptionalPropertyTypes` can pass `process.env.X` as they are.
 */
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, retryLink, splitLink, type HTTPHeaders, type TRPCClient, type TRPCLink } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from './router.ts';
import { classifyFailure, isRetryable, RETRY_RULES, retryDelayMs, type Backoff } from './retry-policy.ts';
import { clientTransformer } from './transformer.ts';

export type { AppRouter };
export type { EventInput, EventReceipt, FreeFormEventType, PerfMetricMetadata, ErrorMetadata, Source, JsonObject, JsonValue } from './router.ts';

export type TelemetryInputs = inferRouterInputs<AppRouter>;
export type TelemetryOutputs = inferRouterOutputs<AppRouter>;

export type FetchFunction = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

export interface TelemetryClientOptions {
  /** Base URL of the service, e.g. `http://localhost:3000` (the client adds `/trpc`). */
  url: string;
  /**
   * The API key, sent as `Authorization: Bearer` and never in a URL. A live stream (an EventSource
   * cannot send headers) opens with a short-lived stream ticket minted for each connection
   * (`telemetry.liveTicket`) in its connectionParams instead.
   */
  apiKey?: string | undefined;
  /** Extra headers for every call (not for live streams), or a function returning them. */
  headers?: HTTPHeaders | (() => HTTPHeaders | Promise<HTTPHeaders>) | undefined;
  /** A fetch implementation; defaults to the global one. */
  fetch?: FetchFunction | undefined;
  /**
   * An EventSource implementation for subscriptions, where the runtime has none (Node.js 20: pass
   * the `eventsource` package's export).
   */
  EventSource?: typeof globalThis.EventSource | undefined;
  /** Most procedure calls sent in one HTTP request. */
  maxBatchItems?: number | undefined;
  /**
   * Live streams resubscribe on their own (from the last event received) after a network error or
   * a 5xx, with backoff from 0.5 s to 4 s; refusals (401, 403, 404, 400, 429) end them with the
   * error. `false` ends them at the first error.
   */
  liveRetry?: boolean | undefined;
}

/** Live streams resubscribe soon: tRPC counts attempts over a stream's whole life, so the cap is low. */
const LIVE_BACKOFF: Backoff = { baseMs: 500, maxMs: 4000, floorShare: 0.5 };

export function createTelemetryClient(options: TelemetryClientOptions): TRPCClient<AppRouter> {
  const url = `${options.url.replace(/\/+$/, '')}/trpc`;
  const { apiKey } = options;
  const headers = async (): Promise<HTTPHeaders> => {
    const extra = typeof options.headers === 'function' ? await options.headers() : options.headers;
    return { ...(apiKey && { authorization: `Bearer ${apiKey}` }), ...extra };
  };
  /**
   * Each live connection gets a fresh ticket for the workspace it reads, minted with the key in
   * the header: the key itself never goes into a URL (proxies and access logs keep URLs).
   */
  const liveLink: TRPCLink<AppRouter> =
    (runtime) =>
    ({ op, next }) => {
      const workspaceId = (op.input as { workspaceId?: unknown } | undefined)?.workspaceId;
      const scope = typeof workspaceId === 'string' ? { workspaceId } : {};
      return httpSubscriptionLink({
        url,
        // tRPC v11: the transformer goes on each link.
        transformer: clientTransformer,
        ...(apiKey && { connectionParams: async () => ({ ticket: (await client.telemetry.liveTicket.mutate(scope)).ticket }) }),
        ...(options.EventSource && { EventSource: options.EventSource }),
      })(runtime)({ op, next });
    };
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (operation) => operation.type === 'subscription',
        true: [
          // Resubscribes with the last tracked event id, so nothing is missed across the gap (for
          // example when an instance shuts down and the next request lands on another one).
          ...(options.liveRetry === false
            ? []
            : [
                retryLink({
                  // An expired ticket is retried too: resubscribing mints a new one, and fails for good
                  // if the key itself is refused.
                  retry: ({ error }) => isRetryable(classifyFailure(error), RETRY_RULES.live),
                  // tRPC counts attempts over the stream's whole life (it never resets after a successful
                  // reconnect), so the delay stops growing early: a reconnect is never minutes late.
                  retryDelayMs: (attempt) => retryDelayMs(attempt, LIVE_BACKOFF),
                }),
              ]),
          liveLink,
        ],
        false: httpBatchLink({
          url,
          transformer: clientTransformer,
          maxItems: options.maxBatchItems ?? 20,
          headers,
          ...(options.fetch && { fetch: options.fetch }),
        }),
      }),
    ],
  });
  return client;
}

export type TelemetryClient = ReturnType<typeof createTelemetryClient>;

import type { TRPCError } from '@trpc/server';
import { getErrorShape, getHTTPStatusCode, getTRPCErrorFromUnknown } from '@trpc/server/unstable-core-do-not-import';
import type { Env, Context as HonoContext, MiddlewareHandler } from 'hono';
import type { AppRouter } from '../routers/index.ts';
import type { Context } from '../trpc/context.ts';
import { createCallerFactory } from '../trpc/init.ts';

/**
 * `telemetry.ingest` and `telemetry.ingestBatch` over tRPC's HTTP protocol (single calls, and
 * HTTP batches made only of them), answered by calling the same router through `createCaller`
 * instead of `@hono/trpc-server`'s fetch adapter (ADR-010): the body is read once, and there are
 * no Request shims, no per-call `AbortSignal.any` chains (no ingest procedure reads the signal)
 * and no content negotiation. Status, headers and body bytes are the adapter's: each is produced
 * by the same tRPC function (`getErrorShape`, `getHTTPStatusCode`) and the router's own
 * transformer. Whatever this does not recognise (another method, path, query or content type,
 * a streaming accept header, a body that does not parse or deserialize, a batch over the size
 * limit) goes on to the adapter untouched, which answers it as it always did; the body stays
 * readable there (Hono caches it).
 *
 * Kept in step with @trpc/server's `resolveResponse` (11.25): the contract test compares the two
 * answers byte for byte.
 */

type IngestPath = 'telemetry.ingest' | 'telemetry.ingestBatch';

const isIngestPath = (path: string): path is IngestPath => path === 'telemetry.ingest' || path === 'telemetry.ingestBatch';

/** What the adapter's `responseMeta` and `onError` options get, as far as these procedures use them. */
export interface LeanIngestTrpcOptions<E extends Env> {
  router: AppRouter;
  /** The adapter's endpoint, e.g. `/trpc`. */
  endpoint: string;
  /** The context the adapter's createContext builds for a mutation. */
  createContext: (c: HonoContext<E>) => Context;
  /** The adapter's maxBatchSize: a longer batch is left to it (it answers 400). */
  maxBatchSize: number;
  responseMeta?: (opts: { errors: readonly TRPCError[]; paths: readonly string[]; type: 'mutation' }) => {
    headers?: Record<string, string>;
    status?: number;
  };
  onError?: (opts: { error: TRPCError; path: string; input: unknown; ctx: Context; type: 'mutation'; req: Request }) => void;
}

type Outcome = { error: TRPCError; data?: undefined } | { error?: undefined; data: unknown };

/** The adapter's test for a JSON body: the media type before any parameter, case-insensitive. */
function isJsonContentType(contentType: string | undefined): boolean {
  return contentType?.toLowerCase().split(';', 1)[0]?.trim() === 'application/json';
}

/** The procedure paths a URL names, when they are all ingest procedures and the query is one this handler knows. */
function ingestCallsOf(url: string, prefix: string): { paths: IngestPath[]; isBatch: boolean } | undefined {
  const pathStart = url.indexOf('/', url.indexOf('//') + 2);
  if (pathStart === -1 || !url.startsWith(prefix, pathStart)) return undefined;
  const queryStart = url.indexOf('?', pathStart);
  const named = url.slice(pathStart + prefix.length, queryStart === -1 ? undefined : queryStart);
  const query = queryStart === -1 ? '' : url.slice(queryStart + 1);
  // Anything else in the query (connectionParams, a fragment, ...) is the adapter's to judge.
  if (query !== '' && query !== 'batch=1') return undefined;
  const isBatch = query === 'batch=1';
  // Percent-encoded or otherwise unusual names fail this exact match and fall through.
  const paths = isBatch ? named.split(',') : [named];
  return paths.every(isIngestPath) ? { paths, isBatch } : undefined;
}

/** Deserialized inputs by call, as the adapter's `getRawInput` would give them; undefined when it would fail. */
function inputsOf(body: unknown, callCount: number, isBatch: boolean, deserialize: (input: unknown) => unknown): unknown[] | undefined {
  try {
    if (!isBatch) return [deserialize(body)];
    // The adapter refuses a batch whose body is not an object (400): let it.
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
    const inputs: unknown[] = new Array(callCount);
    for (let index = 0; index < callCount; index += 1) {
      const input = (body as Record<number, unknown>)[index];
      if (input !== undefined) inputs[index] = deserialize(input);
    }
    return inputs;
  } catch {
    // Refused input (malformed superjson, shared references, ...): the adapter answers it, through
    // the procedure, as it always has.
    return undefined;
  }
}

export function leanIngestTrpc<E extends Env>(options: LeanIngestTrpcOptions<E>): MiddlewareHandler<E> {
  const { router, createContext, maxBatchSize, responseMeta, onError } = options;
  const config = router._def._config;
  const { deserialize } = config.transformer.input;
  const { serialize } = config.transformer.output;
  const createCaller = createCallerFactory(router);
  const prefix = `${options.endpoint.replace(/\/+$/, '')}/`;

  return async (c, next) => {
    if (c.req.method !== 'POST') return next();
    const calls = ingestCallsOf(c.req.url, prefix);
    if (!calls || (calls.isBatch && calls.paths.length > maxBatchSize)) return next();
    // Streaming answers (jsonl) and other media types are the adapter's.
    if (!isJsonContentType(c.req.header('content-type')) || c.req.header('trpc-accept') !== undefined) return next();
    if (c.req.header('accept')?.includes('application/jsonl')) return next();

    let text: string;
    let body: unknown;
    try {
      text = await c.req.text();
      // An empty body is an odd call (no input at all): the adapter's.
      if (text === '') return next();
      body = JSON.parse(text);
    } catch {
      return next();
    }
    const { paths, isBatch } = calls;
    const inputs = inputsOf(body, paths.length, isBatch, deserialize);
    if (!inputs) return next();

    const ctx = createContext(c);
    const caller = createCaller(ctx);
    const call = async (path: IngestPath, input: unknown): Promise<Outcome> => {
      try {
        // Input is validated by the procedure itself; the cast only hands it over.
        const data = path === 'telemetry.ingest' ? await caller.telemetry.ingest(input as never) : await caller.telemetry.ingestBatch(input as never);
        return { data };
      } catch (cause) {
        const error = getTRPCErrorFromUnknown(cause);
        onError?.({ error, path, input, ctx, type: 'mutation', req: c.req.raw });
        return { error };
      }
    };
    const outcomes = isBatch ? await Promise.all(paths.map((path, index) => call(path, inputs[index]))) : [await call(paths[0] as IngestPath, inputs[0])];

    // The adapter's response: untransformed items decide the status, transformed ones are the body.
    const untransformed = outcomes.map(({ error, data }, index) =>
      error ? { error: getErrorShape({ config, ctx, error, input: inputs[index], path: paths[index], type: 'mutation' }) } : { result: { data } },
    );
    const errors = outcomes.map((outcome) => outcome.error);
    let status = getHTTPStatusCode(untransformed as never, errors);
    const headers: Record<string, string> = { vary: 'trpc-accept, accept', 'content-type': 'application/json' };
    const meta = responseMeta?.({ errors: errors.filter((error) => error !== undefined), paths, type: 'mutation' });
    for (const [name, value] of Object.entries(meta?.headers ?? {})) {
      const key = name.toLowerCase();
      headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
    }
    if (meta?.status) status = meta.status;
    const items = untransformed.map((item) => ('error' in item ? { error: serialize(item.error) } : { result: { data: serialize(item.result.data) } }));
    return new Response(JSON.stringify(isBatch ? items : items[0]), { status, headers });
  };
}

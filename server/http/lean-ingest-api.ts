import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { getErrorShape } from '@trpc/server/unstable-core-do-not-import';
import type { AppRouter } from '../routers/index.ts';
import type { Context } from '../trpc/context.ts';
import { createCallerFactory } from '../trpc/init.ts';
import type { OpenApiRequestContext } from './openapi-handler.ts';

type AppCaller = ReturnType<AppRouter['createCaller']>;

/** The procedures served here, and how to reach each on a caller (typed, no string paths at call time). */
const LEAN_PROCEDURES = {
  'telemetry.ingest': (caller: AppCaller) => caller.telemetry.ingest,
  'telemetry.ingestBatch': (caller: AppCaller) => caller.telemetry.ingestBatch,
} as const satisfies Record<string, (caller: AppCaller) => (input: never) => Promise<unknown>>;

type LeanProcedurePath = keyof typeof LEAN_PROCEDURES;

/** What trpc-to-openapi hands `responseMeta`, less what the plain-JSON face does not read (info). */
export interface LeanResponseMetaOptions {
  type: 'mutation';
  paths: string[];
  ctx: Context | undefined;
  data: unknown[];
  errors: TRPCError[];
  eagerGeneration: true;
}

export interface LeanIngestApiOptions {
  router: AppRouter;
  /** The face's path prefix (`/api`), as given to createOpenApiRequestHandler. */
  endpoint: string;
  createContext: (request: OpenApiRequestContext) => Context | Promise<Context>;
  responseMeta?: (options: LeanResponseMetaOptions) => { status?: number; headers?: Record<string, string | string[] | undefined> };
  onError?: (failure: { error: TRPCError; type: 'mutation'; path: string; input: unknown; ctx: Context | undefined; req: Request }) => void;
}

/** A handler of some requests: `undefined` leaves the request (body unread) to the next handler. */
export type LeanIngestApiHandler = (request: Request, context: OpenApiRequestContext) => Promise<Response | undefined>;

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

/**
 * `POST /api/events` and `POST /api/events/batch` (telemetry.ingest, telemetry.ingestBatch) answered
 * as trpc-to-openapi answers them, status, headers and bytes, without its per-request work: a
 * Request proxy and Node response shim, two URL parses, a route search, and a walk over the
 * procedure's Zod schema that builds new schemas on every call (its string coercion, a no-op for
 * these inputs). The call itself goes through the same router, middleware and error formatter.
 *
 * Everything else is left to the generic handler before the body is read: other paths or methods,
 * a content type other than JSON, and procedures whose input trpc-to-openapi would treat in a way
 * this handler does not reproduce (path parameters, merged inputs, coercible fields).
 * @see https://github.com/mcampa/trpc-to-openapi/blob/master/src/adapters/node-http/core.ts
 */
export function createLeanIngestApiHandler(options: LeanIngestApiOptions): LeanIngestApiHandler {
  const { router, endpoint, createContext, responseMeta, onError } = options;
  const createCaller = createCallerFactory(router);
  const routes = new Map<string, LeanProcedurePath>();
  for (const path of Object.keys(LEAN_PROCEDURES) as LeanProcedurePath[]) {
    const route = leanRouteOf(router, path);
    if (route) routes.set(`${endpoint}${route}`, path);
  }

  return async (request, context) => {
    if (request.method !== 'POST') return undefined;
    const path = routes.get(pathnameOf(request.url));
    if (path === undefined) return undefined;
    // trpc-to-openapi refuses (415) anything not starting with application/json; leave that to it.
    if (!request.headers.get('content-type')?.startsWith('application/json')) return undefined;

    let input: Record<string, unknown> | undefined;
    let ctx: Context | undefined;
    let data: unknown;
    try {
      let body: unknown;
      try {
        body = JSON.parse(await request.text());
      } catch (cause) {
        throw new TRPCError({ code: 'PARSE_ERROR', message: 'Failed to parse request body', cause });
      }
      // trpc-to-openapi's input: the body's own fields spread into a new object (an array or a
      // string spreads by index, anything else to {}), then the path parameters (none here).
      input = { ...(body as Record<string, unknown>) };
      ctx = await createContext(context);
      data = await LEAN_PROCEDURES[path](createCaller(ctx))(input as never);
      const meta = responseMeta?.({ type: 'mutation', paths: [path], ctx, data: [data], errors: [], eagerGeneration: true });
      return jsonResponse(meta?.status ?? 200, meta?.headers, JSON.stringify(data));
    } catch (cause) {
      const error = errorFromUnknown(cause);
      onError?.({ error, type: 'mutation', path, input, ctx, req: request });
      const meta = responseMeta?.({ type: 'mutation', paths: [path], ctx, data: [data], errors: [error], eagerGeneration: true });
      const shape = getErrorShape({ config: router._def._config, error, type: 'mutation', path, input, ctx });
      const isInputValidationError = error.code === 'BAD_REQUEST' && error.cause instanceof Error && error.cause.name === 'ZodError';
      const body = {
        ...shape,
        message: isInputValidationError ? 'Input validation failed' : (shape?.message ?? error.message ?? 'An error occurred'),
        code: error.code,
        issues: isInputValidationError ? (error.cause as Error & { issues: unknown }).issues : undefined,
      };
      return jsonResponse(meta?.status ?? getHTTPStatusCodeFromError(error), meta?.headers, JSON.stringify(body));
    }
  };
}

/**
 * The request path trpc-to-openapi would route to `path`, or undefined when this handler cannot
 * answer it exactly as trpc-to-openapi does. Checked once, when the handler is built.
 */
function leanRouteOf(router: AppRouter, path: LeanProcedurePath): string | undefined {
  const procedures = router._def.procedures as unknown as Record<string, OpenApiProcedure>;
  const openapi = procedures[path]?._def.meta?.openapi;
  if (!openapi || openapi.enabled === false || openapi.method !== 'POST' || /\{.+?\}/.test(openapi.path)) return undefined;
  const route = normalizePath(openapi.path);
  // trpc-to-openapi takes the first POST procedure whose path pattern matches, in router order.
  const first = Object.entries(procedures).find(
    ([, procedure]) =>
      procedure._def.type !== 'subscription' &&
      procedure._def.meta?.openapi?.method === 'POST' &&
      procedure._def.meta.openapi.enabled !== false &&
      pathPattern(normalizePath(procedure._def.meta.openapi.path)).test(route),
  );
  if (first?.[0] !== path) return undefined;
  const inputs = procedures[path]?._def.inputs ?? [];
  const [input] = inputs;
  if (inputs.length !== 1 || !isUncoercibleObject(input)) return undefined;
  return route;
}

interface OpenApiProcedure {
  _def: {
    type: string;
    inputs: unknown[];
    meta?: { openapi?: { method: string; path: string; enabled?: boolean } };
  };
}

/** trpc-to-openapi's path normalisation: one leading slash, no trailing one. */
function normalizePath(path: string): string {
  return `/${path.replace(/^\/|\/$/g, '')}`;
}

/** trpc-to-openapi's route pattern: `{name}` parameters, case-insensitive. */
function pathPattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/\{(.+?)\}/g, (_, key: string) => `(?<${key}>[^/]+)`)}$`, 'i');
}

interface ZodLike {
  _zod?: { def?: { type?: string; innerType?: unknown; element?: unknown; getter?: () => unknown; in?: unknown; out?: unknown; shape?: unknown } };
  shape?: Record<string, unknown>;
}

const kindOf = (schema: unknown) => (schema as ZodLike | undefined)?._zod?.def?.type;

/** Wrappers trpc-to-openapi looks through before deciding whether a field is coercible. */
function unwrapped(schema: unknown): unknown {
  const def = (schema as ZodLike | undefined)?._zod?.def;
  switch (def?.type) {
    case 'array':
      return unwrapped(def.element);
    case 'nullable':
    case 'optional':
    case 'default':
    case 'prefault':
      return unwrapped(def.innerType);
    case 'lazy':
      return def.getter ? unwrapped(def.getter()) : schema;
    default:
      return schema;
  }
}

/**
 * True when the input is an object schema with no field trpc-to-openapi would switch to coercion
 * (numbers, booleans, bigints, dates, at any depth of nested objects). Its per-request walk over
 * such a schema changes nothing, so skipping it keeps its answers. Conservative: an unrecognised
 * top level is refused, and the route is left to trpc-to-openapi.
 */
function isUncoercibleObject(schema: unknown): boolean {
  if (kindOf(schema) !== 'object') return false;
  return Object.values((schema as ZodLike).shape ?? {}).every((field) => {
    const inner = unwrapped(field);
    const kind = kindOf(inner);
    if (kind === 'number' || kind === 'boolean' || kind === 'bigint' || kind === 'date') return false;
    return kind === 'object' ? isUncoercibleObject(inner) : true;
  });
}

/** trpc-to-openapi's `getErrorFromUnknown`: anything but a TRPCError is an internal error. */
function errorFromUnknown(cause: unknown): TRPCError {
  if (cause instanceof Error && cause.name === 'TRPCError') return cause as TRPCError;
  const error = new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error', cause: cause instanceof Error ? cause : undefined });
  if (cause instanceof Error && cause.stack) error.stack = cause.stack;
  return error;
}

/** The path of an absolute request URL, without parsing the whole URL. */
function pathnameOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const query = url.indexOf('?', start);
  const fragment = url.indexOf('#', start);
  const end = query < 0 ? fragment : fragment < 0 ? query : Math.min(query, fragment);
  return end < 0 ? url.slice(start) : url.slice(start, end);
}

/** As trpc-to-openapi sends it: `Content-Type: application/json`, then responseMeta's headers over it. */
function jsonResponse(status: number, extra: Record<string, string | string[] | undefined> | undefined, body: string): Response {
  if (!extra || Object.keys(extra).length === 0) return new Response(body, { status, headers: JSON_HEADERS });
  const headers = new Headers(JSON_HEADERS);
  for (const [key, value] of Object.entries(extra)) {
    if (typeof value === 'string') headers.set(key, value);
    else if (value !== undefined) for (const item of value) headers.append(key, item);
  }
  return new Response(body, { status, headers });
}

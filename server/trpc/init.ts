import { initTRPC } from '@trpc/server';
import { runWithCallDeadline } from '../../db/deadline.ts';
import type { OpenApiMeta } from 'trpc-to-openapi';
import { DomainError } from '../errors.ts';
import type { KeyKind } from '../services/keys/schemas.ts';
import type { ApiKeyIdentity } from '../services/keys/keys.ts';
import { WorkspaceScope } from '../services/events/schemas.ts';
import type { Context } from './context.ts';
import { procedureTransformer } from './transformer.ts';
import { domainCause, inputIssues, INTERNAL_ERROR_MESSAGE, toTRPCError, withSummarizedIssues } from './errors.ts';

/** Procedure metadata: the OpenAPI route, and whether the call is exempt from the procedure deadline. */
export type TelemetryMeta = OpenApiMeta & {
  /** Operator jobs that may take minutes (retention run, erasure): no PROCEDURE_TIMEOUT_MS. */
  longRunning?: boolean;
};

const t = initTRPC
  .context<Context>()
  .meta<TelemetryMeta>()
  .create({
    // superjson, with procedure input held to plain data (see transformer.ts).
    transformer: procedureTransformer,
    // Never send stack traces, whatever NODE_ENV says.
    // @see https://trpc.io/docs/server/error-formatting
    isDev: false,
    // Live streams (SSE): a ping every 10 s keeps idle streams open through proxies, and tells the
    // client to reconnect (resuming from its last event id) after 30 s without a byte.
    // @see https://trpc.io/docs/server/subscriptions#configuring-sse
    sse: {
      ping: { enabled: true, intervalMs: 10_000 },
      client: { reconnectAfterInactivityMs: 30_000 },
    },
    errorFormatter({ shape, error }) {
      const invalid = inputIssues(error);
      const domain = domainCause(error);
      const issues = invalid ?? (domain?.path !== undefined ? [{ path: domain.path, message: domain.message }] : undefined);
      const first = issues?.[0];
      const message =
        error.code === 'INTERNAL_SERVER_ERROR'
          ? INTERNAL_ERROR_MESSAGE
          : invalid && first
            ? `Invalid input at "${first.path || '(root)'}": ${first.message}`
            : shape.message;
      return {
        message,
        code: shape.code,
        data: {
          code: shape.data.code,
          httpStatus: shape.data.httpStatus,
          ...(shape.data.path !== undefined && { path: shape.data.path }),
          ...(issues && { issues }),
          ...(domain?.reason && { reason: domain.reason }),
          ...(domain?.retryAfterSeconds !== undefined && { retryAfterSeconds: domain.retryAfterSeconds }),
        },
      };
    },
  });

/**
 * Around every procedure: maps errors once (domain errors to their codes, unknown ones to a
 * logged, generic 500) and records the call's duration and outcome.
 */
const observeAndMapErrors = t.middleware(async ({ ctx, next, path, type, meta }) => {
  const started = performance.now();
  let result: Awaited<ReturnType<typeof next>>;
  try {
    // A deadline for every call but live streams: a stalled database (or anything else) answers
    // a retryable 503 instead of holding the caller, and the call's read statements are cancelled
    // then (writes are shared by many calls and have their own deadline).
    result =
      type === 'subscription' || meta?.longRunning
        ? await next()
        : await runWithCallDeadline((deadline) => next({ ctx: { deadline } }), ctx.config.procedureTimeoutMs, deadlineExceeded);
  } catch (error) {
    ctx.services.metrics.procedureDuration.observe({ procedure: path, code: 'SERVICE_UNAVAILABLE' }, (performance.now() - started) / 1000);
    throw toTRPCError(error);
  }
  // tRPC wraps anything thrown that is not a TRPCError as INTERNAL_SERVER_ERROR with the original
  // as `cause`: map that cause (a DomainError gets its real code), log what stays internal.
  if (!result.ok && result.error.code === 'INTERNAL_SERVER_ERROR') {
    const mapped = toTRPCError(result.error.cause ?? result.error);
    if (mapped.code === 'INTERNAL_SERVER_ERROR') {
      ctx.logger.error('procedure failed', { path, requestId: ctx.requestId, error: result.error.cause ?? result.error });
    }
    result = { ...result, error: mapped };
  }
  // Invalid input: its issues summarised here, once, so both faces list each once and in words.
  if (!result.ok && result.error.code === 'BAD_REQUEST') result = { ...result, error: withSummarizedIssues(result.error) };
  ctx.services.metrics.procedureDuration.observe({ procedure: path, code: result.ok ? 'OK' : result.error.code }, (performance.now() - started) / 1000);
  return result;
});

/**
 * Errors thrown while a subscription streams happen after the middleware above has returned, so
 * they are mapped here, the same way. An AbortError passes as it is: tRPC then ends the stream
 * without a "done" message and the client reconnects.
 */
export async function* mapStreamErrors<T>(ctx: Context, path: string, stream: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
  try {
    yield* stream;
  } catch (error) {
    if (error instanceof Error && error.name === 'AbortError') throw error;
    const mapped = toTRPCError(error);
    if (mapped.code === 'INTERNAL_SERVER_ERROR') ctx.logger.error('stream failed', { path, requestId: ctx.requestId, error });
    throw mapped;
  }
}

const deadlineExceeded = () =>
  new DomainError('unavailable', 'The service could not answer in time; retry shortly', { retryAfterSeconds: 1, reason: 'deadline_exceeded' });

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Open to every caller (nothing but health-style procedures should use it). */
export const publicProcedure = t.procedure.use(observeAndMapErrors);

/**
 * Verifies the presented key (401 when missing, unknown, revoked or rotated away), checks its kind
 * (403; admin keys pass everywhere) and spends its rate-limit budget: one unit per event for ingest
 * calls (a batch of 500 costs 500), one per call otherwise; each call inside an HTTP batch counts
 * on its own. One function, so each procedure pays for one middleware, not three.
 */
async function authorize(ctx: Context, kinds: readonly KeyKind[], cost: number): Promise<ApiKeyIdentity> {
  const key = await identify(ctx);
  if (key.kind !== 'admin' && !kinds.includes(key.kind)) {
    throw new DomainError('forbidden', `This ${key.kind} key may not call this procedure`);
  }
  // URLs end up in proxy and access logs: only a key that can do no more than read one workspace
  // may travel there. A ticket (a read of one workspace, short-lived) passes as such a key.
  if (ctx.credentialInUrl && !(key.kind === 'read' && key.workspaceId)) {
    throw new DomainError(
      'forbidden',
      'Only a read key bound to one workspace may be sent in a URL (connectionParams). With this key, mint a stream ticket (telemetry.liveTicket) and send { ticket } instead',
    );
  }
  const policy = key.rateLimit ?? ctx.config.rateLimits[key.kind];
  // A bound key also spends from its workspace's ceiling, shared by all its keys of that kind.
  const shared = key.workspaceId ? await ctx.services.workspaceLimits.budgetFor(key.workspaceId, key.kind) : undefined;
  const decision = await ctx.services.rateLimiter.consume(key.id, cost, policy, shared);
  if (!decision.allowed) {
    ctx.services.metrics.rateLimitRefusals.inc({ kind: key.kind });
    const whose = decision.budget === 'workspace' ? "this key's workspace" : 'this key';
    const budget = decision.budget === 'workspace' && shared ? shared.policy : policy;
    if (decision.reason === 'over_budget') {
      throw new DomainError(
        'payload_too_large',
        `This call costs ${cost} units, more than ${whose}'s whole budget (${budget.eventsPerSecond}/s plus a burst of ${budget.burst}); split it`,
        { reason: 'over_rate_limit_budget' },
      );
    }
    throw new DomainError('rate_limited', `Rate limit exceeded for ${whose}; retry later`, {
      retryAfterSeconds: decision.retryAfterSeconds,
      reason: decision.budget === 'workspace' ? 'workspace_rate_limited' : 'rate_limited',
    });
  }
  return key;
}

/** The caller's key: from the Authorization header (or a URL's connectionParams), or a stream ticket's. */
async function identify(ctx: Context): Promise<ApiKeyIdentity> {
  if (ctx.streamTicket !== undefined) {
    const granted = await ctx.services.streamTickets.redeem(ctx.streamTicket);
    // The reason tells the typed client to mint a new ticket (an EventSource reconnects with its old URL).
    if (!granted)
      throw new DomainError('unauthorized', 'Invalid or expired stream ticket: mint a new one with telemetry.liveTicket', { reason: 'ticket_invalid' });
    return granted;
  }
  if (!ctx.apiKey) {
    throw new DomainError('unauthorized', 'Missing API key: send "Authorization: Bearer <key>"');
  }
  const key = await ctx.services.keys.authenticate(ctx.apiKey);
  if (!key) throw new DomainError('unauthorized', 'Unknown or revoked API key');
  return key;
}

function countEvents(rawInput: unknown): number {
  if (typeof rawInput === 'object' && rawInput !== null && Array.isArray((rawInput as { events?: unknown }).events)) {
    return Math.max(1, (rawInput as { events: unknown[] }).events.length);
  }
  return 1;
}

/** Writes events: ingest keys (and admin). `ctx.workspaceBinding` is the key's workspace, if bound. */
export const ingestProcedure = publicProcedure.use(async ({ ctx, next, getRawInput }) => {
  const key = await authorize(ctx, ['ingest'], countEvents(await getRawInput()));
  return next({ ctx: { key, workspaceBinding: key.workspaceId } });
});

/**
 * Reads events of exactly one workspace, `ctx.workspaceId`, resolved here and nowhere else: a key
 * bound to a workspace reads only that one (naming another is 403); an unbound admin key must name
 * one. Procedures built on it filter by `ctx.workspaceId`, never by their input.
 */
export const readProcedure = publicProcedure
  .use(async ({ ctx, next }) => next({ ctx: { key: await authorize(ctx, ['read'], 1) } }))
  .input(WorkspaceScope)
  .use(({ ctx, input, next }) => {
    const bound = ctx.key.workspaceId;
    if (bound && input.workspaceId && input.workspaceId !== bound) {
      throw new DomainError('forbidden', 'This key may not read that workspace');
    }
    const workspaceId = bound ?? input.workspaceId;
    if (!workspaceId) {
      throw new DomainError('invalid_input', 'Name the workspace to read: workspaceId is required for keys not bound to one', { path: 'workspaceId' });
    }
    // Reads stop with the call: past its deadline their statements are cancelled.
    const services = ctx.deadline ? { ...ctx.services, ...ctx.services.readsUntil(ctx.deadline) } : ctx.services;
    return next({ ctx: { workspaceId, services } });
  });

/** Key management and other operator actions: admin keys only. `ctx.adminScope` is null for unbound keys. */
export const adminProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const key = await authorize(ctx, ['admin'], 1);
  return next({ ctx: { key, adminScope: key.workspaceId } });
});

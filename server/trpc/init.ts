import { initTRPC } from '@trpc/server';
import superjson from 'superjson';
import type { OpenApiMeta } from 'trpc-to-openapi';
import type { Context } from './context.ts';
import { domainCause, INTERNAL_ERROR_MESSAGE, summarizeZodIssues, toTRPCError, zodCause } from './errors.ts';

const t = initTRPC
  .context<Context>()
  .meta<OpenApiMeta>()
  .create({
    transformer: superjson,
    // Never send stack traces, whatever NODE_ENV says.
    // @see https://trpc.io/docs/server/error-formatting
    isDev: false,
    errorFormatter({ shape, error }) {
      const zod = zodCause(error);
      const domain = domainCause(error);
      const issues = zod ? summarizeZodIssues(zod) : domain?.path !== undefined ? [{ path: domain.path, message: domain.message }] : undefined;
      const first = issues?.[0];
      const message =
        error.code === 'INTERNAL_SERVER_ERROR'
          ? INTERNAL_ERROR_MESSAGE
          : zod && first
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

/** Maps every error once: domain errors to their codes, unknown ones to a logged, generic 500. */
const errorMapping = t.middleware(async ({ ctx, next, path }) => {
  const result = await next();
  // tRPC wraps anything thrown that is not a TRPCError as INTERNAL_SERVER_ERROR with the original
  // as `cause`: map that cause (a DomainError gets its real code), log what stays internal.
  if (result.ok || result.error.code !== 'INTERNAL_SERVER_ERROR') return result;
  const mapped = toTRPCError(result.error.cause ?? result.error);
  if (mapped.code === 'INTERNAL_SERVER_ERROR') {
    ctx.logger.error('procedure failed', { path, requestId: ctx.requestId, error: result.error.cause ?? result.error });
  }
  return { ...result, error: mapped };
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Open to every caller; keys and scopes arrive with the access-control procedures. */
export const publicProcedure = t.procedure.use(errorMapping);
/** Procedures that write events. */
export const ingestProcedure = publicProcedure;

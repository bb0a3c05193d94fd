import { TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { ZodError } from 'zod';
import { isDatabaseUnavailable, isQueryCanceled, isTransientConflict } from '../../db/errors.ts';
import { databaseUnavailable, DomainError, type DomainErrorCode } from '../errors.ts';
import { formatPath } from '../services/events/schemas.ts';

const TRPC_CODE_BY_DOMAIN_CODE: Record<DomainErrorCode, TRPC_ERROR_CODE_KEY> = {
  invalid_input: 'BAD_REQUEST',
  not_found: 'NOT_FOUND',
  payload_too_large: 'PAYLOAD_TOO_LARGE',
  conflict: 'CONFLICT',
  unauthorized: 'UNAUTHORIZED',
  forbidden: 'FORBIDDEN',
  rate_limited: 'TOO_MANY_REQUESTS',
  unavailable: 'SERVICE_UNAVAILABLE',
};

export const INTERNAL_ERROR_MESSAGE = 'Internal server error';

/**
 * The one mapping from thrown errors to what a client sees. Domain errors keep their message; a
 * database that cannot be reached is a retryable 503 wherever it was met (key lookup, reads,
 * admin), and so is a transaction that kept losing to others (deadlocks) after its retries, or a
 * statement the database cancelled;
 * anything else unknown becomes a generic internal error (the caller logs the original).
 */
export function toTRPCError(error: unknown): TRPCError {
  if (error instanceof TRPCError) return error;
  if (!(error instanceof DomainError)) {
    if (isDatabaseUnavailable(error)) return toTRPCError(databaseUnavailable(error));
    if (isTransientConflict(error)) {
      return toTRPCError(
        new DomainError('unavailable', 'The database is busy with conflicting work; retry shortly', {
          retryAfterSeconds: 1,
          reason: 'write_conflict',
          cause: error,
        }),
      );
    }
    // A statement stopped by statement_timeout (the backstop behind a call's deadline) or by an
    // operator's cancel: the same answer as a call that ran out of time.
    if (isQueryCanceled(error)) {
      return toTRPCError(
        new DomainError('unavailable', 'The service could not answer in time; retry shortly', {
          retryAfterSeconds: 1,
          reason: 'deadline_exceeded',
          cause: error,
        }),
      );
    }
  }
  if (error instanceof DomainError) {
    return new TRPCError({ code: TRPC_CODE_BY_DOMAIN_CODE[error.code], message: error.message, cause: error });
  }
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: INTERNAL_ERROR_MESSAGE, cause: error });
}

export interface IssueSummary {
  path: string;
  message: string;
}

/** Zod issues as `{ path: 'events.0.metadata.value', message }`, for error bodies. */
export function summarizeZodIssues(error: ZodError): IssueSummary[] {
  return error.issues.slice(0, 20).map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

/** The domain error (if any) a tRPC error was made from. */
export function domainCause(error: TRPCError): DomainError | undefined {
  return error.cause instanceof DomainError ? error.cause : undefined;
}

export function zodCause(error: TRPCError): ZodError | undefined {
  return error.cause instanceof ZodError ? error.cause : undefined;
}

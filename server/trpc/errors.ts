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

/** Most issues one error body lists: enough to fix a request, bounded whatever was sent. */
const MAX_ISSUES = 20;

/**
 * Zod issues as `{ path: 'events.0.metadata.value', message }`, for error bodies: each issue once
 * (a union's branches and the fast validator's second opinion can say the same thing twice), a
 * union's failure as what its branches expected rather than "Invalid input", and messages in words:
 * Zod's own messages for formats quote the regular expression they test, which is internal detail
 * and tells a caller nothing.
 */
export function summarizeZodIssues(error: ZodError | readonly ZodIssue[]): IssueSummary[] {
  const summaries: IssueSummary[] = [];
  const seen = new Set<string>();
  for (const summary of error instanceof ZodError ? flattenIssues(error.issues, []) : flattenIssues(error, [])) {
    const key = `${summary.path}\u0000${summary.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    summaries.push(summary);
    if (summaries.length === MAX_ISSUES) break;
  }
  return summaries;
}

type ZodIssue = ZodError['issues'][number];

function* flattenIssues(issues: readonly ZodIssue[], prefix: readonly PropertyKey[]): Generator<IssueSummary> {
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Branches refused only for the value's type ("expected string", "expected number") merge
      // into one issue; a branch that took the type and failed inside says what failed there.
      const deeper = issue.errors.filter((branch) => !(branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].path.length === 0));
      if (deeper.length === 0) {
        const expected = [...new Set(issue.errors.map((branch) => (branch[0]?.code === 'invalid_type' ? String(branch[0].expected) : 'a value')))];
        const received = /received (\w+)$/.exec(issue.errors[0]?.[0]?.message ?? '')?.[1];
        yield { path: formatPath(path), message: `Invalid input: expected ${expected.join(' or ')}${received ? `, received ${received}` : ''}` };
      } else {
        for (const branch of deeper) yield* flattenIssues(branch, path);
      }
      continue;
    }
    yield { path: formatPath(path), message: readableMessage(issue) };
  }
}

/** Messages for formats in words, where Zod's default names only the format or quotes its regular expression. */
const FORMAT_MESSAGES: Partial<Record<string, string>> = {
  datetime: 'Expected an ISO 8601 date and time with a zone offset, e.g. 2026-11-30T09:30:00Z',
  uuid: 'Expected a UUID, e.g. 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61',
  regex: 'Not in the expected format',
};
const ZOD_DEFAULT_FORMAT_MESSAGE = /^Invalid (ISO datetime|UUID|string: must match pattern)/;

function readableMessage(issue: ZodIssue): string {
  if (issue.code === 'too_small' && issue.origin === 'string' && issue.minimum === 1 && issue.message.startsWith('Too small:')) return 'Must not be empty';
  if (issue.code !== 'invalid_format') return issue.message;
  const pattern = 'pattern' in issue && typeof issue.pattern === 'string' ? issue.pattern : undefined;
  const quotesPattern = pattern !== undefined && issue.message.includes(pattern);
  if (!quotesPattern && !ZOD_DEFAULT_FORMAT_MESSAGE.test(issue.message)) return issue.message;
  return FORMAT_MESSAGES[issue.format] ?? `Not a valid ${issue.format}`;
}

/**
 * The cause of a 400 for invalid input once its issues are summarised. trpc-to-openapi (and the
 * lean /api handler that answers as it does) copies the `issues` of a cause named "ZodError" into
 * the body beside the formatter's `data.issues`, Zod's raw issues with their regular expressions:
 * this cause keeps the name, so /api still answers "Input validation failed", but has no `issues`,
 * so the body lists each issue once, in `data.issues`.
 */
export class InputValidationError extends Error {
  constructor(
    readonly summary: IssueSummary[],
    /** The refusal as Zod gave it, for tests and logs on this side. */
    readonly zodError: ZodError,
  ) {
    super(summary[0] ? `Invalid input at "${summary[0].path || '(root)'}": ${summary[0].message}` : 'Invalid input');
    this.name = 'ZodError';
  }
}

/** A 400 for invalid input, its Zod issues summarised once for every face; any other error as it is. */
export function withSummarizedIssues(error: TRPCError): TRPCError {
  if (!(error.cause instanceof ZodError)) return error;
  const summary = summarizeZodIssues(error.cause);
  const cause = new InputValidationError(summary, error.cause);
  return new TRPCError({ code: error.code, message: cause.message, cause });
}

/** The issues of an invalid input, summarised. */
export function inputIssues(error: TRPCError): IssueSummary[] | undefined {
  // A response that failed its output schema is the service's fault: its issues stay internal.
  if (error.code !== 'BAD_REQUEST') return undefined;
  if (error.cause instanceof InputValidationError) return error.cause.summary;
  if (error.cause instanceof ZodError) return summarizeZodIssues(error.cause);
  return undefined;
}

/** The Zod refusal (if any) a tRPC error was made from, summarised or not. */
export function zodCause(error: TRPCError): ZodError | undefined {
  if (error.cause instanceof InputValidationError) return error.cause.zodError;
  return error.cause instanceof ZodError ? error.cause : undefined;
}

/** The domain error (if any) a tRPC error was made from. */
export function domainCause(error: TRPCError): DomainError | undefined {
  return error.cause instanceof DomainError ? error.cause : undefined;
}

/**
 * Domain errors: what went wrong in terms a caller can act on. They are mapped to tRPC/HTTP codes
 * in exactly one place (server/trpc/errors.ts); anything else is an internal error whose message
 * never leaves the process.
 */
export type DomainErrorCode = 'invalid_input' | 'not_found' | 'payload_too_large' | 'conflict' | 'unauthorized' | 'forbidden' | 'rate_limited' | 'unavailable';

export class DomainError extends Error {
  readonly code: DomainErrorCode;
  /** Dotted path of the offending input field, when there is one. */
  readonly path: string | undefined;
  /** A machine-readable reason inside the code, e.g. `created_at_out_of_range`. */
  readonly reason: string | undefined;
  /** Seconds after which a retry may succeed (rate limits, overload, outages). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: DomainErrorCode, message: string, details: { path?: string; reason?: string; retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DomainError';
    this.code = code;
    this.path = details.path;
    this.reason = details.reason;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/** The one answer to "the database cannot be reached": retryable, with a hint when to retry. */
export function databaseUnavailable(cause: unknown): DomainError {
  return new DomainError('unavailable', 'The database is unavailable; retry shortly', { retryAfterSeconds: 2, cause });
}

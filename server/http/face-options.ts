import type { TRPCError } from '@trpc/server';
import type { Logger } from '../logger.ts';
import { domainCause } from '../trpc/errors.ts';

/** The `Retry-After` value (whole seconds, at least 1) of an error that says when a retry may succeed. */
export function retryAfterHeader(error: TRPCError): string | undefined {
  const seconds = domainCause(error)?.retryAfterSeconds;
  return seconds === undefined ? undefined : String(Math.max(1, Math.ceil(seconds)));
}

/** `Retry-After` for errors that say when a retry may succeed (overload, outage, rate limit). */
export function retryAfterMeta({ errors }: { errors: readonly TRPCError[] }): { headers?: Record<string, string> } {
  for (const error of errors) {
    const value = retryAfterHeader(error);
    if (value !== undefined) return { headers: { 'Retry-After': value } };
  }
  return {};
}

/**
 * What both faces (/trpc and /api), through their adapters or the lean handler, answer alike:
 * `Retry-After` on errors that say when to retry, and internal errors logged with their cause
 * (the caller sees only a generic message).
 */
export function faceOptions(face: 'trpc' | 'openapi', logger: Logger) {
  return {
    responseMeta: retryAfterMeta,
    onError: ({ error, path }: { error: TRPCError; path: string | undefined }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR') logger.error(`${face} error`, { path, error: error.cause ?? error });
    },
  };
}

import { isNetworkFailure, isServiceError } from './errors.ts';

/** Answers the service gives while it is overloaded or briefly down: worth the same request again. */
const RETRYABLE_CODES = new Set(['TOO_MANY_REQUESTS', 'SERVICE_UNAVAILABLE', 'BAD_GATEWAY', 'GATEWAY_TIMEOUT']);

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

export function isRetryable(error: unknown): boolean {
  if (isNetworkFailure(error)) return true;
  return isServiceError(error) && error.data !== undefined && error.data !== null && RETRYABLE_CODES.has(error.data.code);
}

/**
 * How long to wait before retry number `attempt` (0-based), or undefined when the error is not
 * worth retrying or the retries are spent. Exponential with jitter, so many clients that failed
 * together do not come back together; never sooner than the service's `retryAfterSeconds`.
 */
export function retryDelayMs(error: unknown, attempt: number, policy: RetryPolicy, random: () => number = Math.random): number | undefined {
  if (attempt >= policy.retries || !isRetryable(error)) return undefined;
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  const jittered = exponential * (0.5 + random() / 2);
  const retryAfterSeconds = isServiceError(error) ? error.data?.retryAfterSeconds : undefined;
  return Math.round(Math.max(jittered, (retryAfterSeconds ?? 0) * 1000));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

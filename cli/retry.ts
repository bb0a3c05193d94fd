import { classifyFailure, isRetryable, RETRY_RULES, retryDelayMs, type Backoff } from '../client/retry-policy.ts';

export interface RetryPolicy extends Backoff {
  /** Retries after the first attempt. */
  retries: number;
}

/** At least half of each delay is always waited, so the retries span some time against a service that is briefly down. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 5, baseMs: 500, maxMs: 30_000, floorShare: 0.5 };

/**
 * How long to wait before retry number `attempt` (0-based), or undefined when the error is not
 * worth retrying (network errors, 429, 502, 503 and 504 are) or the retries are spent.
 */
export function cliRetryDelayMs(error: unknown, attempt: number, policy: RetryPolicy, random: () => number = Math.random): number | undefined {
  if (attempt >= policy.retries) return undefined;
  const failure = classifyFailure(error);
  if (!isRetryable(failure, RETRY_RULES.cli)) return undefined;
  return retryDelayMs(attempt + 1, policy, failure, random);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

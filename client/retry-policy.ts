/**
 * What a failed call says about itself, whether it is worth the same call again, and how long to
 * wait first: the one place the typed client (live resubscribe), the tracker, the CLI and the
 * dashboard read errors and back off. Each use passes its own rule and backoff parameters.
 */
import { TRPCClientError } from '@trpc/client';

/** An HTTP answer that was not a tRPC response (a proxy's error page, the service's body-size guard). */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

export interface CallFailure {
  /** The HTTP status of the answer; undefined when none came (network down, timeout, unreadable answer). */
  status: number | undefined;
  /** The tRPC error code (`TOO_MANY_REQUESTS`…), when the answer was a tRPC error. */
  code: string | undefined;
  /** The service's machine-readable reason (`ticket_invalid`…), when it gave one. */
  reason: string | undefined;
  /** How long the service asked to wait before the same call (its `retryAfterSeconds`). */
  retryAfterMs: number | undefined;
  /** The request never got an answer because of the network (refused, reset, name not found). */
  network: boolean;
  /** Why, as the network error code (ECONNREFUSED…) or the innermost cause's message. */
  networkReason: string | undefined;
  message: string;
}

interface ErrorData {
  httpStatus?: number;
  code?: string;
  reason?: string;
  retryAfterSeconds?: number;
}

const NETWORK_ERROR = /fetch failed|network|socket|terminated|other side closed|ECONN|ENOTFOUND|EAI_AGAIN/i;

/** Reads any thrown value: a tRPC error, a non-tRPC HTTP answer, or a failure before any answer. */
export function classifyFailure(error: unknown): CallFailure {
  const message = error instanceof Error ? error.message : String(error);
  const none = { status: undefined, code: undefined, reason: undefined, retryAfterMs: undefined, network: false, networkReason: undefined, message };
  if (error instanceof HttpStatusError) return { ...none, status: error.status };
  const data = error instanceof TRPCClientError ? ((error.data ?? undefined) as ErrorData | undefined) : undefined;
  // A tRPC error's status; else the status an EventSource saw (a 404, a proxy's 401); else that of
  // a response the client could not read as tRPC (a proxy's error page); else none (network).
  const status =
    error instanceof TRPCClientError
      ? (numberOrUndefined(data?.httpStatus) ??
        numberOrUndefined((error.cause as { code?: unknown } | undefined)?.code) ??
        numberOrUndefined((error.meta as { response?: { status?: unknown } } | undefined)?.response?.status))
      : undefined;
  const networkReason = status === undefined ? networkFailureReason(error) : undefined;
  const retryAfterSeconds = numberOrUndefined(data?.retryAfterSeconds);
  return {
    ...none,
    status,
    code: data?.code,
    reason: data?.reason,
    retryAfterMs: retryAfterSeconds === undefined ? undefined : retryAfterSeconds * 1000,
    network: data === undefined && error instanceof Error && NETWORK_ERROR.test(`${message} ${networkReason ?? ''}`),
    networkReason,
  };
}

/**
 * Why a request never reached the service: the network error code somewhere in the cause chain
 * (ECONNREFUSED, ENOTFOUND, …), else the innermost cause's message (fetch's own "bad port").
 */
export function networkFailureReason(error: unknown): string | undefined {
  let innermost: string | undefined;
  for (let cause = error, depth = 0; cause instanceof Error && depth < 6; cause = cause.cause, depth += 1) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    innermost = cause.message;
  }
  // An EventSource error carries no cause chain, only a message that may name the code.
  const codeInMessage = innermost?.match(/\b(E[A-Z_]{3,})\b/)?.[1];
  return codeInMessage ?? (innermost === 'fetch failed' ? undefined : innermost);
}

/** Which answers a use retries. */
export interface RetryRule {
  statuses: (status: number) => boolean;
  /** Reasons retried whatever the status (an expired stream ticket: a new one is minted). */
  reasons?: readonly string[];
  /**
   * A failure without an answer is retried when it is a known network error; with `anyUnanswered`
   * also when it is anything else (a timeout, an answer that could not be read).
   */
  anyUnanswered?: boolean;
}

export const RETRY_RULES = {
  /** Live streams: the network or the server, not the request (a 429 is a refusal to subscribe). */
  live: { statuses: (status) => status === 408 || status >= 500, reasons: ['ticket_invalid'], anyUnanswered: true },
  /**
   * The tracker holds events until the service has them: it retries everything but a refusal
   * (a 4xx other than 408 and 429); an answer that was no error at all counts as a lost one.
   */
  tracker: { statuses: (status) => status < 400 || status === 408 || status === 429 || status >= 500, anyUnanswered: true },
  /** The CLI retries what says "overloaded or briefly down"; a 500 is a bug a retry will not fix. */
  cli: { statuses: (status) => status === 429 || status === 502 || status === 503 || status === 504 },
} as const satisfies Record<string, RetryRule>;

export function isRetryable(failure: CallFailure, rule: RetryRule): boolean {
  if (failure.reason !== undefined && rule.reasons?.includes(failure.reason)) return true;
  if (failure.status === undefined) return failure.network || rule.anyUnanswered === true;
  return rule.statuses(failure.status);
}

export interface Backoff {
  /** The ceiling of the first retry's delay; it doubles with each retry up to `maxMs`. */
  baseMs: number;
  maxMs: number;
  /**
   * Share of the ceiling always waited: 0 is full jitter (anywhere from 0 to the ceiling), 0.5
   * waits at least half of it (a bounded number of retries then always spans some time).
   */
  floorShare?: number;
}

/**
 * The delay before retry number `retry` (1 for the first): exponential, capped, with jitter so
 * that clients that failed together do not come back together; never sooner than Retry-After.
 */
export function retryDelayMs(retry: number, backoff: Backoff, failure?: Pick<CallFailure, 'retryAfterMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, retry - 1));
  const floor = ceiling * (backoff.floorShare ?? 0);
  return Math.round(Math.max(floor + (ceiling - floor) * random(), failure?.retryAfterMs ?? 0));
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

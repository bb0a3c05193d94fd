import { TRPCClientError } from '@trpc/client';
import { describe, expect, it } from 'vitest';
import { classifyFailure, HttpStatusError, isRetryable, RETRY_RULES, retryDelayMs } from '../client/retry-policy.ts';

/** A tRPC error as the client builds it from a service's error answer. */
function serviceError(data: Record<string, unknown>): TRPCClientError<never> {
  return TRPCClientError.from({ error: { message: 'refused', code: -32600, data } }) as TRPCClientError<never>;
}

function networkError(code = 'ECONNREFUSED'): TRPCClientError<never> {
  const cause = Object.assign(new Error(`connect ${code}`), { code });
  return TRPCClientError.from(new TypeError('fetch failed', { cause })) as TRPCClientError<never>;
}

describe('classifyFailure', () => {
  it('reads the status, code, reason and Retry-After of a tRPC error', () => {
    expect(classifyFailure(serviceError({ code: 'TOO_MANY_REQUESTS', httpStatus: 429, retryAfterSeconds: 2, reason: 'rate' }))).toMatchObject({
      status: 429,
      code: 'TOO_MANY_REQUESTS',
      reason: 'rate',
      retryAfterMs: 2000,
      network: false,
    });
  });

  it('names the network error of a request that got no answer', () => {
    expect(classifyFailure(networkError())).toMatchObject({ status: undefined, network: true, networkReason: 'ECONNREFUSED' });
  });

  it('reads the status of an answer that was not tRPC', () => {
    expect(classifyFailure(new HttpStatusError(502))).toMatchObject({ status: 502, network: false });
  });

  it('treats anything else thrown as unanswered, but not as a known network error', () => {
    expect(classifyFailure(new DOMException('The operation timed out', 'TimeoutError'))).toMatchObject({ status: undefined, network: false });
  });
});

describe('retry rules', () => {
  const cases: Array<[string, unknown, { live: boolean; tracker: boolean; cli: boolean }]> = [
    ['network error', networkError(), { live: true, tracker: true, cli: true }],
    ['timeout (no answer)', new Error('The operation was aborted due to timeout'), { live: true, tracker: true, cli: false }],
    ['400', serviceError({ code: 'BAD_REQUEST', httpStatus: 400 }), { live: false, tracker: false, cli: false }],
    ['401', serviceError({ code: 'UNAUTHORIZED', httpStatus: 401 }), { live: false, tracker: false, cli: false }],
    [
      '401 expired stream ticket',
      serviceError({ code: 'UNAUTHORIZED', httpStatus: 401, reason: 'ticket_invalid' }),
      { live: true, tracker: false, cli: false },
    ],
    ['408', new HttpStatusError(408), { live: true, tracker: true, cli: false }],
    ['413', new HttpStatusError(413), { live: false, tracker: false, cli: false }],
    ['429', serviceError({ code: 'TOO_MANY_REQUESTS', httpStatus: 429 }), { live: false, tracker: true, cli: true }],
    ['500', serviceError({ code: 'INTERNAL_SERVER_ERROR', httpStatus: 500 }), { live: true, tracker: true, cli: false }],
    ['503', serviceError({ code: 'SERVICE_UNAVAILABLE', httpStatus: 503 }), { live: true, tracker: true, cli: true }],
  ];
  it.each(cases)('%s', (_name, error, expected) => {
    const failure = classifyFailure(error);
    expect({
      live: isRetryable(failure, RETRY_RULES.live),
      tracker: isRetryable(failure, RETRY_RULES.tracker),
      cli: isRetryable(failure, RETRY_RULES.cli),
    }).toEqual(expected);
  });
});

describe('retryDelayMs', () => {
  const backoff = { baseMs: 500, maxMs: 4000 };

  it('doubles the ceiling with each retry up to the maximum, with full jitter by default', () => {
    expect([1, 2, 3, 4, 5, 50].map((retry) => retryDelayMs(retry, backoff, undefined, () => 0.999_999))).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(retryDelayMs(3, backoff, undefined, () => 0)).toBe(0);
    expect(retryDelayMs(3, backoff, undefined, () => 0.5)).toBe(1000);
  });

  it('always waits the floor share of the ceiling', () => {
    expect(retryDelayMs(3, { ...backoff, floorShare: 0.5 }, undefined, () => 0)).toBe(1000);
    expect(retryDelayMs(3, { ...backoff, floorShare: 0.5 }, undefined, () => 0.5)).toBe(1500);
  });

  it('never retries sooner than the service asked', () => {
    expect(retryDelayMs(1, backoff, { retryAfterMs: 3000 }, () => 0.999)).toBe(3000);
    expect(retryDelayMs(4, backoff, { retryAfterMs: 100 }, () => 0.5)).toBe(2000);
  });
});

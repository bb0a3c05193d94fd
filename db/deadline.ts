import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * `work`, or a rejection with `timedOut()` if it has not settled within `ms`. The work itself goes
 * on (a query cannot be recalled this way); only the caller stops waiting. The timer is cleared
 * either way, so nothing is kept alive by it.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The deadline of the call being served: its signal aborts when the caller was answered 503. */
export interface CallDeadline {
  signal: AbortSignal;
}

// The deadline travels with the call's async context rather than through every service verb's
// parameters, so reads deep in a service stop with their caller without each verb passing it on.
const callDeadlines = new AsyncLocalStorage<CallDeadline>();

/**
 * `withDeadline` for a whole call: `work` runs with a deadline that reads can see
 * (`currentCallDeadline`), which aborts when the time is up, so their statements are cancelled
 * instead of running on for nobody.
 */
export function runWithCallDeadline<T>(work: () => Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  const controller = new AbortController();
  return withDeadline(callDeadlines.run({ signal: controller.signal }, work), ms, () => {
    const error = timedOut();
    controller.abort(error);
    return error;
  });
}

/** The deadline of the call this code serves, if it runs inside one. */
export function currentCallDeadline(): CallDeadline | undefined {
  return callDeadlines.getStore();
}

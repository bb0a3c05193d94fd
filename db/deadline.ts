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

/**
 * `withDeadline` for a whole call: `work` gets a signal that aborts when the time is up, so the
 * reads it passes it to are cancelled instead of running on for nobody. Passed explicitly rather
 * than through AsyncLocalStorage, which on Node 20 makes every promise of the process slower.
 */
export function runWithCallDeadline<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  const controller = new AbortController();
  return withDeadline(work(controller.signal), ms, () => {
    const error = timedOut();
    controller.abort(error);
    return error;
  });
}

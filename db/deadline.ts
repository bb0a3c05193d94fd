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

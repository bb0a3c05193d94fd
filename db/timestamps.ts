/**
 * The times the service stores: years 1 to 9999 (UTC). A `timestamptz` column itself holds 4714 BC
 * to 294276 AD, but times travel to PostgreSQL as ISO-8601 text (`toISOString`), and PostgreSQL
 * reads only four-digit years there: `-000001-…` and `+010000-…` are refused with SQLSTATE 22009,
 * and year 0 with 22008.
 */
export const STORABLE_TIME_RANGE = {
  // Not Date.UTC: it reads years 0 to 99 as 1900 to 1999.
  earliestMs: Date.parse('0001-01-01T00:00:00.000Z'),
  latestMs: Date.parse('9999-12-31T23:59:59.999Z'),
} as const;

/** True for a valid Date the service can store (not an Invalid Date, years 1 to 9999 UTC). */
export function isStorableTime(date: Date): boolean {
  const ms = date.getTime();
  return Number.isFinite(ms) && ms >= STORABLE_TIME_RANGE.earliestMs && ms <= STORABLE_TIME_RANGE.latestMs;
}

/**
 * `date.toISOString()`, remembered for the last Date object asked about: the events of one call
 * share their received time (and, sent without a time, their created time), so its text is written
 * once per call instead of once per event.
 */
export function lastIsoTime(): (date: Date) => string {
  let lastDate: Date | undefined;
  let lastIso = '';
  return (date) => {
    if (date !== lastDate) {
      lastDate = date;
      lastIso = date.toISOString();
    }
    return lastIso;
  };
}

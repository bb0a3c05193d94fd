import { z } from 'zod';

/**
 * Relative time ranges ("24h", "7d"): the last N minutes, hours, days or weeks up to now, asked
 * as `range` instead of `from` and `to` wherever a read takes a time range (events.list and every
 * statistic). Parsed here and only here; resolved against the service's clock when the call runs.
 */

const MINUTE_MS = 60_000;
export const RELATIVE_RANGE_UNIT_MS = { m: MINUTE_MS, h: 60 * MINUTE_MS, d: 1_440 * MINUTE_MS, w: 10_080 * MINUTE_MS } as const;
type RelativeRangeUnit = keyof typeof RELATIVE_RANGE_UNIT_MS;

/** Longest time range a statistics query may cover, relative or not; the longest relative range of events.list too. */
export const MAX_RANGE_DAYS = 400;
const MAX_RELATIVE_RANGE_MS = MAX_RANGE_DAYS * RELATIVE_RANGE_UNIT_MS.d;

const RELATIVE_RANGE_SYNTAX = /^(\d{1,6})([mhdw])$/;
const SYNTAX_MESSAGE = 'A relative range is a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): e.g. "30m", "24h", "7d", "2w"';

/** The length of a relative range in milliseconds, or why it is not one. */
export function parseRelativeRange(text: string): { ok: true; ms: number } | { ok: false; message: string } {
  const match = RELATIVE_RANGE_SYNTAX.exec(text);
  if (!match) return { ok: false, message: SYNTAX_MESSAGE };
  const amount = Number(match[1]);
  const ms = amount * RELATIVE_RANGE_UNIT_MS[match[2] as RelativeRangeUnit];
  if (amount === 0) return { ok: false, message: 'A relative range must be longer than zero, e.g. "24h"' };
  if (ms > MAX_RELATIVE_RANGE_MS) return { ok: false, message: `A relative range may reach back at most ${MAX_RANGE_DAYS} days` };
  return { ok: true, ms };
}

export const RelativeRange = z
  .string()
  .max(16)
  .superRefine((text, ctx) => {
    const parsed = parseRelativeRange(text);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message });
  })
  .describe(
    `The last N minutes, hours, days or weeks up to now, e.g. "30m", "24h", "7d", "2w" (at most ${MAX_RANGE_DAYS} days), instead of "from" and "to". Now is rounded up to the next whole minute, so the range is [to - N, to) with to at that minute.`,
  )
  .meta({ example: '24h' });
export type RelativeRange = z.infer<typeof RelativeRange>;

/**
 * The absolute range a relative one stands for at `now`: it ends at the next whole minute (so it
 * holds every event of the current minute, and statistics can read per-minute rollups instead of
 * the raw events) and starts its length earlier.
 */
export function resolveRelativeRange(text: string, now: Date): { from: Date; to: Date } {
  const parsed = parseRelativeRange(text);
  // Input schemas refuse what does not parse: reaching here with such a range is a bug.
  if (!parsed.ok) throw new Error(`unparsed relative range ${JSON.stringify(text)}`);
  const to = new Date(Math.ceil(now.getTime() / MINUTE_MS) * MINUTE_MS);
  return { from: new Date(to.getTime() - parsed.ms), to };
}

/** The length of an input's time range in milliseconds: its relative range, else `to - from`; undefined while a part is missing or invalid. */
export function rangeSpanMs(input: { from?: unknown; to?: unknown; range?: unknown }): number | undefined {
  if (typeof input.range === 'string') {
    const parsed = parseRelativeRange(input.range);
    return parsed.ok ? parsed.ms : undefined;
  }
  return input.from instanceof Date && input.to instanceof Date ? input.to.getTime() - input.from.getTime() : undefined;
}

/** An input with its time range made absolute: `range` resolved at `now` into `from` and `to`. */
export type WithAbsoluteRange<T extends { from?: Date | undefined; to?: Date | undefined; range?: string | undefined }> = Omit<T, 'from' | 'to' | 'range'> & {
  from: Date;
  to: Date;
};

/**
 * A statistics input (either `range`, or both `from` and `to`, as its schema checked) with an
 * absolute range.
 */
export function withAbsoluteRange<T extends { from?: Date | undefined; to?: Date | undefined; range?: string | undefined }>(
  input: T,
  now: Date,
): WithAbsoluteRange<T> {
  const { range, from, to, ...rest } = input;
  if (range !== undefined) return { ...rest, ...resolveRelativeRange(range, now) };
  if (!from || !to) throw new Error('a time range without "range", "from" or "to" passed its schema');
  return { ...rest, from, to };
}

/** events.list's optional range: `range` resolved at `now`, else `from` and `to` as given (either may be absent). */
export function withOptionalAbsoluteRange<T extends { from?: Date | undefined; to?: Date | undefined; range?: string | undefined }>(
  input: T,
  now: Date,
): Omit<T, 'range'> {
  const { range, ...rest } = input;
  return range === undefined ? rest : { ...rest, ...resolveRelativeRange(range, now) };
}

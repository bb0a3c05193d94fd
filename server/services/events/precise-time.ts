/**
 * Times to the microsecond. PostgreSQL's timestamptz keeps microseconds and clients send them
 * (OTLP even sends nanoseconds), but a JavaScript Date keeps milliseconds. A `PreciseDate` is a
 * Date that also carries the microseconds within its millisecond, and writes them back in
 * `toISOString()` (hence in JSON, in superjson and in every SQL parameter built from it), so they
 * survive from the request to the row and back.
 */
export class PreciseDate extends Date {
  /** Microseconds within the millisecond, 0 to 999. */
  readonly microsecond: number;

  constructor(epochMs: number, microsecond: number) {
    super(epochMs);
    this.microsecond = microsecond;
  }

  /** ISO 8601 with six fractional digits when there are microseconds, else the usual three. */
  override toISOString(): string {
    const iso = super.toISOString();
    return this.microsecond === 0 ? iso : `${iso.slice(0, -1)}${String(this.microsecond).padStart(3, '0')}Z`;
  }
}

/** The microseconds within the millisecond a Date carries (0 for a plain Date). */
export function microsecondOf(date: Date): number {
  return date instanceof PreciseDate ? date.microsecond : 0;
}

/** Microseconds since the Unix epoch, exactly. */
export function epochMicros(date: Date): bigint {
  return BigInt(date.getTime()) * 1000n + BigInt(microsecondOf(date));
}

/** The time `micros` microseconds after the epoch: a plain Date when it falls on a millisecond. */
export function fromEpochMicros(micros: bigint | string): Date {
  const total = typeof micros === 'bigint' ? micros : BigInt(micros);
  let ms = total / 1000n;
  let rest = total % 1000n;
  // BigInt division truncates toward zero; times before 1970 need the floor.
  if (rest < 0n) {
    ms -= 1n;
    rest += 1000n;
  }
  return rest === 0n ? new Date(Number(ms)) : new PreciseDate(Number(ms), Number(rest));
}

const ISO_PARTS = /^(.+T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * Reads an ISO-8601 date-time (already checked for shape) to the microsecond. Digits past the
 * sixth are accepted only when they are zeros: anything finer than a microsecond is refused
 * (`too_precise`), never rounded away.
 */
export function parseIsoTime(text: string): Date | 'too_precise' {
  const parts = ISO_PARTS.exec(text);
  if (!parts) return new Date(text);
  const [, dateTime, fraction = '', offset] = parts;
  if (/[1-9]/.test(fraction.slice(6))) return 'too_precise';
  const micros = fraction.slice(0, 6).padEnd(6, '0');
  const epochMs = Date.parse(`${dateTime}.${micros.slice(0, 3)}${offset}`);
  const microsecond = Number(micros.slice(3));
  return microsecond === 0 ? new Date(epochMs) : new PreciseDate(epochMs, microsecond);
}

/**
 * `receivedAt - (sentAt - createdAt)` to the microsecond, so a createdAt and sentAt given to the
 * microsecond keep them: milliseconds and microseconds apart, each exact as a number (times of
 * the years 1 to 9999 are far within 2^53 ms), then the microseconds carried into 0..999.
 */
export function correctedForSkew(createdAt: Date, sentAt: Date, receivedAt: Date): Date {
  let ms = receivedAt.getTime() - (sentAt.getTime() - createdAt.getTime());
  let microsecond = microsecondOf(receivedAt) - (microsecondOf(sentAt) - microsecondOf(createdAt));
  const carry = Math.floor(microsecond / 1000);
  ms += carry;
  microsecond -= carry * 1000;
  return microsecond === 0 ? new Date(ms) : new PreciseDate(ms, microsecond);
}

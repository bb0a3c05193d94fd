import type { JsonObject } from '../client/index.ts';

/** A mistake in the command line: the message says what to change (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Flags every command accepts. */
export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs `node:util` parseArgs and turns its errors (unknown flag, missing value) into usage errors. */
export function parseOrExplain<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

export function requireValue(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

export function requirePositional(positionals: readonly string[], index: number, name: string, max = index + 1): string {
  if (positionals.length > max) throw new UsageError(`Unexpected argument "${positionals[max]}"`);
  const value = positionals[index];
  if (value === undefined) throw new UsageError(`${name} is required`);
  return value;
}

export function refuseExtraPositionals(positionals: readonly string[], allowed = 0): void {
  if (positionals.length > allowed) throw new UsageError(`Unexpected argument "${positionals[allowed]}"`);
}

export function parseInteger(value: string, flag: string, bounds: { min: number; max: number }): number;
export function parseInteger(value: string | undefined, flag: string, bounds: { min: number; max: number }): number | undefined;
export function parseInteger(value: string | undefined, flag: string, bounds: { min: number; max: number }): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < bounds.min || number > bounds.max) {
    throw new UsageError(`${flag} must be a whole number from ${bounds.min} to ${bounds.max} (got "${value}")`);
  }
  return number;
}

export function parseChoice<const T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  const choice = choices.find((candidate) => candidate === value);
  if (!choice) throw new UsageError(`${flag} must be one of ${choices.join(', ')} (got "${value}")`);
  return choice;
}

export function parseJsonObject(value: string | undefined, flag: string): JsonObject | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new UsageError(`${flag} must be a JSON object: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new UsageError(`${flag} must be a JSON object, like '{"value":12,"unit":"ms"}'`);
  // JSON.parse only ever builds JSON values, so an object it answers is a JSON object.
  return parsed as JsonObject;
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;
const RELATIVE_TIME = /^(\d+)(s|m|h|d|w)$/;

/**
 * A point in time from the command line: `now`, a duration ago (`90s`, `15m`, `2h`, `7d`, `2w`) or
 * anything ISO 8601 (`2026-11-01`, `2026-11-01T10:00:00Z`; a time without an offset is UTC).
 */
export function parseTime(value: string | undefined, flag: string, now: Date): Date | undefined {
  if (value === undefined) return undefined;
  if (value === 'now') return now;
  const relative = RELATIVE_TIME.exec(value);
  if (relative) return new Date(now.getTime() - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]);
  const iso = /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(value) ? `${value}Z` : value;
  const date = /^\d{4}-\d{2}-\d{2}/.test(iso) ? new Date(iso) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${flag} must be "now", a duration ago like 15m, 2h or 7d, or an ISO 8601 time (got "${value}")`);
  return date;
}

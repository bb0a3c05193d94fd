/**
 * The one place that reads database error codes. Drivers put the SQLSTATE on their error's `code`
 * (postgres.js, PGlite), and Drizzle wraps that error in its own with the driver's on `cause`, so
 * every check here walks the cause chain. Code elsewhere asks a named question (`isDeadlock`,
 * `isDatabaseUnavailable`...) instead of comparing codes itself.
 */

/** The SQLSTATE codes the service acts on, by name. @see https://www.postgresql.org/docs/current/errcodes-appendix.html */
export const SQLSTATE = {
  notNullViolation: '23502',
  foreignKeyViolation: '23503',
  uniqueViolation: '23505',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  undefinedTable: '42P01',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  internalError: 'XX000',
} as const;

// Error codes meaning "the database cannot be reached right now", as opposed to "this query is wrong".
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  // postgres.js
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);
// SQLSTATE classes 08 (connection exception) and 57P0x (admin shutdown, crash, cannot connect now), 53300 (too many connections).
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-4]|53300)$/;
const SQLSTATE_PATTERN = /^[0-9A-Z]{5}$/;
// Drizzle wraps once; a few more levels cover our own wrappers (a DomainError's cause, for one).
const MAX_CAUSE_DEPTH = 5;

/** The error and the ones it wraps, outermost first. */
function* causeChain(error: unknown): Generator<object> {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < MAX_CAUSE_DEPTH; depth += 1) {
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

/**
 * The SQLSTATE the database answered with, on the error or one it wraps; undefined for errors the
 * database did not report (a refused connection, a bug). A socket error's code can have the same
 * shape (`EPIPE`), but it comes with `errno` or `syscall`, which a database's error never has.
 */
export function sqlState(error: unknown): string | undefined {
  for (const current of causeChain(error)) {
    const { code, errno, syscall } = current as { code?: unknown; errno?: unknown; syscall?: unknown };
    if (typeof code === 'string' && errno === undefined && syscall === undefined && SQLSTATE_PATTERN.test(code)) return code;
  }
  return undefined;
}

/** True if the error (or one it wraps) says the database is unreachable. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (const current of causeChain(error)) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_NODE_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
  }
  return false;
}

/**
 * The database answered, saying a connection of its own failed: on Citus, the coordinator could not
 * reach the worker holding some of the statement's shards. The database itself is up, and
 * statements touching other workers still run, so this is not a reason to stop writing to it.
 */
export function isRemoteNodeUnavailable(error: unknown): boolean {
  return sqlState(error)?.startsWith('08') === true;
}

/**
 * The database's catch-all error: a bug, or (on Citus) any error a worker raised during a COPY,
 * which the coordinator reports without the worker's own SQLSTATE.
 */
export const isInternalError = (error: unknown): boolean => sqlState(error) === SQLSTATE.internalError;

/** A NOT NULL column was given no value. */
export const isNotNullViolation = (error: unknown): boolean => sqlState(error) === SQLSTATE.notNullViolation;

export const isUniqueViolation = (error: unknown): boolean => sqlState(error) === SQLSTATE.uniqueViolation;
/** 23503: a row names a row of another table (a workspace, say) that does not exist. */
export const isForeignKeyViolation = (error: unknown): boolean => sqlState(error) === SQLSTATE.foreignKeyViolation;
export const isDeadlock = (error: unknown): boolean => sqlState(error) === SQLSTATE.deadlockDetected;
/** 40001: a serializable transaction lost a conflict, or a hot standby cancelled a query for recovery. */
export const isSerializationFailure = (error: unknown): boolean => sqlState(error) === SQLSTATE.serializationFailure;
export const isUndefinedTable = (error: unknown): boolean => sqlState(error) === SQLSTATE.undefinedTable;
/** 55P03: `lock_timeout` passed (or NOWAIT) before the lock was granted. */
export const isLockNotAvailable = (error: unknown): boolean => sqlState(error) === SQLSTATE.lockNotAvailable;
/** 57014: cancelled by statement_timeout or by a cancel request. */
export const isQueryCanceled = (error: unknown): boolean => sqlState(error) === SQLSTATE.queryCanceled;

/**
 * The database refused the data itself: class 22 (data exception: a value out of range, bad
 * encoding...) or 23 (integrity constraint violation). Rerunning the same rows fails again;
 * rerunning without the offending rows does not.
 */
export function isDataRefusal(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}

/** The transaction was rolled back only because it met another one: running it again is safe and usually succeeds. */
export const isTransientConflict = (error: unknown): boolean => isDeadlock(error) || isSerializationFailure(error);

/** How a transaction rolled back by a transient conflict is run again. */
export const CONFLICT_RETRY = {
  /** Runs in all, the first included. */
  attempts: 4,
  /** Pause before the second run; doubled for each next one, with jitter so the two sides do not meet again. */
  firstPauseMs: 5,
} as const;

/**
 * Runs `work` (a whole transaction) again when the database rolled it back for a deadlock or a
 * serialization failure, up to `CONFLICT_RETRY.attempts` runs; any other error, or the last
 * conflict, is thrown.
 */
export async function retryTransientConflicts<T>(work: () => Promise<T>, onRetry?: (error: unknown, attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (!isTransientConflict(error) || attempt >= CONFLICT_RETRY.attempts) throw error;
      onRetry?.(error, attempt);
      const pauseMs = CONFLICT_RETRY.firstPauseMs * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, pauseMs / 2 + Math.random() * pauseMs));
    }
  }
}

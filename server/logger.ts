export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** One JSON object per line on stdout/stderr: what log shippers expect. */
export function createLogger(level: LogLevel = 'info', base: LogFields = {}, write: (line: string, isError: boolean) => void = defaultWrite): Logger {
  const emit = (at: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields) => {
    if (RANK[at] < RANK[level]) return;
    const record = { time: new Date().toISOString(), level: at, msg: message, ...base, ...fields };
    write(JSON.stringify(record, errorReplacer), RANK[at] >= RANK.warn);
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}

function defaultWrite(line: string, isError: boolean) {
  (isError ? process.stderr : process.stdout).write(`${line}\n`);
}

/**
 * Longest message or stack logged per error. A database driver's error can quote its whole
 * statement and parameters (Drizzle's "Failed query: ... params: ..." holds a flush's JSON document
 * of up to thousands of events): one failure must not write megabytes of event data to the logs.
 */
const MAX_ERROR_TEXT = 2000;

function clipped(text: string | undefined, limit = MAX_ERROR_TEXT): string | undefined {
  if (text === undefined || text.length <= limit) return text;
  return `${text.slice(0, limit)}…[${text.length - limit} more characters]`;
}

/** The stack with its first line (the message again) clipped, so the frames survive a long message. */
function clippedStack(error: Error): string | undefined {
  const { stack } = error;
  const head = `${error.name}: ${error.message}`;
  if (stack?.startsWith(head)) return clipped(`${error.name}: ${clipped(error.message)}${stack.slice(head.length)}`, 2 * MAX_ERROR_TEXT);
  return clipped(stack, 2 * MAX_ERROR_TEXT);
}

// Errors are not enumerable: spell out what an operator needs (the cause chain included).
function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: clipped(value.message), ...(code !== undefined && { code }), stack: clippedStack(value), cause: value.cause };
  }
  return value;
}

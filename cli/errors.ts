import { isTRPCClientError, type TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../client/index.ts';
import { classifyFailure } from '../client/retry-policy.ts';
import { UsageError } from './args.ts';
import { ExitCode } from './exit-codes.ts';

export type ServiceError = TRPCClientError<AppRouter>;

/** A failure the command already explained: the message is printed as it is. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

/** What the command was doing, to make error messages actionable. */
export interface FailureContext {
  url: string;
  /** The kind of key the command needs, e.g. "an ingest key". */
  keyNeeded: string;
  /** Input field names as the user typed them: `userId` was `--user`. */
  flagOf?: (field: string) => string | undefined;
}

/** Input fields and the flags that set them, shared by every command. */
const FLAG_BY_FIELD: Record<string, string> = {
  eventType: '--type',
  name: '--name',
  source: '--source',
  userId: '--user',
  workspaceId: '--workspace',
  targetType: '--target-type',
  targetId: '--target-id',
  metadata: '--metadata',
  createdAt: '--created-at',
  from: '--from',
  to: '--to',
  limit: '--limit',
  cursor: '--cursor',
  bucket: '--bucket',
  timeZone: '--tz',
  breakdown: '--breakdown',
  by: '--by',
  field: '--field',
  days: '--days',
  kind: '--kind',
};

/** `metadata.value` → `--metadata (metadata.value)`: the flag to fix, and where inside it. */
export function describeField(path: string, flagOf?: (field: string) => string | undefined): string {
  if (path === '') return '(the whole input)';
  const [first = ''] = path.split('.');
  const flag = flagOf?.(first) ?? FLAG_BY_FIELD[first];
  if (!flag) return path;
  return flag === `--${path}` ? flag : `${flag} (${path})`;
}

export function isServiceError(error: unknown): error is ServiceError {
  return isTRPCClientError<AppRouter>(error);
}

/** Turns any failure into one clear message (never a stack trace) and its exit code. */
export function describeFailure(error: unknown, context: FailureContext): { message: string; exitCode: ExitCode } {
  if (error instanceof UsageError) return { message: error.message, exitCode: ExitCode.usage };
  if (error instanceof CliFailure) return { message: error.message, exitCode: error.exitCode };
  if (!isServiceError(error)) {
    return { message: `Unexpected error: ${error instanceof Error ? error.message : String(error)}`, exitCode: ExitCode.unavailable };
  }
  const data = error.data;
  if (!data) {
    const failure = classifyFailure(error);
    if (failure.network) {
      const reason = failure.networkReason;
      return {
        message: `Cannot reach the telemetry service at ${context.url}${reason ? ` (${reason})` : ''}. Is it running? Set TELEMETRY_URL or pass --url.`,
        exitCode: ExitCode.unavailable,
      };
    }
    return {
      message: `The server at ${context.url} did not answer like the telemetry service (${error.message}). Check TELEMETRY_URL or --url.`,
      exitCode: ExitCode.unavailable,
    };
  }
  switch (data.code) {
    case 'UNAUTHORIZED':
      return {
        message: `The service refused the key (401: ${error.message}). Set TELEMETRY_KEY or pass --key with ${context.keyNeeded}.`,
        exitCode: ExitCode.auth,
      };
    case 'FORBIDDEN':
      return {
        message: `The key may not do this (403: ${error.message}). This command needs ${context.keyNeeded}: set TELEMETRY_KEY or pass --key.`,
        exitCode: ExitCode.auth,
      };
    case 'BAD_REQUEST': {
      const issues = data.issues ?? [];
      if (issues.length === 0) return { message: `Invalid input: ${error.message}`, exitCode: ExitCode.usage };
      const lines = issues.map((issue) => `  ${describeField(issue.path, context.flagOf)}: ${issue.message}`);
      return { message: `Invalid input:\n${lines.join('\n')}`, exitCode: ExitCode.usage };
    }
    case 'NOT_FOUND':
    case 'CONFLICT':
    case 'PAYLOAD_TOO_LARGE':
      return { message: `${error.message} (${data.httpStatus})`, exitCode: ExitCode.refused };
    case 'TOO_MANY_REQUESTS':
      return {
        message: `Rate limited (429): ${error.message}${data.retryAfterSeconds !== undefined ? ` (retry after ${data.retryAfterSeconds} s)` : ''}`,
        exitCode: ExitCode.unavailable,
      };
    default:
      return { message: `The service failed (${data.httpStatus}: ${error.message}). Try again shortly.`, exitCode: ExitCode.unavailable };
  }
}

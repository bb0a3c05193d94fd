import { TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../client/index.ts';
import { classifyFailure } from '../client/retry-policy.ts';

/** What the page does about a failed call: back to sign-in, or a message beside the data. */
export interface ProblemReport {
  /** The key itself is not accepted (401): sign in again. */
  signInAgain: boolean;
  message: string;
}

export function describeProblem(error: unknown): ProblemReport {
  if (!(error instanceof TRPCClientError)) {
    return { signInAgain: false, message: error instanceof Error ? error.message : 'Something went wrong' };
  }
  const clientError = error as TRPCClientError<AppRouter>;
  // The status of a tRPC error, or of a response the client could not read as tRPC (a proxy's error page).
  const { status, retryAfterMs } = classifyFailure(clientError);
  if (status === 401) return { signInAgain: true, message: 'This key was not accepted (unknown, revoked or rotated).' };
  if (status === 403) {
    return {
      signInAgain: true,
      message: `${clientError.message}. Use a read key, or an admin key and pick the workspace to read.`,
    };
  }
  if (status === 429) {
    return { signInAgain: false, message: `Rate limit reached for this key${retryAfterMs ? `; retry in ${Math.ceil(retryAfterMs / 1000)} s` : ''}.` };
  }
  if (status === 503) return { signInAgain: false, message: 'The service is temporarily unavailable (database unreachable); retry shortly.' };
  if (status === undefined && clientError.cause) return { signInAgain: false, message: 'The service could not be reached. Check the connection and refresh.' };
  return { signInAgain: false, message: clientError.message || `Request failed${status ? ` (HTTP ${status})` : ''}` };
}

/** The key is valid but not allowed this call (403): for the sign-in, a key that is not an admin key. */
export function isForbidden(error: unknown): boolean {
  return error instanceof TRPCClientError && classifyFailure(error as TRPCClientError<AppRouter>).status === 403;
}

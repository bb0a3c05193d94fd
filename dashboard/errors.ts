import { TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../client/index.ts';

/** What the page does about a failed call: back to sign-in, or a message beside the data. */
export interface ProblemReport {
  /** The key itself is not accepted (401): sign in again. */
  signInAgain: boolean;
  message: string;
}

function httpStatusOf(error: TRPCClientError<AppRouter>): number | undefined {
  if (error.data?.httpStatus) return error.data.httpStatus;
  // A response the client could not parse as tRPC (a proxy's error page) still has a status.
  const response = error.meta?.['response'];
  return response instanceof Response ? response.status : undefined;
}

export function describeProblem(error: unknown): ProblemReport {
  if (!(error instanceof TRPCClientError)) {
    return { signInAgain: false, message: error instanceof Error ? error.message : 'Something went wrong' };
  }
  const clientError = error as TRPCClientError<AppRouter>;
  const status = httpStatusOf(clientError);
  if (status === 401) return { signInAgain: true, message: 'This key was not accepted (unknown, revoked or rotated).' };
  if (status === 403) {
    return {
      signInAgain: true,
      message: `${clientError.message}. Use a read key, or an admin key with the workspace id to read.`,
    };
  }
  if (status === 429) {
    const retryAfter = clientError.data?.retryAfterSeconds;
    return { signInAgain: false, message: `Rate limit reached for this key${retryAfter ? `; retry in ${Math.ceil(retryAfter)} s` : ''}.` };
  }
  if (status === 503) return { signInAgain: false, message: 'The service is temporarily unavailable (database unreachable); retry shortly.' };
  if (status === undefined && clientError.cause) return { signInAgain: false, message: 'The service could not be reached. Check the connection and refresh.' };
  return { signInAgain: false, message: clientError.message || `Request failed${status ? ` (HTTP ${status})` : ''}` };
}

/** What the process exit code tells a script (documented in README.md, "Command line"). */
export const ExitCode = {
  /** Done: every event stored (accepted or already stored), or the request succeeded. */
  ok: 0,
  /**
   * Some events were rejected, the service refused the request itself (not found, conflict), or a
   * retention run left something in place.
   */
  refused: 1,
  /** The command line is wrong: unknown command or flag, missing or invalid value. */
  usage: 2,
  /** No key, or the service refused the key (401) or its kind or workspace (403). */
  auth: 3,
  /** The service could not be reached or failed (network error, 5xx, still rate-limited after retries). */
  unavailable: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

import { existsSync } from 'node:fs';

/**
 * What the test suite needs beyond Node and PGlite, and what happens without it: the postgres
 * project is not created, and Redis or Chromium tests skip themselves. Read by vitest.config.ts
 * (which projects to run, and CI's refusal to run without PostgreSQL) and by the reporter that
 * says at the end of a run what was not run.
 */
export interface OptionalBackend {
  /** What did not run without it. */
  what: string;
  /** Why it did not run (checked when the run starts). */
  missing(): string | undefined;
  /** What to do to run it. */
  enable: string;
}

export const EXAMPLE_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const EXAMPLE_TEST_REDIS_URL = 'redis://127.0.0.1:6379';
/** Where browser tests look for Chromium (Debian's package). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const OPTIONAL_BACKENDS: readonly OptionalBackend[] = [
  {
    what: 'real PostgreSQL (the "postgres" project: every test file again on PostgreSQL, and the tests only PostgreSQL can run)',
    missing: () => (process.env.TEST_DATABASE_URL ? undefined : 'TEST_DATABASE_URL is not set'),
    enable: `set TEST_DATABASE_URL to a server the tests may create databases on, e.g. ${EXAMPLE_TEST_DATABASE_URL}`,
  },
  {
    what: 'Redis (rate limits and ceilings shared between instances, live streams across instances, the Redis replay window)',
    missing: () => (process.env.TEST_REDIS_URL ? undefined : 'TEST_REDIS_URL is not set'),
    enable: `set TEST_REDIS_URL to a Redis the tests may write to, e.g. ${EXAMPLE_TEST_REDIS_URL}`,
  },
  {
    what: 'Chromium (the dashboard, /docs, the front page and the tracker in a real browser)',
    missing: () => (existsSync(CHROMIUM_PATH) ? undefined : `no Chromium at ${CHROMIUM_PATH}`),
    enable: "install Debian's chromium package (apt-get install chromium)",
  },
];

/** The command that runs everything, with example values. */
export const RUN_EVERYTHING = `TEST_DATABASE_URL=${EXAMPLE_TEST_DATABASE_URL} TEST_REDIS_URL=${EXAMPLE_TEST_REDIS_URL} npm test`;

/** CI runs everything: an environment variable CI set to anything but "false" or "0". */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
}

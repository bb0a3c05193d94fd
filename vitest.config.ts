import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { NotRunReporter } from './tests/support/not-run-reporter.ts';
import { isCi } from './tests/support/optional-backends.ts';

// The suites that also run on a local Citus cluster (coordinator and two workers) when TEST_CITUS=1:
// the `citus` project starts the cluster once (tests/support/citus-global-setup.ts) and each file
// gets its own distributed database from tests/support/database.ts.
const CITUS_SUITES = [
  'tests/citus-cluster.test.ts',
  'tests/citus-routing.test.ts',
  'tests/ingest.procedures.test.ts',
  'tests/event-writers.test.ts',
  'tests/event-isolation.test.ts',
  'tests/distribution-keys.test.ts',
  'tests/archive.test.ts',
  'tests/live.test.ts',
  'tests/group-commit.test.ts',
  'tests/stats.test.ts',
  'tests/relative-ranges.test.ts',
  'tests/retention.test.ts',
  'tests/retention-steps.test.ts',
  'tests/erasure.test.ts',
  'tests/security/workspaces.test.ts',
  'tests/citus-topology.test.ts',
  'tests/citus-silent-worker.test.ts',
];

// Every test file runs on embedded PGlite, and again on real PostgreSQL when TEST_DATABASE_URL is
// set (CI sets it). tests/support/database.ts reads TEST_DB_KIND to pick one.
const databases = ['pglite', ...(process.env.TEST_DATABASE_URL ? ['postgres'] : [])];

// CI must test on real PostgreSQL: a run without it fails there instead of passing on PGlite alone.
// One line and exit code 1, not a stack trace from inside the config loader.
if (isCi() && !process.env.TEST_DATABASE_URL) {
  process.stderr.write('CI is set but TEST_DATABASE_URL is not: CI runs every test on real PostgreSQL too (see .ci/run); set TEST_DATABASE_URL, or unset CI\n');
  process.exit(1);
}

const citusProject: TestProjectInlineConfiguration = {
  extends: true,
  test: {
    name: 'citus',
    include: CITUS_SUITES,
    env: { TEST_DB_KIND: 'citus' },
    // One coordinator and two workers for the whole run; see tests/support/citus-global-setup.ts.
    globalSetup: ['tests/support/citus-global-setup.ts'],
  },
};

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Test files wait on PostgreSQL, child processes and Chromium much of the time: three workers on
    // two cores keep both busy (the default, one fewer than the cores, leaves one idle).
    maxWorkers: 3,
    // The default output, then what was not run (no PostgreSQL, Redis or Chromium) and how to run it.
    reporters: ['default', new NotRunReporter()],
    projects: [
      ...databases.map(
        (kind): TestProjectInlineConfiguration => ({
          extends: true,
          test: {
            name: kind,
            include: ['tests/**/*.test.ts'],
            env: { TEST_DB_KIND: kind },
          },
        }),
      ),
      ...(process.env.TEST_CITUS === '1' ? [citusProject] : []),
    ],
  },
});

import { defineConfig } from 'vitest/config';

// Every test file runs on embedded PGlite, and again on real PostgreSQL when TEST_DATABASE_URL is
// set (CI sets it). tests/support/database.ts reads TEST_DB_KIND to pick one.
const databases = ['pglite', ...(process.env.TEST_DATABASE_URL ? ['postgres'] : [])];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Test files wait on PostgreSQL, child processes and Chromium much of the time: three workers on
    // two cores keep both busy (the default, one fewer than the cores, leaves one idle).
    maxWorkers: 3,
    projects: databases.map((kind) => ({
      extends: true,
      test: {
        name: kind,
        include: ['tests/**/*.test.ts'],
        env: { TEST_DB_KIND: kind },
      },
    })),
  },
});

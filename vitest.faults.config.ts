import { defineConfig } from 'vitest/config';

// Fault tests (`npm run test:faults`): each starts private PostgreSQL servers, the service and a
// load client as separate processes, breaks something under load, then reconciles the client's
// ledger of acknowledged events with the database. One file at a time: they are heavy.
export default defineConfig({
  test: {
    include: ['tests/faults/**/*.fault.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});

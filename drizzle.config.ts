import { defineConfig } from 'drizzle-kit';

// Partitions are created at run time by the service (db/partitions.ts); keep them out of
// drizzle-kit's view so `push`/`generate` never try to drop them.
// @see https://orm.drizzle.team/docs/drizzle-config-file#tablesfilter
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './db/migrations',
  schemaFilter: ['telemetry'],
  tablesFilter: ['!events_p*', '!events_default'],
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
});

/** `npm run db:migrate`: applies migrations and prepares partitions, then exits. */
import { openDatabase } from '../../db/database.ts';
import { loadConfig } from '../../server/config.ts';
import { maintainPartitions } from '../../server/partition-maintenance.ts';

const config = loadConfig();
const db = await openDatabase({ databaseUrl: config.databaseUrl, pgliteDir: config.pgliteDir, connectTimeoutSeconds: config.databaseConnectTimeoutSeconds });
try {
  await db.migrate();
  const created = await maintainPartitions(db, { daysAhead: config.partitionDaysAhead });
  process.stdout.write(`migrations applied on ${db.kind}; ${created.length} partitions created\n`);
} finally {
  await db.close();
}

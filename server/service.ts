import { openDatabase, type Database } from '../db/database.ts';
import { createApp, type App } from './app.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { maintainPartitions, schedulePartitionMaintenance } from './maintenance.ts';

export interface RunningService {
  app: App;
  db: Database;
  /** Stops background work and closes the database. */
  close(): Promise<void>;
}

/** Opens the database, applies migrations, prepares partitions and builds the HTTP app. */
export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    pgliteDir: config.pgliteDir,
    maxConnections: config.databasePoolMax,
    connectTimeoutSeconds: config.databaseConnectTimeoutSeconds,
  });
  try {
    await db.migrate();
    const created = await maintainPartitions(db, { daysAhead: config.partitionDaysAhead });
    logger.info('database ready', { kind: db.kind, partitionsCreated: created.length });
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  const stopMaintenance = schedulePartitionMaintenance(db, { daysAhead: config.partitionDaysAhead, logger });
  const app = createApp({ db, config, logger });
  return {
    app,
    db,
    async close() {
      stopMaintenance();
      await db.close();
    },
  };
}

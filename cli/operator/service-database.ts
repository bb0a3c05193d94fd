import { existsSync } from 'node:fs';
import { openDatabase, type Database } from '../../db/database.ts';
import { DataDirectoryInUseError } from '../../db/data-directory-lock.ts';
import { checkReadiness } from '../../db/readiness.ts';
import { ConfigError, loadConfig, type Config } from '../../server/config.ts';

/** The service's configuration from the environment, or undefined after naming the bad value on stderr. */
export function loadConfigOrExplain(): Config | undefined {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return undefined;
  }
}

/**
 * The service's existing, migrated database for an operator command (`retention`,
 * `archive:load`), or undefined after telling the operator on stderr why not. Two connections:
 * jobs hold an advisory lock on one while the other works.
 */
export async function openServiceDatabase(config: Config, command: string): Promise<Database | undefined> {
  // PGlite would create an empty database in a directory that does not exist: say so instead.
  if (!config.databaseUrl && !existsSync(config.pgliteDir)) {
    process.stderr.write(`${command}: no database at ${config.pgliteDir}; set DATABASE_URL, or PGLITE_DIR to the service's data directory\n`);
    return undefined;
  }
  let db: Database;
  try {
    db = await openDatabase({
      databaseUrl: config.databaseUrl,
      distribution: config.databaseDistribution,
      pgliteDir: config.pgliteDir,
      maxConnections: 2,
      connectTimeoutSeconds: config.databaseConnectTimeoutSeconds,
    });
  } catch (error) {
    if (!(error instanceof DataDirectoryInUseError)) throw error;
    process.stderr.write(`${command}: ${error.message}\n`);
    return undefined;
  }
  const readiness = await checkReadiness(db, { timeoutMs: config.databaseConnectTimeoutSeconds * 1000 });
  if (readiness.ready) return db;
  process.stderr.write(
    readiness.reason === 'migrations_pending'
      ? `${command}: the database is not migrated to this version; run \`npm run db:migrate\` (or start the service) first\n`
      : `${command}: the database cannot be reached\n`,
  );
  await db.close().catch(() => {});
  return undefined;
}

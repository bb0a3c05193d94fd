/**
 * `npm run db:migrate`: applies migrations and prepares partitions, then exits: 0 when done, 1 when
 * the database cannot be used (its embedded data directory is held by another process, or the
 * server cannot be reached), 2 for bad configuration. Each refusal is one line on stderr, no stack:
 * an operator acts on the line, not on a trace.
 */
import type { Database } from '../../db/database.ts';
import { openDatabase } from '../../db/database.ts';
import { DataDirectoryInUseError } from '../../db/data-directory-lock.ts';
import { isDatabaseUnavailable } from '../../db/errors.ts';
import { maintainPartitions } from '../../server/partition-maintenance.ts';
import { ExitCode } from '../exit-codes.ts';
import { loadConfigOrExplain } from './service-database.ts';

async function main(): Promise<number> {
  const config = loadConfigOrExplain();
  if (!config) return ExitCode.usage;
  const where = config.databaseUrl ? 'DATABASE_URL' : `the embedded database at ${config.pgliteDir}`;
  let db: Database | undefined;
  try {
    db = await openDatabase({
      databaseUrl: config.databaseUrl,
      distribution: config.databaseDistribution,
      pgliteDir: config.pgliteDir,
      connectTimeoutSeconds: config.databaseConnectTimeoutSeconds,
    });
    await db.migrate();
    const created = await maintainPartitions(db, { daysAhead: config.partitionDaysAhead });
    process.stdout.write(`migrations applied on ${db.kind}; ${created.length} partitions created\n`);
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof DataDirectoryInUseError) {
      process.stderr.write(`db:migrate: ${error.message}\n`);
    } else if (isDatabaseUnavailable(error)) {
      // The URL may carry a password: name the variable, never its value.
      process.stderr.write(`db:migrate: the database at DATABASE_URL cannot be reached (${unavailableCode(error)}): check the URL and that the server is up\n`);
    } else {
      process.stderr.write(`db:migrate failed on ${where}: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    return ExitCode.refused;
  } finally {
    await db?.close().catch(() => {});
  }
}

/** The first error code along the cause chain (ECONNREFUSED, CONNECT_TIMEOUT, 57P03 ...), for the operator's line. */
function unavailableCode(error: unknown): string {
  for (let current: unknown = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return 'unavailable';
}

process.exitCode = await main();

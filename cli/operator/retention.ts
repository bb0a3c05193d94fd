/**
 * `npm run retention [-- --dry-run]`: runs the retention job once against the database the service
 * is configured with (DATABASE_URL, else the PGlite directory), prints its report (the same text as
 * `telemetry retention run`) and exits: 0 when it finished, 1 when it failed or left something in
 * place (the report says what), 2 for bad usage or configuration. On PGlite, stop the service
 * first: its data directory takes one process at a time.
 */
import { parseArgs } from 'node:util';
import { DomainError } from '../../server/errors.ts';
import { createLogger } from '../../server/logger.ts';
import { createRetentionService } from '../../server/services/retention/retention.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatRetentionReport, retentionExitCode } from '../retention-report.ts';
import { loadConfigOrExplain, openServiceDatabase } from './service-database.ts';

const USAGE = 'usage: npm run retention [-- --dry-run]';

async function main(): Promise<number> {
  let dryRun: boolean;
  try {
    const { values } = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false }, help: { type: 'boolean', default: false } }, strict: true });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return ExitCode.ok;
    }
    dryRun = values['dry-run'];
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return ExitCode.usage;
  }
  const config = loadConfigOrExplain();
  if (!config) return ExitCode.usage;

  const db = await openServiceDatabase(config, 'retention');
  if (!db) return ExitCode.refused;
  try {
    // Warnings (an archive that failed) go to stderr as JSON lines; the report goes to stdout.
    const retention = createRetentionService({ db, config, logger: createLogger('warn') });
    const report = await retention.run({ dryRun });
    process.stdout.write(formatRetentionReport(report, { archiveDir: config.retention.archiveDir ?? null }));
    return retentionExitCode(report);
  } catch (error) {
    if (error instanceof DomainError && error.code === 'conflict') {
      process.stderr.write(`retention: ${error.message}\n`);
      return ExitCode.refused;
    }
    process.stderr.write(`retention failed: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof Error && error.cause instanceof Error) process.stderr.write(`  cause: ${error.cause.message}\n`);
    return ExitCode.refused;
  } finally {
    await db.close().catch(() => {});
  }
}

process.exitCode = await main();

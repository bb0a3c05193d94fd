/**
 * `npm run retention [-- --dry-run]`: runs the retention job once against the database the service
 * is configured with (DATABASE_URL, else the PGlite directory), prints its report and exits: 0 when
 * it finished, 1 when it failed or left something in place (the report says what), 2 for bad usage
 * or configuration. On PGlite, stop the service first: its data directory takes one process at a time.
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExplain, openServiceDatabase } from './cli-database.ts';
import { DomainError } from './errors.ts';
import { createLogger } from './logger.ts';
import { createRetentionService } from './services/retention/retention.ts';
import type { RetentionReport } from './services/retention/schemas.ts';

const USAGE = 'usage: npm run retention [-- --dry-run]';

async function main(): Promise<number> {
  let dryRun: boolean;
  try {
    const { values } = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false }, help: { type: 'boolean', default: false } }, strict: true });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    dryRun = values['dry-run'];
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const config = loadConfigOrExplain();
  if (!config) return 2;

  const db = await openServiceDatabase(config, 'retention');
  if (!db) return 1;
  try {
    // Warnings (an archive that failed) go to stderr as JSON lines; the report goes to stdout.
    const retention = createRetentionService({ db, config, logger: createLogger('warn') });
    const report = await retention.run({ dryRun });
    process.stdout.write(formatReport(report, config.retention.archiveDir));
    return report.errors.length > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof DomainError && error.code === 'conflict') {
      process.stderr.write(`retention: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`retention failed: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof Error && error.cause instanceof Error) process.stderr.write(`  cause: ${error.cause.message}\n`);
    return 1;
  } finally {
    await db.close().catch(() => {});
  }
}

const number = new Intl.NumberFormat('en-US');

function formatReport(report: RetentionReport, archiveDir: string | undefined): string {
  const lines: string[] = [];
  const at = (date: Date) => date.toISOString();
  lines.push(report.dryRun ? `Retention dry run at ${at(report.now)}: nothing was changed.` : `Retention run at ${at(report.now)}.`);
  lines.push(`  default retention: ${report.defaultDays} days (events before ${at(report.defaultCutoff)} expire)`);
  for (const cutoff of report.cutoffs) lines.push(`  workspace ${cutoff.workspaceId}: ${cutoff.days} days (before ${at(cutoff.cutoff)})`);
  lines.push(`  longest retention: ${report.longestDays} days: daily partitions ending by ${at(report.partitionCutoff)} go whole`);
  lines.push('');

  // A dry run reports what a real run would do.
  const label = (done: string, planned: string) => (report.dryRun ? planned : done);
  const dropped = report.partitionsDropped.reduce((sum, partition) => sum + partition.rows, 0);
  lines.push(`${label('Partitions dropped', 'Partitions to drop')}: ${report.partitionsDropped.length} (${number.format(dropped)} events)`);
  for (const partition of report.partitionsDropped) lines.push(`  ${partition.name}  ${number.format(partition.rows)}`);
  const deleted = report.rowsDeleted.reduce((sum, entry) => sum + entry.rows, 0);
  lines.push(`${label('Events deleted', 'Events to delete')} row by row: ${number.format(deleted)}`);
  for (const entry of report.rowsDeleted) lines.push(`  ${entry.workspaceId ?? '(no workspace)'}  ${number.format(entry.rows)}`);
  lines.push(`${label('Ledger ids deleted', 'Ledger ids to delete')}: ${number.format(report.ledgerRowsDeleted)}`);
  lines.push(
    `${label('Rollup rows deleted', 'Rollup rows to delete')}: ${number.format(report.rollupRowsDeleted.minute)} per-minute, ${number.format(report.rollupRowsDeleted.hour)} per-hour`,
  );

  if (archiveDir) {
    lines.push(report.dryRun ? `Archives: none written in a dry run (ARCHIVE_DIR=${archiveDir})` : `Archives written: ${report.archives.length} (in ${archiveDir})`);
    for (const archive of report.archives) lines.push(`  ${archive.manifest}  ${number.format(archive.rows)} events  sha256 ${archive.sha256}`);
  } else {
    lines.push('Archives: none (ARCHIVE_DIR is not set)');
  }
  if (!report.dryRun) lines.push(`Partitions created ahead: ${report.partitionsCreated.length > 0 ? report.partitionsCreated.join(', ') : 'none needed'}`);
  if (report.interrupted) lines.push('Interrupted before it finished; the next run continues.');
  if (report.errors.length > 0) {
    lines.push(`Errors: ${report.errors.length} (left in place, retried by the next run)`);
    for (const error of report.errors) lines.push(`  ${error.target}: ${error.message}`);
  }
  lines.push(`Took ${number.format(report.finishedAt.getTime() - report.startedAt.getTime())} ms.`);
  return `${lines.join('\n')}\n`;
}

process.exitCode = await main();

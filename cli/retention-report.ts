import type { TelemetryOutputs } from '../client/index.ts';
import { ExitCode } from './exit-codes.ts';
import { formatCount, formatTime } from './format.ts';

/** The report of one retention run, as `admin.retention.run` answers it and the local job returns it. */
export type RetentionReport = TelemetryOutputs['admin']['retention']['run'];

/**
 * The one text form of a retention report, printed by `telemetry retention run` (over the API) and
 * `npm run retention` (on the database directly). Only the local command knows the archive
 * directory: it passes ARCHIVE_DIR, or null when it is not set; over the API it is unknown.
 */
export function formatRetentionReport(report: RetentionReport, { archiveDir }: { archiveDir?: string | null } = {}): string {
  const lines: string[] = [];
  // A dry run reports what a real run would do.
  const label = (done: string, planned: string) => (report.dryRun ? planned : done);
  lines.push(report.dryRun ? 'Retention dry run: nothing was changed.' : 'Retention run finished.');
  if (report.interrupted) lines.push('Interrupted: the service stopped the run before it finished; the next run continues.');
  lines.push(
    `Default retention: ${report.defaultDays} days (events before ${formatTime(report.defaultCutoff)} expire); longest allowed: ${report.maxDays} days.`,
  );
  for (const cutoff of report.cutoffs) {
    const capped = cutoff.requestedDays === undefined ? '' : `, set to ${cutoff.requestedDays} but capped by RETENTION_MAX_DAYS`;
    lines.push(`  workspace ${cutoff.workspaceId}: ${cutoff.days} days (before ${formatTime(cutoff.cutoff)}${capped})`);
  }
  lines.push(
    `Whole partitions ${label('go', 'would go')} for days ending by ${formatTime(report.partitionCutoff)} (the longest retention in effect: ${report.longestDays} days).`,
  );

  const droppedRows = report.partitionsDropped.reduce((sum, partition) => sum + partition.rows, 0);
  lines.push(`${label('Partitions dropped', 'Partitions to drop')}: ${report.partitionsDropped.length} (${formatCount(droppedRows)} events)`);
  for (const partition of report.partitionsDropped) lines.push(`  ${partition.name} (${partition.day}): ${formatCount(partition.rows)} events`);
  const deletedRows = report.rowsDeleted.reduce((sum, item) => sum + item.rows, 0);
  lines.push(`${label('Events deleted', 'Events to delete')} one by one: ${formatCount(deletedRows)}`);
  for (const item of report.rowsDeleted) lines.push(`  ${item.workspaceId ?? '(no workspace)'}: ${formatCount(item.rows)}`);
  lines.push(`${label('Ledger ids deleted', 'Ledger ids to delete')}: ${formatCount(report.ledgerRowsDeleted)}`);
  const rollups = Object.entries(report.rollupRowsDeleted).map(([grain, rows]) => `${formatCount(rows)} per-${grain}`);
  lines.push(`${label('Rollup rows deleted', 'Rollup rows to delete')}: ${rollups.join(', ')}`);

  if (archiveDir === null) lines.push('Archives: none (ARCHIVE_DIR is not set)');
  else if (report.dryRun && archiveDir) lines.push(`Archives: none written in a dry run (ARCHIVE_DIR=${archiveDir})`);
  else if (report.archives.length > 0 || archiveDir) lines.push(`Archives written: ${report.archives.length}${archiveDir ? ` (in ${archiveDir})` : ''}`);
  // The manifest is what `npm run archive:load` takes back.
  for (const archive of report.archives) {
    lines.push(`  ${archive.manifest} (${formatCount(archive.rows)} events, day ${archive.day}, sha256 ${archive.sha256})`);
  }
  if (!report.dryRun) lines.push(`Partitions prepared ahead: ${report.partitionsCreated.length > 0 ? report.partitionsCreated.join(', ') : 'none needed'}`);
  if (report.errors.length > 0) {
    lines.push(`Left in place after errors (the next run retries): ${report.errors.length}`);
    for (const error of report.errors) lines.push(`  ${error.target}: ${error.message}`);
  }
  lines.push(`Took ${formatCount(report.finishedAt.getTime() - report.startedAt.getTime())} ms.`);
  return `${lines.join('\n')}\n`;
}

/** Both retention commands exit 1 when the run left something in place (errors, or interrupted), else 0. */
export function retentionExitCode(report: RetentionReport): ExitCode {
  return report.errors.length > 0 || report.interrupted ? ExitCode.refused : ExitCode.ok;
}

import { parseArgs } from 'node:util';
import type { TelemetryOutputs } from '../../client/index.ts';
import { CONNECTION_OPTIONS, parseInteger, parseOrExplain, refuseExtraPositionals, requireValue } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatCount, formatTable, formatTime, writeJson } from '../format.ts';

type RetentionReport = TelemetryOutputs['admin']['retention']['run'];

const KEY_NEEDED = 'an admin key (not bound to a workspace, for retention run)';
const CONNECTION_HELP = 'Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; an admin key)';

// ---- retention run --------------------------------------------------------------------------

async function runRetention(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  refuseExtraPositionals(positionals);
  const session = openSession(values, io, KEY_NEEDED);
  const report = await session.call((client) => client.admin.retention.run.mutate({ dryRun: values['dry-run'] === true }));
  if (values.json) writeJson(io.stdout, report);
  else io.stdout.write(describeReport(report));
  // Like `npm run retention`: something left in place (an archive that failed, a stop) is exit 1.
  return report.errors.length > 0 || report.interrupted ? ExitCode.refused : ExitCode.ok;
}

export function describeReport(report: RetentionReport): string {
  const lines: string[] = [];
  const would = report.dryRun ? 'would be ' : '';
  lines.push(report.dryRun ? 'Retention dry run: nothing was changed.' : 'Retention run finished.');
  if (report.interrupted) lines.push('Interrupted: the service stopped the run before it finished; the next run continues.');
  lines.push(`Default retention: ${report.defaultDays} days (events before ${formatTime(report.defaultCutoff)} expire); longest allowed: ${report.maxDays} days.`);
  for (const cutoff of report.cutoffs) {
    const clamped = cutoff.requestedDays === undefined ? '' : `, set to ${cutoff.requestedDays} but capped by RETENTION_MAX_DAYS`;
    lines.push(`  workspace ${cutoff.workspaceId}: ${cutoff.days} days (before ${formatTime(cutoff.cutoff)}${clamped})`);
  }
  lines.push(`Whole partitions ${report.dryRun ? 'would go' : 'go'} for days ending by ${formatTime(report.partitionCutoff)} (the longest retention in effect: ${report.longestDays} days).`);
  const droppedRows = report.partitionsDropped.reduce((sum, partition) => sum + partition.rows, 0);
  lines.push(`Partitions ${would}dropped: ${report.partitionsDropped.length} (${formatCount(droppedRows)} events)`);
  for (const partition of report.partitionsDropped) lines.push(`  ${partition.name} (${partition.day}): ${formatCount(partition.rows)} events`);
  const deletedRows = report.rowsDeleted.reduce((sum, item) => sum + item.rows, 0);
  lines.push(`Events ${would}deleted one by one: ${formatCount(deletedRows)}`);
  for (const item of report.rowsDeleted) lines.push(`  ${item.workspaceId ?? '(no workspace)'}: ${formatCount(item.rows)}`);
  lines.push(
    `Ledger ids ${would}forgotten: ${formatCount(report.ledgerRowsDeleted)}; rollup rows ${would}deleted: ${formatCount(report.rollupRowsDeleted.minute)} per-minute, ${formatCount(report.rollupRowsDeleted.hour)} per-hour`,
  );
  if (report.archives.length > 0) {
    lines.push(`Archives written: ${report.archives.length}`);
    for (const archive of report.archives) lines.push(`  ${archive.file} (${formatCount(archive.rows)} events, day ${archive.day})`);
  }
  if (report.partitionsCreated.length > 0) lines.push(`Partitions prepared: ${report.partitionsCreated.join(', ')}`);
  if (report.errors.length > 0) {
    lines.push(`Left in place after errors (the next run retries): ${report.errors.length}`);
    for (const error of report.errors) lines.push(`  ${error.target}: ${error.message}`);
  }
  lines.push(`Took ${report.finishedAt.getTime() - report.startedAt.getTime()} ms.`);
  return `${lines.join('\n')}\n`;
}

const RUN_HELP = `Usage:
  telemetry retention run [--dry-run] [--json]

Runs the retention job now (admin.retention.run) and prints its report: the cutoffs, the daily
partitions dropped and the events deleted (archived first when the service has ARCHIVE_DIR).
--dry-run computes the same report and changes nothing. Needs an admin key not bound to a
workspace. Exits 1 when the report lists errors or the run was interrupted (something was
left in place for the next run).

${CONNECTION_HELP}

Example:
  telemetry retention run --dry-run
`;

// ---- retention set / clear / list -----------------------------------------------------------

async function setRetention(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, workspace: { type: 'string' }, days: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  refuseExtraPositionals(positionals);
  const workspaceId = requireValue(values.workspace, '--workspace');
  const days = parseInteger(requireValue(values.days, '--days'), '--days', { min: 1, max: 3650 });
  const session = openSession(values, io, KEY_NEEDED);
  const override = await session.call((client) => client.admin.retention.set.mutate({ workspaceId, days }));
  if (values.json) writeJson(io.stdout, override);
  else io.stdout.write(`Workspace ${override.workspaceId} keeps events for ${override.days} days (from the next retention run).\n`);
  return ExitCode.ok;
}

const SET_HELP = `Usage:
  telemetry retention set --workspace <uuid> --days <n> [--json]

Keeps a workspace's events for n days instead of the default (admin.retention.set), from 1 up
to the service's RETENTION_MAX_DAYS (shown by 'telemetry retention list'). The next retention
run applies it.

${CONNECTION_HELP}

Example:
  telemetry retention set --workspace 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61 --days 30
`;

async function clearRetention(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, workspace: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  refuseExtraPositionals(positionals);
  const workspaceId = requireValue(values.workspace, '--workspace');
  const session = openSession(values, io, KEY_NEEDED);
  const cleared = await session.call((client) => client.admin.retention.clear.mutate({ workspaceId }));
  if (values.json) writeJson(io.stdout, cleared);
  else if (cleared.cleared) io.stdout.write(`Workspace ${cleared.workspaceId} is back to the default retention (${cleared.days} days).\n`);
  else io.stdout.write(`Workspace ${cleared.workspaceId} had no override; it keeps the default retention (${cleared.days} days).\n`);
  return ExitCode.ok;
}

const CLEAR_HELP = `Usage:
  telemetry retention clear --workspace <uuid> [--json]

Removes a workspace's retention override (admin.retention.clear): it goes back to the default.

${CONNECTION_HELP}
`;

async function listRetention(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const session = openSession(values, io, KEY_NEEDED);
  const policies = await session.call((client) => client.admin.retention.list.query());
  if (values.json) {
    writeJson(io.stdout, policies);
    return ExitCode.ok;
  }
  io.stdout.write(`Default retention: ${policies.defaultDays} days; longest allowed: ${policies.maxDays} days\n`);
  if (policies.overrides.length === 0) io.stdout.write('No workspace overrides.\n');
  else {
    const rows = policies.overrides.map((item) => [item.workspaceId, String(item.days), formatTime(item.updatedAt), item.updatedByKeyId ?? '']);
    io.stdout.write(formatTable(['workspace', 'days', 'updated', 'by key'], rows));
  }
  return ExitCode.ok;
}

const LIST_HELP = `Usage:
  telemetry retention list [--json]

The default retention and every workspace override (admin.retention.list).

${CONNECTION_HELP}
`;

export const retentionCommands: Command[] = [
  { path: ['retention', 'run'], summary: 'Run the retention job now, or a dry run', help: RUN_HELP, run: runRetention },
  { path: ['retention', 'set'], summary: "Set a workspace's retention in days", help: SET_HELP, run: setRetention },
  { path: ['retention', 'clear'], summary: "Remove a workspace's retention override", help: CLEAR_HELP, run: clearRetention },
  { path: ['retention', 'list'], summary: 'Show the default retention and the overrides', help: LIST_HELP, run: listRetention },
];

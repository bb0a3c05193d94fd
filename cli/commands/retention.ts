import { parseArgs } from 'node:util';
import { CONNECTION_OPTIONS, parseInteger, parseOrExplain, refuseExtraPositionals, requireValue } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatTable, formatTime, writeJson } from '../format.ts';
import { formatRetentionReport, retentionExitCode } from '../retention-report.ts';

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
  else io.stdout.write(formatRetentionReport(report));
  return retentionExitCode(report);
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
    parseArgs({
      args,
      options: { ...CONNECTION_OPTIONS, workspace: { type: 'string' }, days: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
    }),
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
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true }),
  );
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

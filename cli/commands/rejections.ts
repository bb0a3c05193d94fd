import { parseArgs } from 'node:util';
import { CONNECTION_OPTIONS, parseInteger, parseOrExplain, refuseExtraPositionals } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatCount, formatTable, formatTime, writeJson } from '../format.ts';

const KEY_NEEDED = 'a read key (or an admin key with --workspace)';
const flagOf = (field: string) => ({ workspaceId: '--workspace', limit: '--limit' })[field];

async function showRejections(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const options = { ...CONNECTION_OPTIONS, workspace: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } } as const;
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const limit = parseInteger(values.limit ?? '20', '--limit', { min: 1, max: 100 });
  const session = openSession(values, io, KEY_NEEDED, { flagOf });
  const answer = await session.call((client) =>
    client.telemetry.adapterRejections.query({ limit, ...(values.workspace !== undefined && { workspaceId: values.workspace }) }),
  );
  if (values.json) {
    writeJson(io.stdout, answer);
    return ExitCode.ok;
  }
  if (answer.counts.length === 0) {
    io.stdout.write('Nothing sent through the OpenTelemetry, Segment or PostHog adapters was refused.\n');
    return ExitCode.ok;
  }
  io.stdout.write(
    formatTable(
      ['adapter', 'reason', 'refused', 'last'],
      answer.counts.map((count) => [count.adapter, count.reason, formatCount(count.refused), formatTime(count.lastAt)]),
    ),
  );
  io.stdout.write('\nLatest:\n');
  io.stdout.write(
    formatTable(
      ['at', 'adapter', 'reason', 'record', 'path', 'message', 'request'],
      answer.recent.map((rejection) => [
        formatTime(rejection.at),
        rejection.adapter,
        rejection.reason,
        rejection.recordIndex === null ? 'request' : String(rejection.recordIndex),
        rejection.path,
        rejection.message,
        rejection.requestId ?? '',
      ]),
    ),
  );
  return ExitCode.ok;
}

const HELP = `Usage:
  telemetry rejections [--workspace <uuid>] [--limit <n>] [--json]

What the ingest adapters (OpenTelemetry, Segment, PostHog) refused in a workspace
(telemetry.adapterRejections): those SDKs never read per-event results, so this is where a record
that was not stored shows up. Totals by adapter and reason, then the latest refusals with the
record's position in its request, the offending field, the reason in words and the request id
(X-Request-Id) to find it in the service's logs. The last 100 are kept.

  --workspace <uuid>   the workspace (needed with an admin key; a read key knows its own)
  --limit <n>          latest refusals to show, 1 to 100 (default 20)

Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; a read key, or an admin key with --workspace)
`;

export const rejectionsCommands: Command[] = [
  { path: ['rejections'], summary: 'Show what the OpenTelemetry, Segment and PostHog adapters refused', help: HELP, run: showRejections },
];

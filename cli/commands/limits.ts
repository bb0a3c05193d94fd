import { parseArgs } from 'node:util';
import { CONNECTION_OPTIONS, parseChoice, parseInteger, parseOrExplain, refuseExtraPositionals, requireValue, UsageError } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatTable, formatTime, writeJson } from '../format.ts';

const KEY_NEEDED = 'an admin key (not bound to a workspace, for limits set and clear)';
const KEY_KINDS = ['ingest', 'read', 'admin'] as const;
const CONNECTION_HELP = 'Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; an admin key)';
const flagOf = (field: string) => ({ workspaceId: '--workspace', kind: '--kind', rateLimit: '--events-per-second/--burst' })[field];

const budget = (rateLimit: { eventsPerSecond: number; burst: number }) => `${rateLimit.eventsPerSecond}/s, burst ${rateLimit.burst}`;

// ---- limits set -----------------------------------------------------------------------------

async function setLimit(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const options = {
    ...CONNECTION_OPTIONS,
    workspace: { type: 'string' },
    kind: { type: 'string' },
    'events-per-second': { type: 'string' },
    burst: { type: 'string' },
    json: { type: 'boolean' },
  } as const;
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const workspaceId = requireValue(values.workspace, '--workspace');
  const kind = parseChoice(values.kind, '--kind', KEY_KINDS);
  if (!kind) throw new UsageError(`--kind is required: ${KEY_KINDS.join(', ')}`);
  const eventsPerSecond = parseInteger(requireValue(values['events-per-second'], '--events-per-second'), '--events-per-second', { min: 1, max: 1_000_000 });
  const burst = parseInteger(values.burst ?? '0', '--burst', { min: 0, max: 10_000_000 });
  const session = openSession(values, io, KEY_NEEDED, { flagOf });
  const limit = await session.call((client) => client.admin.workspaceLimits.set.mutate({ workspaceId, kind, rateLimit: { eventsPerSecond, burst } }));
  if (values.json) writeJson(io.stdout, limit);
  else io.stdout.write(`The ${limit.kind} keys of workspace ${limit.workspaceId} now share ${budget(limit.rateLimit)}.\n`);
  return ExitCode.ok;
}

const SET_HELP = `Usage:
  telemetry limits set --workspace <uuid> --kind ingest|read|admin --events-per-second <n> [--burst <n>] [--json]

Sets a workspace's rate ceiling for one kind of key (admin.workspaceLimits.set): every key of
that kind bound to the workspace spends from this one budget as well as its own, so no number of
keys, nor their own limits, gets the workspace more. Raising or lowering it needs an admin key not
bound to a workspace; a bound admin key cannot create keys above it.

  --events-per-second <n>   sustained events (ingest) or calls (read, admin) per second
  --burst <n>               extra units per 10-second window (default 0)

${CONNECTION_HELP}

Example:
  telemetry limits set --workspace 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61 --kind ingest --events-per-second 500 --burst 2000
`;

// ---- limits clear ---------------------------------------------------------------------------

async function clearLimit(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({
      args,
      options: { ...CONNECTION_OPTIONS, workspace: { type: 'string' }, kind: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
    }),
  );
  refuseExtraPositionals(positionals);
  const workspaceId = requireValue(values.workspace, '--workspace');
  const kind = parseChoice(values.kind, '--kind', KEY_KINDS);
  const session = openSession(values, io, KEY_NEEDED, { flagOf });
  const cleared = await session.call((client) => client.admin.workspaceLimits.clear.mutate({ workspaceId, ...(kind && { kind }) }));
  if (values.json) writeJson(io.stdout, cleared);
  else if (cleared.cleared.length > 0)
    io.stdout.write(`Workspace ${cleared.workspaceId} is back to the default ceiling for ${cleared.cleared.join(', ')} keys.\n`);
  else io.stdout.write(`Workspace ${cleared.workspaceId} had no ceiling override; it keeps the defaults.\n`);
  return ExitCode.ok;
}

const CLEAR_HELP = `Usage:
  telemetry limits clear --workspace <uuid> [--kind ingest|read|admin] [--json]

Removes a workspace's rate ceiling overrides (admin.workspaceLimits.clear), of one kind of key or
of all: the workspace goes back to the defaults (RATE_LIMIT_WORKSPACE_*). Needs an admin key not
bound to a workspace.

${CONNECTION_HELP}
`;

// ---- limits list ----------------------------------------------------------------------------

async function listLimits(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  refuseExtraPositionals(positionals);
  const session = openSession(values, io, KEY_NEEDED);
  const limits = await session.call((client) => client.admin.workspaceLimits.list.query());
  if (values.json) {
    writeJson(io.stdout, limits);
    return ExitCode.ok;
  }
  io.stdout.write(`Default ceiling per workspace: ${KEY_KINDS.map((kind) => `${kind} ${budget(limits.defaults[kind])}`).join('; ')}\n`);
  if (limits.overrides.length === 0) io.stdout.write('No workspace overrides.\n');
  else {
    const rows = limits.overrides.map((item) => [
      item.workspaceId,
      item.kind,
      String(item.rateLimit.eventsPerSecond),
      String(item.rateLimit.burst),
      formatTime(item.updatedAt),
      item.updatedByKeyId ?? '',
    ]);
    io.stdout.write(formatTable(['workspace', 'kind', 'per second', 'burst', 'updated', 'by key'], rows));
  }
  return ExitCode.ok;
}

const LIST_HELP = `Usage:
  telemetry limits list [--json]

The default workspace rate ceilings and every workspace override (admin.workspaceLimits.list); a
key bound to a workspace sees only its own.

${CONNECTION_HELP}
`;

export const limitsCommands: Command[] = [
  { path: ['limits', 'set'], summary: "Set a workspace's rate ceiling for one kind of key", help: SET_HELP, run: setLimit },
  { path: ['limits', 'clear'], summary: "Remove a workspace's rate ceiling overrides", help: CLEAR_HELP, run: clearLimit },
  { path: ['limits', 'list'], summary: 'Show the default workspace ceilings and the overrides', help: LIST_HELP, run: listLimits },
];

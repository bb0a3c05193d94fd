import { parseArgs } from 'node:util';
import { CONNECTION_OPTIONS, parseChoice, parseInteger, parseOrExplain, refuseExtraPositionals, requirePositional, UsageError } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatTable, formatTime, writeJson } from '../format.ts';

const KEY_NEEDED = 'an admin key';
const KEY_KINDS = ['ingest', 'read', 'admin'] as const;
const CONNECTION_HELP = 'Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; an admin key)';
const idFlag = (field: string) => (field === 'id' ? '<id>' : undefined);

// ---- keys create ----------------------------------------------------------------------------

const CREATE_OPTIONS = {
  ...CONNECTION_OPTIONS,
  kind: { type: 'string' },
  workspace: { type: 'string' },
  'all-workspaces': { type: 'boolean' },
  name: { type: 'string' },
  'events-per-second': { type: 'string' },
  burst: { type: 'string' },
  json: { type: 'boolean' },
} as const;

async function createKey(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: CREATE_OPTIONS, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const kind = parseChoice(values.kind, '--kind', KEY_KINDS);
  if (!kind) throw new UsageError(`--kind is required: ${KEY_KINDS.join(', ')}`);
  if (values.workspace !== undefined && values['all-workspaces']) throw new UsageError('Give either --workspace or --all-workspaces, not both');
  if (values['all-workspaces'] && kind !== 'ingest') throw new UsageError('--all-workspaces is for ingest keys only: give --workspace');
  const eventsPerSecond = parseInteger(values['events-per-second'], '--events-per-second', { min: 1, max: 1_000_000 });
  const burst = parseInteger(values.burst, '--burst', { min: 0, max: 10_000_000 });
  const session = openSession(values, io, KEY_NEEDED, {
    flagOf: (field) => ({ rateLimit: '--events-per-second/--burst', workspaceId: '--workspace', allWorkspaces: '--all-workspaces' })[field],
  });
  const created = await session.call((client) =>
    client.admin.keys.create.mutate({
      kind,
      ...(values.workspace !== undefined && { workspaceId: values.workspace }),
      ...(values['all-workspaces'] && { allWorkspaces: true }),
      ...(values.name !== undefined && { name: values.name }),
      ...((eventsPerSecond !== undefined || burst !== undefined) && { rateLimit: { eventsPerSecond: eventsPerSecond ?? 1, burst: burst ?? 0 } }),
    }),
  );
  if (values.json) {
    writeJson(io.stdout, created);
  } else {
    io.stdout.write(`${created.key}\n`);
    io.stderr.write(
      `Created ${created.kind} key ${created.id}${created.workspaceId ? ` in workspace ${created.workspaceId}` : created.kind === 'ingest' ? ' for all workspaces (each event must name its workspace)' : ' (not bound to a workspace)'}. The secret above is shown only now: store it.\n`,
    );
  }
  return ExitCode.ok;
}

const CREATE_HELP = `Usage:
  telemetry keys create --kind ingest|read|admin --workspace <id> [--name <text>] [--json]
  telemetry keys create --kind ingest --all-workspaces [--name <text>] [--json]
  telemetry keys create --kind admin [--name <text>] [--json]

Creates an API key (admin.keys.create) in a workspace (see telemetry workspaces list). The secret
is printed once, alone on stdout (so KEY=$(telemetry keys create ...) works); what it is goes to
stderr. --json prints id, key, kind and workspace as one JSON object.

  --kind <kind>               ingest (send events), read (query one workspace) or admin (everything)
  --workspace <id>            the workspace the key is created in (required for read keys; an
                              ingest key needs it or --all-workspaces)
  --all-workspaces            ingest keys only: a key for a trusted backend that names the workspace
                              on every event (events naming none, or an unknown one, are refused).
                              Whoever holds it can write into every workspace: prefer --workspace
  --name <text>               a label, e.g. "web app"
  --events-per-second <n>     override the kind's sustained rate limit
  --burst <n>                 with --events-per-second: extra units per 10-second window (default 0)

An admin key without --workspace manages every workspace; with it, only that one.

${CONNECTION_HELP}

Examples:
  telemetry keys create --kind ingest --workspace 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61 --name "web app"
  export TELEMETRY_KEY=$(telemetry keys create --kind read --workspace 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61)
  telemetry keys create --kind ingest --all-workspaces --name "billing backend"
`;

// ---- keys list ------------------------------------------------------------------------------

async function listKeys(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' }, all: { type: 'boolean' } }, allowPositionals: true }),
  );
  refuseExtraPositionals(positionals);
  const session = openSession(values, io, KEY_NEEDED);
  const keys = await session.call((client) => client.admin.keys.list.query());
  const shown = values.all ? keys : keys.filter((key) => key.revokedAt === null);
  if (values.json) {
    writeJson(io.stdout, shown);
    return ExitCode.ok;
  }
  const rows = shown.map((key) => [
    key.id,
    key.kind,
    // A key without a workspace acts on all of them (an unbound admin, an all-workspaces ingest key).
    key.workspaceId ?? '(all)',
    key.name ?? '',
    key.displayPrefix,
    key.rateLimit ? `${key.rateLimit.eventsPerSecond}/s +${key.rateLimit.burst}` : '',
    formatTime(key.createdAt),
    ...(values.all ? [formatTime(key.revokedAt)] : []),
  ]);
  io.stdout.write(formatTable(['id', 'kind', 'workspace', 'name', 'prefix', 'rate limit', 'created', ...(values.all ? ['revoked'] : [])], rows));
  return ExitCode.ok;
}

const LIST_HELP = `Usage:
  telemetry keys list [--all] [--json]

API keys (admin.keys.list), never their secrets: id, kind, workspace ("(all)" for an unbound admin
key or an all-workspaces ingest key), name, the start of the key and its rate limit. Revoked keys
only with --all.

${CONNECTION_HELP}
`;

// ---- keys revoke / rotate -------------------------------------------------------------------

async function revokeKey(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  const id = requirePositional(positionals, 0, 'The key id (see telemetry keys list)');
  const session = openSession(values, io, KEY_NEEDED, { flagOf: idFlag });
  const revoked = await session.call((client) => client.admin.keys.revoke.mutate({ id }));
  if (values.json) writeJson(io.stdout, revoked);
  else io.stdout.write(`Revoked key ${revoked.id} at ${formatTime(revoked.revokedAt)}\n`);
  return ExitCode.ok;
}

const REVOKE_HELP = `Usage:
  telemetry keys revoke <id> [--json]

Revokes an API key (admin.keys.revoke): its next request fails with 401.

${CONNECTION_HELP}

Example:
  telemetry keys revoke 3d0f5c1e-2b7a-4c9d-8e6f-1a2b3c4d5e6f
`;

async function rotateKey(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  const id = requirePositional(positionals, 0, 'The key id (see telemetry keys list)');
  const session = openSession(values, io, KEY_NEEDED, { flagOf: idFlag });
  const created = await session.call((client) => client.admin.keys.rotate.mutate({ id }));
  if (values.json) {
    writeJson(io.stdout, created);
  } else {
    io.stdout.write(`${created.key}\n`);
    io.stderr.write(`Key ${id} is revoked; its replacement is ${created.id}. The secret above is shown only now: store it.\n`);
  }
  return ExitCode.ok;
}

const ROTATE_HELP = `Usage:
  telemetry keys rotate <id> [--json]

Revokes a key and issues a new one with the same kind, workspace, name and rate limit
(admin.keys.rotate). The new secret is printed once, alone on stdout.

${CONNECTION_HELP}
`;

export const keysCommands: Command[] = [
  { path: ['keys', 'create'], summary: 'Create an API key (prints the secret once)', help: CREATE_HELP, run: createKey },
  { path: ['keys', 'list'], summary: 'List API keys (never their secrets)', help: LIST_HELP, run: listKeys },
  { path: ['keys', 'revoke'], summary: 'Revoke an API key', help: REVOKE_HELP, run: revokeKey },
  { path: ['keys', 'rotate'], summary: 'Replace an API key with a new secret', help: ROTATE_HELP, run: rotateKey },
];

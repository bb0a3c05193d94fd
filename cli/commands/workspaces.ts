import { parseArgs } from 'node:util';
import { CONNECTION_OPTIONS, parseOrExplain, refuseExtraPositionals, requirePositional } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatTable, formatTime, writeJson } from '../format.ts';

const KEY_NEEDED = 'an admin key (not bound to a workspace, for workspaces create)';
const CONNECTION_HELP = 'Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; an admin key)';
const JSON_OPTIONS = { ...CONNECTION_OPTIONS, json: { type: 'boolean' } } as const;
const flagOf = (field: string) => ({ id: '<id>', name: '<name>' })[field];

// ---- workspaces create ----------------------------------------------------------------------

async function createWorkspace(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: JSON_OPTIONS, allowPositionals: true }));
  const name = requirePositional(positionals, 0, 'The workspace name (quote it if it has spaces)');
  const session = openSession(values, io, KEY_NEEDED, { flagOf });
  const workspace = await session.call((client) => client.admin.workspaces.create.mutate({ name }));
  if (values.json) {
    writeJson(io.stdout, workspace);
  } else {
    io.stdout.write(`${workspace.id}\n`);
    io.stderr.write(`Created workspace "${workspace.name}". Create its keys with: telemetry keys create --kind ingest --workspace ${workspace.id}\n`);
  }
  return ExitCode.ok;
}

const CREATE_HELP = `Usage:
  telemetry workspaces create <name> [--json]

Creates a workspace (admin.workspaces.create; an admin key not bound to a workspace). Its id is
printed alone on stdout (so WORKSPACE=$(telemetry workspaces create ...) works); the rest goes to
stderr. --json prints id, name and createdAt as one JSON object.

Names are trimmed, 1 to 100 characters, and unique whatever their case (exit code 1 when taken).

${CONNECTION_HELP}

Examples:
  telemetry workspaces create "Web shop"
  export WORKSPACE=$(telemetry workspaces create "Mobile app")
`;

// ---- workspaces list ------------------------------------------------------------------------

async function listWorkspaces(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: JSON_OPTIONS, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const session = openSession(values, io, KEY_NEEDED);
  const { workspaces, truncated } = await session.call((client) => client.admin.workspaces.list.query());
  if (values.json) {
    writeJson(io.stdout, { workspaces, truncated });
    return ExitCode.ok;
  }
  io.stdout.write(
    formatTable(
      ['id', 'name', 'created'],
      workspaces.map((workspace) => [workspace.id, workspace.name, formatTime(workspace.createdAt)]),
    ),
  );
  if (truncated) io.stderr.write(`Only the first ${workspaces.length} workspaces are shown.\n`);
  return ExitCode.ok;
}

const LIST_HELP = `Usage:
  telemetry workspaces list [--json]

Workspaces by name (admin.workspaces.list): id, name and when each was created. An admin key
bound to a workspace sees only its own.

${CONNECTION_HELP}
`;

// ---- workspaces rename ----------------------------------------------------------------------

async function renameWorkspace(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: JSON_OPTIONS, allowPositionals: true }));
  const id = requirePositional(positionals, 0, 'The workspace id (see telemetry workspaces list)', 2);
  const name = requirePositional(positionals, 1, 'The new name (quote it if it has spaces)');
  const session = openSession(values, io, KEY_NEEDED, { flagOf });
  const workspace = await session.call((client) => client.admin.workspaces.rename.mutate({ id, name }));
  if (values.json) writeJson(io.stdout, workspace);
  else io.stdout.write(`Workspace ${workspace.id} is now named "${workspace.name}".\n`);
  return ExitCode.ok;
}

const RENAME_HELP = `Usage:
  telemetry workspaces rename <id> <name> [--json]

Renames a workspace (admin.workspaces.rename): an unbound admin key renames any, a bound one only
its own. Keys and events refer to the id, so they are not affected.

${CONNECTION_HELP}

Example:
  telemetry workspaces rename 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61 "Web shop (EU)"
`;

export const workspacesCommands: Command[] = [
  { path: ['workspaces', 'create'], summary: 'Create a workspace (prints its id)', help: CREATE_HELP, run: createWorkspace },
  { path: ['workspaces', 'list'], summary: 'List workspaces by name', help: LIST_HELP, run: listWorkspaces },
  { path: ['workspaces', 'rename'], summary: 'Rename a workspace', help: RENAME_HELP, run: renameWorkspace },
];

import { parseArgs } from 'node:util';
import type { TelemetryOutputs } from '../../client/index.ts';
import { CONNECTION_OPTIONS, parseOrExplain, refuseExtraPositionals, requirePositional, requireValue } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatCount, formatTime, writeJson } from '../format.ts';

type ErasureReceipt = TelemetryOutputs['admin']['erasure']['request'];

const KEY_NEEDED = 'an admin key';
const CONNECTION_HELP = 'Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; an admin key)';

function describeReceipt(receipt: ErasureReceipt): string {
  const scope = receipt.workspaceId ? `in workspace ${receipt.workspaceId}` : 'in every workspace';
  return `${[
    `Erased ${formatCount(receipt.deletedCount)} events of user ${receipt.userId} ${scope}.`,
    `Request ${receipt.requestId}, requested ${formatTime(receipt.requestedAt)}, completed ${formatTime(receipt.completedAt)}.`,
  ].join('\n')}\n`;
}

async function eraseUser(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({
      args,
      options: { ...CONNECTION_OPTIONS, user: { type: 'string' }, workspace: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
    }),
  );
  refuseExtraPositionals(positionals);
  const userId = requireValue(values.user, '--user');
  const session = openSession(values, io, KEY_NEEDED);
  const receipt = await session.call((client) =>
    client.admin.erasure.request.mutate({ userId, ...(values.workspace !== undefined && { workspaceId: values.workspace }) }),
  );
  if (values.json) writeJson(io.stdout, receipt);
  else io.stdout.write(describeReceipt(receipt));
  return ExitCode.ok;
}

const ERASE_HELP = `Usage:
  telemetry erase --user <uuid> [--workspace <uuid>] [--json]
  telemetry erase status <requestId> [--json]

Deletes every stored event of a user (admin.erasure.request, the GDPR right to erasure), in one
transaction, and prints the request id and how many events were deleted. Without --workspace it
erases the user in every workspace (admin keys not bound to a workspace only). Events of the user
sent later are stored as usual.

  --user <uuid>           the user whose events are deleted
  --workspace <uuid>      only in this workspace

${CONNECTION_HELP}

Examples:
  telemetry erase --user 0b5f8a3e-3c52-4a8f-9a43-5d2f0e4a8b11 --workspace 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61
  telemetry erase status 9a1c0d4e-5b6f-4a7b-8c9d-0e1f2a3b4c5d
`;

async function erasureStatus(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  const requestId = requirePositional(positionals, 0, 'The request id (printed by telemetry erase)');
  const session = openSession(values, io, KEY_NEEDED, { flagOf: (field) => (field === 'requestId' ? '<requestId>' : undefined) });
  const receipt = await session.call((client) => client.admin.erasure.status.query({ requestId }));
  if (values.json) writeJson(io.stdout, receipt);
  else io.stdout.write(describeReceipt(receipt));
  return ExitCode.ok;
}

const STATUS_HELP = `Usage:
  telemetry erase status <requestId> [--json]

An erasure request (admin.erasure.status): the user, the workspace and how many events it deleted.

${CONNECTION_HELP}
`;

export const eraseCommands: Command[] = [
  { path: ['erase'], summary: 'Delete every event of a user (GDPR erasure)', help: ERASE_HELP, run: eraseUser },
  { path: ['erase', 'status'], summary: 'Show an erasure request', help: STATUS_HELP, run: erasureStatus },
];

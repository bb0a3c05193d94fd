import { EventSource } from 'eventsource';
import { parseArgs } from 'node:util';
import { networkFailureReason } from '../../client/retry-policy.ts';
import { CONNECTION_OPTIONS, parseInteger, parseOrExplain, refuseExtraPositionals } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { toJson, writeJson } from '../format.ts';
import { asSource, type StoredEvent } from './query.ts';

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  type: { type: 'string' },
  name: { type: 'string' },
  source: { type: 'string' },
  user: { type: 'string' },
  'target-type': { type: 'string' },
  workspace: { type: 'string' },
  count: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const KEY_NEEDED = 'a read key (or an admin key with --workspace)';

const HELP = `Usage:
  telemetry tail [filters] [--json] [--count <n>]

Prints newly committed events of one workspace as they arrive (telemetry.live), one line each.
After a dropped connection it reconnects and resumes where it stopped, missing nothing the
service still holds. Ctrl-C stops it.

Filters (all must match):
  --type <type>           event type
  --name <name>           event name
  --source <source>       web, mobile, backend, cli or extension
  --user <uuid>           user id
  --target-type <text>    target type
  --workspace <uuid>      the workspace (needed with an admin key; a read key knows its own)

Output:
  --json                  one JSON object per line (NDJSON) instead of text
  --count <n>             exit after n events

Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; a read or admin key). The key
is sent in a header only: the stream itself opens with a short-lived ticket minted with it.

Examples:
  telemetry tail --type error
  telemetry tail --workspace 6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61 --json | jq .name
`;

export function describeEventLine(event: StoredEvent): string {
  return [
    event.createdAt,
    event.source,
    event.eventType,
    event.name,
    ...(event.userId ? [`user=${event.userId}`] : []),
    ...(event.targetType || event.targetId ? [`target=${event.targetType ?? ''}:${event.targetId ?? ''}`] : []),
    ...(event.metadata ? [toJson(event.metadata)] : []),
  ].join('  ');
}

async function run(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: OPTIONS, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const count = parseInteger(values.count, '--count', { min: 1, max: Number.MAX_SAFE_INTEGER });
  const session = openSession(values, io, KEY_NEEDED, { EventSource });
  const input = {
    ...(values.workspace !== undefined && { workspaceId: values.workspace }),
    ...(values.type !== undefined && { eventType: values.type }),
    ...(values.name !== undefined && { name: values.name }),
    ...(values.user !== undefined && { userId: values.user }),
    ...(values['target-type'] !== undefined && { targetType: values['target-type'] }),
  };
  const source = asSource(values.source);

  return new Promise<ExitCode>((resolve) => {
    let received = 0;
    let connected = false;
    let finished = false;
    let lastNotice = '';
    let listeningNotice: ReturnType<typeof setTimeout> | undefined;
    const finish = (exitCode: ExitCode) => {
      if (finished) return;
      finished = true;
      clearTimeout(listeningNotice);
      subscription.unsubscribe();
      stopListening();
      resolve(exitCode);
    };
    const fail = (error: unknown) => {
      const failure = session.explain(error);
      io.stderr.write(`${failure.message}\n`);
      finish(failure.exitCode);
    };
    const subscription = session.client.telemetry.live.subscribe(
      { ...input, ...(source !== undefined && { source }) },
      {
        onStarted() {
          // The stream opens before the service checks the key and filters, which then end it
          // at once: a short wait keeps "Listening" from appearing above a refusal.
          if (!connected && io.stderr.isTTY) listeningNotice = setTimeout(() => io.stderr.write('Listening for events (Ctrl-C to stop)\n'), 300);
          if (connected && lastNotice !== '') io.stderr.write('Reconnected\n');
          connected = true;
          lastNotice = '';
        },
        onData({ data: event }) {
          if (finished) return;
          received += 1;
          if (values.json) writeJson(io.stdout, event);
          else io.stdout.write(`${describeEventLine(event)}\n`);
          if (received === count) finish(ExitCode.ok);
        },
        onError: fail,
        onConnectionStateChange(state) {
          if (state.state !== 'connecting' || !state.error) return;
          // Before the first connection a failure is most likely a wrong URL or a stopped service:
          // say so and stop, rather than retry silently forever. Later ones are retried by the
          // client, which resumes after the last event received.
          if (!connected) return fail(state.error);
          const notice = `Connection lost (${networkFailureReason(state.error) ?? state.error.message}); reconnecting…`;
          if (notice !== lastNotice) io.stderr.write(`${notice}\n`);
          lastNotice = notice;
        },
      },
    );
    // Ctrl-C is how a tail normally ends: exit 0 once the stream is closed.
    const stopListening = io.onInterrupt(() => finish(ExitCode.ok));
  });
}

export const tailCommand: Command = {
  path: ['tail'],
  summary: 'Print new events live as they are stored',
  help: HELP,
  run,
};

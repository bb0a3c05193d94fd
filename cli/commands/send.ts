import { parseArgs } from 'node:util';
import type { EventReceipt, JsonObject } from '../../client/index.ts';
import { uuidv7 } from '../../client/uuid7.ts';
import { CONNECTION_OPTIONS, parseInteger, parseJsonObject, parseOrExplain, parseTime, refuseExtraPositionals, UsageError } from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { describeField } from '../errors.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatCount, writeJson } from '../format.ts';
import { createBatchSender, type PendingEvent, type SentEvent } from '../ingest.ts';
import { readLines } from '../ndjson.ts';
import { createSendProgress, type SendTotals } from '../progress.ts';
import { DEFAULT_RETRY_POLICY } from '../retry.ts';

/** Far above any event the service accepts (metadata is capped at 32 KB); longer lines are refused unread. */
const MAX_LINE_LENGTH = 1024 * 1024;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  type: { type: 'string' },
  name: { type: 'string' },
  source: { type: 'string' },
  workspace: { type: 'string' },
  user: { type: 'string' },
  'target-type': { type: 'string' },
  'target-id': { type: 'string' },
  metadata: { type: 'string' },
  'created-at': { type: 'string' },
  id: { type: 'string' },
  'batch-size': { type: 'string' },
  'skip-lines': { type: 'string' },
  retries: { type: 'string' },
  progress: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const KEY_NEEDED = 'an ingest key (or an admin key)';
const DEFAULT_BATCH_SIZE = 500;

const HELP = `Usage:
  telemetry send --name <name> [--type <type>] [flags]     one event from flags
  telemetry send [-] [flags] < events.ndjson               NDJSON from stdin, one event per line

Stores events with telemetry.ingestBatch. Stdin is read when "-" is given, or when stdin is not a
terminal and --name is not. Events without an "id" get a UUIDv7 here, before the first attempt,
so a retry after a lost answer stores nothing twice.

Event flags (in NDJSON mode --type, --name, --source, --workspace and --user fill in what a line lacks):
  --type <type>           event type, e.g. ui.interaction, perf.metric, error (default: custom)
  --name <name>           event name, e.g. button.click
  --source <source>       web, mobile, backend, cli or extension (default: cli)
  --workspace <uuid>      workspace id
  --user <uuid>           user id
  --target-type <text>    e.g. button
  --target-id <text>      e.g. signup
  --metadata <json>       a JSON object, e.g. '{"value":8120,"unit":"ms"}'
  --created-at <time>     when it happened (ISO 8601, or 5m for five minutes ago)
  --id <uuid>             the event id (sending the same id again stores it once)

Sending:
  --batch-size <n>        events per request (default ${DEFAULT_BATCH_SIZE})
  --skip-lines <n>        NDJSON: start after line n (to resume a send that stopped; it says where)
  --retries <n>           retries of a request on network errors, 429 and 503 (default ${DEFAULT_RETRY_POLICY.retries})
  --progress              progress on stderr even when it is not a terminal
  --json                  print the summary (or the receipt) as JSON

Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; an ingest or admin key)

Exit codes: 0 every event stored (new or duplicate), 1 some rejected, 2 usage error,
3 missing or refused key, 4 service unreachable or failing.

Examples:
  telemetry send --type perf.metric --name build.duration --metadata '{"value":8120,"unit":"ms"}'
  telemetry send - < events.ndjson
  gunzip -c events.ndjson.gz | telemetry send --source backend --progress
`;

type Values = ReturnType<typeof parseSendArgs>['values'];

function parseSendArgs(args: string[]) {
  return parseOrExplain(() => parseArgs({ args, options: OPTIONS, allowPositionals: true }));
}

/** Fields set by flags, as an event's JSON. */
function fieldsFromFlags(values: Values, now: Date): JsonObject {
  const metadata = parseJsonObject(values.metadata, '--metadata');
  const createdAt = parseTime(values['created-at'], '--created-at', now);
  return {
    ...(values.id !== undefined && { id: values.id }),
    ...(values.workspace !== undefined && { workspaceId: values.workspace }),
    ...(values.user !== undefined && { userId: values.user }),
    ...(values.type !== undefined && { eventType: values.type }),
    ...(values.name !== undefined && { name: values.name }),
    ...(values['target-type'] !== undefined && { targetType: values['target-type'] }),
    ...(values['target-id'] !== undefined && { targetId: values['target-id'] }),
    ...(metadata !== undefined && { metadata }),
    ...(createdAt !== undefined && { createdAt: createdAt.toISOString() }),
  };
}

interface Rejection {
  line: number | undefined;
  id: string | undefined;
  code: string;
  path: string;
  message: string;
}

function rejectionOf(sent: SentEvent): Rejection | undefined {
  const { receipt, pending } = sent;
  if (receipt.status !== 'rejected') return undefined;
  const id = pending.event.id;
  return { line: pending.line, id: typeof id === 'string' ? id : undefined, code: receipt.code, path: receipt.path, message: receipt.message };
}

function describeRejection(rejection: Rejection, fromFlags: boolean): string {
  const where = rejection.path === '' ? '' : `${fromFlags ? describeField(rejection.path) : rejection.path}: `;
  const prefix = rejection.line === undefined ? 'rejected' : `line ${rejection.line}`;
  return `${prefix}: ${where}${rejection.message} (${rejection.code})`;
}

function exitCodeOf(totals: SendTotals): ExitCode {
  return totals.rejected > 0 ? ExitCode.refused : ExitCode.ok;
}

async function run(args: string[], { io, now }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseSendArgs(args);
  if (positionals.length > 0 && positionals[0] !== '-') throw new UsageError(`Unexpected argument "${positionals[0]}" (use "-" to read stdin)`);
  refuseExtraPositionals(positionals, 1);
  const readStdin = positionals[0] === '-' || (values.name === undefined && !io.stdin.isTTY);
  if (!readStdin && values.name === undefined) {
    throw new UsageError('Give the event with --name (and --type), or pipe NDJSON into "telemetry send -". See telemetry send --help.');
  }
  const batchSize = parseInteger(values['batch-size'], '--batch-size', { min: 1, max: 10_000 }) ?? DEFAULT_BATCH_SIZE;
  const skipLines = parseInteger(values['skip-lines'], '--skip-lines', { min: 0, max: Number.MAX_SAFE_INTEGER }) ?? 0;
  const retries = parseInteger(values.retries, '--retries', { min: 0, max: 100 }) ?? DEFAULT_RETRY_POLICY.retries;
  const defaults: JsonObject = { source: values.source ?? 'cli', eventType: values.type ?? 'custom', ...fieldsFromFlags(values, now()) };
  if (readStdin) {
    const onlyForOneEvent = (['metadata', 'created-at', 'id', 'target-type', 'target-id'] as const).filter((flag) => values[flag] !== undefined);
    if (onlyForOneEvent.length > 0) throw new UsageError(`--${onlyForOneEvent[0]} sets one event; it cannot apply to NDJSON from stdin`);
    // In NDJSON mode --type only fills in lines without one: there is no default type.
    if (values.type === undefined) delete defaults.eventType;
  }

  const session = openSession(values, io, KEY_NEEDED);
  const progress = createSendProgress(io.stderr, { forced: values.progress === true });
  const sender = createBatchSender({
    client: session.client,
    batchSize,
    retryPolicy: { ...DEFAULT_RETRY_POLICY, retries },
    onRetry: ({ attempt, delayMs, error }) =>
      progress.message(`${session.explain(error).message}; retry ${attempt} of ${retries} in ${(delayMs / 1000).toFixed(1)} s`),
  });
  const totals: SendTotals = { sent: 0, accepted: 0, duplicate: 0, rejected: 0 };
  const rejections: Rejection[] = [];
  const record = (rejection: Rejection) => {
    totals.rejected += 1;
    // Kept only for the JSON summary; otherwise printed at once, so a huge bad file costs no memory.
    if (values.json) rejections.push(rejection);
    else progress.message(describeRejection(rejection, !readStdin));
  };
  const sendBatch = async (batch: PendingEvent[]): Promise<SentEvent[]> => {
    const sent = await session.call(() => sender.send(batch));
    for (const item of sent) {
      totals.sent += 1;
      if (item.receipt.status === 'accepted') totals.accepted += 1;
      else if (item.receipt.status === 'duplicate') totals.duplicate += 1;
      const rejection = rejectionOf(item);
      if (rejection) record(rejection);
    }
    progress.update(totals);
    return sent;
  };

  if (!readStdin) {
    const [sent] = await sendBatch([{ event: { id: uuidv7(), ...defaults }, line: undefined }]);
    progress.finish(totals);
    if (sent) printReceipt(io, sent.receipt, values.json === true);
    return exitCodeOf(totals);
  }

  let batch: PendingEvent[] = [];
  let failed = true;
  // Batches go one after another, so every line up to this one has been answered for.
  let answeredThroughLine = skipLines;
  const sendLines = async (lines: PendingEvent[]) => {
    await sendBatch(lines);
    answeredThroughLine = Math.max(answeredThroughLine, ...lines.map((pending) => pending.line ?? 0));
  };
  try {
    for await (const line of readLines(io.stdin.stream, { maxLineLength: MAX_LINE_LENGTH })) {
      if (line.number <= skipLines) continue;
      if (line.tooLong) {
        record({ line: line.number, id: undefined, code: 'invalid_line', path: '', message: `longer than ${MAX_LINE_LENGTH} characters; not read` });
        continue;
      }
      if (line.text.trim() === '') continue;
      const parsed = parseLine(line.text);
      if (typeof parsed === 'string') {
        record({ line: line.number, id: undefined, code: 'invalid_line', path: '', message: parsed });
        continue;
      }
      batch.push({ event: { id: uuidv7(), ...defaults, ...parsed }, line: line.number });
      if (batch.length >= batchSize) {
        const full = batch;
        batch = [];
        await sendLines(full);
      }
    }
    if (batch.length > 0) await sendLines(batch);
    failed = false;
  } catch (error) {
    // Lines without an id got fresh ones: resending them from the start would store them twice.
    io.stderr.write(`Every line up to ${answeredThroughLine} was answered for; resume with --skip-lines ${answeredThroughLine}.\n`);
    throw error;
  } finally {
    progress.finish(totals);
    // After a failure before anything was sent, "0 accepted" would only hide the error message.
    if (totals.sent > 0 || totals.rejected > 0 || !failed) printSummary(io, totals, rejections, values.json === true);
  }
  return exitCodeOf(totals);
}

/** One NDJSON line as an event object, or why it is not one. */
function parseLine(text: string): JsonObject | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `not valid JSON: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object: every line must be one event object';
  // JSON.parse only ever builds JSON values, so an object it answers is a JSON object.
  return value as JsonObject;
}

function printReceipt(io: CommandContext['io'], receipt: EventReceipt, json: boolean) {
  if (json) writeJson(io.stdout, receipt);
  else if (receipt.status !== 'rejected') io.stdout.write(`${receipt.status} ${receipt.id} ${receipt.createdAt}\n`);
}

function printSummary(io: CommandContext['io'], totals: SendTotals, rejections: readonly Rejection[], json: boolean) {
  if (json) {
    writeJson(io.stdout, { accepted: totals.accepted, duplicate: totals.duplicate, rejected: totals.rejected, rejections });
    return;
  }
  io.stdout.write(`${formatCount(totals.accepted)} accepted, ${formatCount(totals.duplicate)} duplicate, ${formatCount(totals.rejected)} rejected\n`);
}

export const sendCommand: Command = {
  path: ['send'],
  summary: 'Send one event from flags, or NDJSON from stdin',
  help: HELP,
  run,
};

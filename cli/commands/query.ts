import { parseArgs } from 'node:util';
import type { TelemetryInputs, TelemetryOutputs } from '../../client/index.ts';
import {
  CONNECTION_OPTIONS,
  parseChoice,
  parseInteger,
  parseJsonObject,
  parseOrExplain,
  parseTime,
  refuseExtraPositionals,
  requirePositional,
} from '../args.ts';
import { openSession, type Command, type CommandContext } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { ellipsize, formatCount, formatTable, toJson, writeJson } from '../format.ts';

export type StoredEvent = TelemetryOutputs['telemetry']['events']['list']['events'][number];
type Source = StoredEvent['source'];

const KEY_NEEDED = 'a read key (or an admin key with --workspace)';
const CONNECTION_HELP = 'Connection: --url <url> (TELEMETRY_URL), --key <key> (TELEMETRY_KEY; a read key, or an admin key with --workspace)';
const TIME_HELP = 'Times: ISO 8601 (2026-11-01, 2026-11-01T10:00:00Z), "now", or a duration ago: 90s, 15m, 2h, 7d, 2w.';
const DAY_MS = 86_400_000;

/** The service checks the source; the cast only lets a typo reach it and come back as a clear error. */
export function asSource(value: string | undefined): Source | undefined {
  return value as Source | undefined;
}

const FILTER_OPTIONS = {
  workspace: { type: 'string' },
  type: { type: 'string' },
  name: { type: 'string' },
  source: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** A stats range: both ends given, or the last 24 hours up to now. */
function statsRange(values: { from?: string | undefined; to?: string | undefined }, now: Date) {
  const to = parseTime(values.to, '--to', now) ?? now;
  const from = parseTime(values.from, '--from', now) ?? new Date(to.getTime() - DAY_MS);
  return { from, to };
}

// ---- query list -----------------------------------------------------------------------------

const LIST_OPTIONS = {
  ...CONNECTION_OPTIONS,
  ...FILTER_OPTIONS,
  user: { type: 'string' },
  'target-type': { type: 'string' },
  'target-id': { type: 'string' },
  metadata: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const;

const PAGE_SIZE = 500;
const MAX_LIST_LIMIT = 100_000;

async function listEvents(args: string[], { io, now }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: LIST_OPTIONS, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const limit = parseInteger(values.limit, '--limit', { min: 1, max: MAX_LIST_LIMIT }) ?? 100;
  const metadata = parseJsonObject(values.metadata, '--metadata');
  const from = parseTime(values.from, '--from', now());
  const to = parseTime(values.to, '--to', now());
  const source = asSource(values.source);
  const filters: TelemetryInputs['telemetry']['events']['list'] = {
    ...(values.workspace !== undefined && { workspaceId: values.workspace }),
    ...(values.type !== undefined && { eventType: values.type }),
    ...(values.name !== undefined && { name: values.name }),
    ...(source !== undefined && { source }),
    ...(values.user !== undefined && { userId: values.user }),
    ...(values['target-type'] !== undefined && { targetType: values['target-type'] }),
    ...(values['target-id'] !== undefined && { targetId: values['target-id'] }),
    ...(metadata !== undefined && { metadata }),
    ...(from !== undefined && { from }),
    ...(to !== undefined && { to }),
  };
  const session = openSession(values, io, KEY_NEEDED);

  // Pages of up to 500 (the service's most) until --limit events, printed as they come.
  const rows: string[][] = [];
  let cursor = values.cursor;
  let printed = 0;
  for (;;) {
    const pageCursor = cursor;
    const page = await session.call((client) =>
      client.telemetry.events.list.query({ ...filters, limit: Math.min(PAGE_SIZE, limit - printed), ...(pageCursor !== undefined && { cursor: pageCursor }) }),
    );
    for (const event of page.events) {
      if (values.json) writeJson(io.stdout, event);
      else rows.push(eventRow(event));
    }
    printed += page.events.length;
    cursor = page.nextCursor ?? undefined;
    if (cursor === undefined || printed >= limit) break;
  }
  if (!values.json) {
    io.stdout.write(formatTable(['created at', 'type', 'name', 'source', 'user', 'id', 'metadata'], rows));
    if (cursor !== undefined) io.stderr.write(`More events: add --cursor ${cursor}\n`);
  }
  return ExitCode.ok;
}

function eventRow(event: StoredEvent): string[] {
  return [
    event.createdAt,
    event.eventType,
    event.name,
    event.source,
    event.userId ?? '',
    event.id,
    event.metadata ? ellipsize(toJson(event.metadata), 60) : '',
  ];
}

const LIST_HELP = `Usage:
  telemetry query list [filters] [--from <time>] [--to <time>] [--limit <n>] [--json]

Events of one workspace, newest first (telemetry.events.list), as a table, or with --json as
NDJSON (one stored event per line).

Filters (all must match):
  --workspace <uuid>      the workspace (needed with an admin key; a read key knows its own)
  --type <type>           event type
  --name <name>           event name
  --source <source>       web, mobile, backend, cli or extension
  --user <uuid>           user id
  --target-type <text>    target type
  --target-id <text>      target id
  --metadata <json>       events whose metadata contains this JSON object
  --from <time>           from this time (inclusive)
  --to <time>             up to this time (exclusive)

Paging:
  --limit <n>             most events to print (default 100; read in pages of ${PAGE_SIZE})
  --cursor <cursor>       continue after a previous listing (printed when more events remain)

${TIME_HELP}
${CONNECTION_HELP}

Examples:
  telemetry query list --type error --from 2h
  telemetry query list --user 0b5f8a3e-3c52-4a8f-9a43-5d2f0e4a8b11 --limit 1000 --json > user.ndjson
`;

// ---- query get ------------------------------------------------------------------------------

async function getEvent(args: string[], { io }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() =>
    parseArgs({ args, options: { ...CONNECTION_OPTIONS, workspace: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true }),
  );
  const id = requirePositional(positionals, 0, 'The event id');
  const session = openSession(values, io, KEY_NEEDED, { flagOf: (field) => (field === 'id' ? '<id>' : undefined) });
  const event = await session.call((client) =>
    client.telemetry.events.get.query({ id, ...(values.workspace !== undefined && { workspaceId: values.workspace }) }),
  );
  if (values.json) writeJson(io.stdout, event);
  else io.stdout.write(`${JSON.stringify(event, null, 2)}\n`);
  return ExitCode.ok;
}

const GET_HELP = `Usage:
  telemetry query get <id> [--workspace <uuid>] [--json]

One stored event by id (telemetry.events.get), as indented JSON (--json: one line).

${CONNECTION_HELP}

Example:
  telemetry query get 01a21bb0-f2ab-7aa2-a4af-f16d06a10435
`;

// ---- query top ------------------------------------------------------------------------------

const TOP_DIMENSIONS = ['name', 'eventType', 'source', 'targetType', 'targetId', 'userId'] as const;
const TOP_OPTIONS = { ...CONNECTION_OPTIONS, ...FILTER_OPTIONS, by: { type: 'string' }, 'target-type': { type: 'string' }, limit: { type: 'string' } } as const;

async function top(args: string[], { io, now }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: TOP_OPTIONS, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const by = parseChoice(values.by, '--by', TOP_DIMENSIONS) ?? 'name';
  const limit = parseInteger(values.limit, '--limit', { min: 1, max: 100 });
  const source = asSource(values.source);
  const session = openSession(values, io, KEY_NEEDED);
  const result = await session.call((client) =>
    client.telemetry.stats.top.query({
      ...statsRange(values, now()),
      by,
      ...(limit !== undefined && { limit }),
      ...(values.workspace !== undefined && { workspaceId: values.workspace }),
      ...(values.type !== undefined && { eventType: values.type }),
      ...(values.name !== undefined && { name: values.name }),
      ...(source !== undefined && { source }),
      ...(values['target-type'] !== undefined && { targetType: values['target-type'] }),
    }),
  );
  if (values.json) writeJson(io.stdout, result);
  else
    io.stdout.write(
      formatTable(
        [by, 'count'],
        result.items.map((item) => [item.key, formatCount(item.count)]),
      ),
    );
  return ExitCode.ok;
}

const TOP_HELP = `Usage:
  telemetry query top [--by <dimension>] [--from <time>] [--to <time>] [filters] [--limit <n>] [--json]

The most frequent values of one dimension, by event count (telemetry.stats.top).

  --by <dimension>        ${TOP_DIMENSIONS.join(', ')} (default: name)
  --from <time>           start (inclusive; default: 24 hours before --to)
  --to <time>             end (exclusive; default: now)
  --limit <n>             how many (1-100, default 10)
  --workspace <uuid>      the workspace (needed with an admin key)
  --type, --name, --source, --target-type   filters

${TIME_HELP}
${CONNECTION_HELP}

Example:
  telemetry query top --by name --from 7d
`;

// ---- query timeseries -----------------------------------------------------------------------

const BUCKETS = ['minute', 'hour', 'day', 'week'] as const;
const BREAKDOWNS = ['eventType', 'name', 'source', 'targetType'] as const;
const TIMESERIES_OPTIONS = {
  ...CONNECTION_OPTIONS,
  ...FILTER_OPTIONS,
  bucket: { type: 'string' },
  tz: { type: 'string' },
  breakdown: { type: 'string' },
  series: { type: 'string' },
  'unique-users': { type: 'boolean' },
  'target-type': { type: 'string' },
} as const;

async function timeseries(args: string[], { io, now }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: TIMESERIES_OPTIONS, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const bucket = parseChoice(values.bucket, '--bucket', BUCKETS) ?? 'hour';
  const breakdown = parseChoice(values.breakdown, '--breakdown', BREAKDOWNS);
  const source = asSource(values.source);
  const session = openSession(values, io, KEY_NEEDED);
  const result = await session.call((client) =>
    client.telemetry.stats.timeseries.query({
      ...statsRange(values, now()),
      bucket,
      ...(values.tz !== undefined && { timeZone: values.tz }),
      ...(breakdown !== undefined && { breakdown }),
      ...(values.series !== undefined && { seriesLimit: parseInteger(values.series, '--series', { min: 1, max: 50 }) }),
      ...(values['unique-users'] && { uniqueUsers: true }),
      ...(values.workspace !== undefined && { workspaceId: values.workspace }),
      ...(values.type !== undefined && { eventType: values.type }),
      ...(values.name !== undefined && { name: values.name }),
      ...(source !== undefined && { source }),
      ...(values['target-type'] !== undefined && { targetType: values['target-type'] }),
    }),
  );
  if (values.json) {
    writeJson(io.stdout, result);
    return ExitCode.ok;
  }
  // One column per series (one series without --breakdown), then the values summed into "other";
  // every series has the same buckets.
  const series = [...result.series, ...(result.other ? [{ ...result.other, key: `other (${result.other.keys})` }] : [])];
  const starts = series[0]?.points.map((point) => point.start) ?? [];
  const uniqueUsers = values['unique-users'] === true && series.length === 1;
  const headers = ['bucket start', ...(breakdown ? series.map((item) => item.key ?? '(none)') : ['count']), ...(uniqueUsers ? ['unique users'] : [])];
  const rows = starts.map((start, index) => [
    start,
    ...series.map((item) => formatCount(item.points[index]?.count ?? 0)),
    ...(uniqueUsers ? [formatCount(series[0]?.points[index]?.uniqueUsers ?? 0)] : []),
  ]);
  rows.push(['total', ...series.map((item) => formatCount(item.total)), ...(uniqueUsers ? [''] : [])]);
  io.stdout.write(formatTable(headers, rows));
  return ExitCode.ok;
}

const TIMESERIES_HELP = `Usage:
  telemetry query timeseries [--bucket <size>] [--from <time>] [--to <time>] [filters] [--json]

Event counts per time bucket (telemetry.stats.timeseries); empty buckets count 0.

  --bucket <size>         ${BUCKETS.join(', ')} (default: hour)
  --from <time>           start (inclusive; default: 24 hours before --to)
  --to <time>             end (exclusive; default: now)
  --tz <zone>             IANA time zone for day and week buckets (default: UTC)
  --breakdown <dimension> one column per value of ${BREAKDOWNS.join(', ')}: the largest ones, the rest summed in "other"
  --series <n>            with --breakdown: how many values get a column of their own (1-50, default 10)
  --unique-users          also count distinct users per bucket
  --workspace <uuid>      the workspace (needed with an admin key)
  --type, --name, --source, --target-type   filters

${TIME_HELP}
${CONNECTION_HELP}

Examples:
  telemetry query timeseries --bucket hour --from 24h
  telemetry query timeseries --bucket day --from 2026-11-01 --to 2026-11-08 --tz Europe/Berlin --breakdown source
`;

// ---- query percentiles ----------------------------------------------------------------------

const PERCENTILES_OPTIONS = {
  ...CONNECTION_OPTIONS,
  ...FILTER_OPTIONS,
  field: { type: 'string' },
  bucket: { type: 'string' },
  tz: { type: 'string' },
} as const;

async function percentiles(args: string[], { io, now }: CommandContext): Promise<ExitCode> {
  const { values, positionals } = parseOrExplain(() => parseArgs({ args, options: PERCENTILES_OPTIONS, allowPositionals: true }));
  refuseExtraPositionals(positionals);
  const bucket = parseChoice(values.bucket, '--bucket', BUCKETS);
  const source = asSource(values.source);
  const session = openSession(values, io, KEY_NEEDED);
  const result = await session.call((client) =>
    client.telemetry.stats.percentiles.query({
      ...statsRange(values, now()),
      ...(values.field !== undefined && { field: values.field }),
      ...(bucket !== undefined && { bucket }),
      ...(values.tz !== undefined && { timeZone: values.tz }),
      ...(values.workspace !== undefined && { workspaceId: values.workspace }),
      ...(values.type !== undefined && { eventType: values.type }),
      ...(values.name !== undefined && { name: values.name }),
      ...(source !== undefined && { source }),
    }),
  );
  if (values.json) {
    writeJson(io.stdout, result);
    return ExitCode.ok;
  }
  const figure = (value: number | null) => (value === null ? '' : String(Math.round(value * 1000) / 1000));
  type Distribution = typeof result.overall;
  const row = (label: string, d: Distribution) => [
    label,
    formatCount(d.count),
    figure(d.min),
    figure(d.p50),
    figure(d.p75),
    figure(d.p90),
    figure(d.p95),
    figure(d.p99),
    figure(d.max),
  ];
  const rows = [...(result.buckets ?? []).map((item) => row(item.start, item)), row('overall', result.overall)];
  io.stdout.write(formatTable(['bucket start', 'count', 'min', 'p50', 'p75', 'p90', 'p95', 'p99', 'max'], rows));
  return ExitCode.ok;
}

const PERCENTILES_HELP = `Usage:
  telemetry query percentiles [--field <path>] [--type <type>] [--name <name>] [--from <time>] [--to <time>] [--bucket <size>] [--json]

Count, min, max and p50/p75/p90/p95/p99 of a numeric metadata field (telemetry.stats.percentiles).

  --field <path>          metadata field, e.g. value or timing.ttfb (default: value)
  --type <type>           event type (default: perf.metric)
  --name <name>           event name, e.g. LCP
  --bucket <size>         also per ${BUCKETS.join(', ')} bucket
  --from <time>           start (inclusive; default: 24 hours before --to)
  --to <time>             end (exclusive; default: now)
  --tz <zone>             IANA time zone for day and week buckets
  --workspace <uuid>      the workspace (needed with an admin key)
  --source <source>       filter

${TIME_HELP}
${CONNECTION_HELP}

Example:
  telemetry query percentiles --name LCP --from 7d --bucket day
`;

export const queryCommands: Command[] = [
  { path: ['query', 'list'], summary: 'List events, newest first (table or NDJSON)', help: LIST_HELP, run: listEvents },
  { path: ['query', 'get'], summary: 'Show one event by id', help: GET_HELP, run: getEvent },
  { path: ['query', 'top'], summary: 'Most frequent names, types, sources, targets or users', help: TOP_HELP, run: top },
  { path: ['query', 'timeseries'], summary: 'Event counts per minute, hour, day or week', help: TIMESERIES_HELP, run: timeseries },
  { path: ['query', 'percentiles'], summary: 'Percentiles of a numeric metadata field', help: PERCENTILES_HELP, run: percentiles },
];

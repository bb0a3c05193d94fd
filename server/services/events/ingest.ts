import { sql } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { eventKey, type EventRow } from '../../../db/event-writers.ts';
import type { Metrics } from '../../metrics.ts';
import type { GroupCommitter } from './group-commit.ts';
import type { WorkspaceService } from '../workspaces/workspaces.ts';
import { isStorableTime, lastIsoTime } from '../../../db/timestamps.ts';
import { DomainError, type DomainErrorCode } from '../../errors.ts';
import { parseEvent, type ParsedEvent, type EventReceipt, type IngestBatchResult, type IngestResult, type RejectionCode, type ValidEvent } from './schemas.ts';
import { correctedForSkew, fromEpochMicros, parseIsoTime } from './precise-time.ts';
import { uuidv7, uuidv7Time } from '../../../client/uuid7.ts';

export interface IngestLimits {
  /** Most events accepted in one batch call. */
  maxBatchEvents: number;
  /** How far in the past an event's (skew-corrected) time may lie. */
  maxEventAgeMs: number;
  /** How far in the future an event's (skew-corrected) time may lie. */
  maxFutureSkewMs: number;
}

export interface EventIngestorDeps {
  db: Database;
  limits: IngestLimits;
  /** Where accepted rows are written (group commit). */
  committer: GroupCommitter;
  /** Which workspaces exist: events of keys not bound to one must name one of them. */
  workspaces: Pick<WorkspaceService, 'existingWorkspaceIds'>;
  metrics?: Metrics;
  /** The server clock; injected so tests can pin time. */
  now?: () => Date;
}

export interface IngestOptions {
  /** The batch's client send time, for clock-skew correction. */
  sentAt?: Date | undefined;
  /** The workspace the caller's key is bound to, if any. */
  workspaceBinding?: string | null | undefined;
}

/** An event ready for the insert (id, time and workspace resolved), with its place in the batch. */
interface PendingEvent {
  index: number;
  row: EventRow;
  /** `eventKey(row)`, made once: the receipts look it up in what the write answered. */
  key: string;
}

type Rejection = { index: number; status: 'rejected'; code: RejectionCode; message: string; path: string };

export type EventIngestor = ReturnType<typeof createEventIngestor>;

export function createEventIngestor({ db, limits, committer, workspaces, metrics, now = () => new Date() }: EventIngestorDeps) {
  /**
   * When the event happened. A client time is trusted after correcting the client's clock skew the
   * way Segment does (`receivedAt - (sentAt - createdAt)`); else a UUIDv7 id's time; else now.
   */
  function resolveCreatedAt(event: ValidEvent, receivedAt: Date, sentAt: Date | undefined): Date {
    if (event.createdAt) {
      if (!sentAt) return event.createdAt;
      return correctedForSkew(event.createdAt, sentAt, receivedAt);
    }
    const fromId = event.id ? uuidv7Time(event.id) : undefined;
    return fromId ?? receivedAt;
  }

  function timeRangeProblem(createdAt: Date, receivedAt: Date): string | undefined {
    // Skew correction can land outside what a Date or the database holds (an extreme sentAt):
    // that event is refused here, before it can fail a shared write.
    if (!isStorableTime(createdAt)) return 'createdAt, corrected for the clock skew sentAt shows, is not a time that can be stored';
    const ageMs = receivedAt.getTime() - createdAt.getTime();
    if (ageMs > limits.maxEventAgeMs) return `createdAt is more than ${formatDuration(limits.maxEventAgeMs)} in the past`;
    if (-ageMs > limits.maxFutureSkewMs) return `createdAt is more than ${formatDuration(limits.maxFutureSkewMs)} in the future`;
    return undefined;
  }

  /**
   * Validates, resolves and stores a batch; answers one receipt per input, in input order. Answers
   * only after the accepted events are committed.
   */
  async function ingestBatch(rawEvents: readonly unknown[], options: IngestOptions = {}): Promise<IngestBatchResult> {
    if (rawEvents.length > limits.maxBatchEvents) {
      throw new DomainError('payload_too_large', `A batch holds at most ${limits.maxBatchEvents} events; this one has ${rawEvents.length}`, {
        path: 'events',
        reason: 'batch_too_large',
      });
    }
    return ingestParsed(rawEvents.map(parseEvent), options);
  }

  async function ingestParsed(parsedEvents: readonly ParsedEvent[], { sentAt, workspaceBinding }: IngestOptions): Promise<IngestBatchResult> {
    if (sentAt && !isStorableTime(sentAt)) {
      throw new DomainError('invalid_input', 'sentAt must be a time between the years 1 and 9999', { path: 'sentAt', reason: 'sent_at_out_of_range' });
    }
    const receivedAt = now();
    const receipts: EventReceipt[] = new Array(parsedEvents.length);
    const pending: PendingEvent[] = [];
    const rows: EventRow[] = [];
    // Events are unique by id within their workspace (eventKey): the same id in two workspaces is two events.
    const firstByKey = new Map<string, PendingEvent>();
    const sameKeyAsEarlier: { index: number; first: PendingEvent }[] = [];
    // A bound key's workspace exists (keys reference it); the workspaces events of other keys name
    // are looked up together, once per call.
    const existingWorkspaces = workspaceBinding ? undefined : await workspaces.existingWorkspaceIds(namedWorkspaces(parsedEvents));

    for (let index = 0; index < parsedEvents.length; index += 1) {
      const parsed = parsedEvents[index]!;
      if (!parsed.ok) {
        receipts[index] = reject(index, 'invalid_event', parsed.message, parsed.path);
        continue;
      }
      const { event } = parsed;
      // A key bound to a workspace writes only there: it stamps its workspace on events that name
      // none and refuses events that name another.
      if (workspaceBinding && event.workspaceId && event.workspaceId !== workspaceBinding) {
        receipts[index] = reject(index, 'workspace_forbidden', 'This key may not write to that workspace', 'workspaceId');
        continue;
      }
      if (!workspaceBinding && !event.workspaceId) {
        receipts[index] = reject(
          index,
          'workspace_required',
          'Name the workspace this event belongs to (workspaceId): this key is not bound to one',
          'workspaceId',
        );
        continue;
      }
      if (!workspaceBinding && event.workspaceId && !existingWorkspaces?.has(event.workspaceId)) {
        receipts[index] = reject(index, 'unknown_workspace', 'No workspace with this id: create it first (admin.workspaces.create)', 'workspaceId');
        continue;
      }
      // One of the two is set: the checks above refused events with neither.
      const workspaceId = (workspaceBinding || event.workspaceId)!;
      const createdAt = resolveCreatedAt(event, receivedAt, sentAt);
      const problem = timeRangeProblem(createdAt, receivedAt);
      if (problem) {
        receipts[index] = reject(index, 'created_at_out_of_range', problem, 'createdAt');
        continue;
      }
      const id = event.id ?? uuidv7(receivedAt);
      const key = eventKey({ workspaceId, id });
      const first = firstByKey.get(key);
      if (first !== undefined) {
        // The same event twice in one batch: store it once, answer both like a retry would be.
        sameKeyAsEarlier.push({ index, first });
        continue;
      }
      const row = toRow(id, workspaceId, createdAt, receivedAt, event);
      const entry = { index, row, key };
      firstByKey.set(key, entry);
      pending.push(entry);
      rows.push(row);
    }

    const { claimed: inserted, refused } = await committer.write(rows);
    const notInserted = pending.filter(({ key }) => !inserted.has(key) && !refused.has(key)).map(({ row }) => row);
    const existing = await findStoredEvents(notInserted);
    // Events sent without a time share the received time: its text is written once.
    const isoTime = lastIsoTime();

    for (const { index, row, key } of pending) {
      if (inserted.has(key)) {
        receipts[index] = { index, status: 'accepted', id: row.id, createdAt: isoTime(row.createdAt) };
        continue;
      }
      if (refused.has(key)) {
        // Past a few refused events in one call, the rest of it is refused unsorted (group-commit.ts).
        receipts[index] = reject(
          index,
          'invalid_event',
          'Not stored: the database refused this event, or one sent with it in a batch of many refused events',
          '',
        );
        continue;
      }
      const stored = existing.get(key);
      if (stored) {
        receipts[index] = { index, status: 'duplicate', id: row.id, createdAt: stored.toISOString() };
      } else {
        // The ledger held this id when the write ran, but it was gone when looked up (retention
        // expired it in between): neither stored now nor a retry of a stored event.
        receipts[index] = reject(index, 'id_conflict', 'An event with this id was stored and has since expired; send it again with a new id', 'id');
      }
    }
    for (const { index, first } of sameKeyAsEarlier) {
      const firstReceipt = receipts[first.index]!;
      receipts[index] =
        firstReceipt.status === 'rejected'
          ? { ...firstReceipt, index }
          : { index, status: 'duplicate', id: firstReceipt.id, createdAt: firstReceipt.createdAt };
    }

    let accepted = 0;
    let duplicates = 0;
    for (const receipt of receipts) {
      if (receipt.status === 'accepted') accepted += 1;
      else if (receipt.status === 'duplicate') duplicates += 1;
    }
    const rejected = receipts.length - accepted - duplicates;
    if (metrics) {
      if (accepted) metrics.eventsIngested.inc({ status: 'accepted' }, accepted);
      if (duplicates) metrics.eventsIngested.inc({ status: 'duplicate' }, duplicates);
      if (rejected) metrics.eventsIngested.inc({ status: 'rejected' }, rejected);
    }
    return { accepted, duplicates, rejected, receipts };
  }

  /**
   * Stores one already-validated event; a rejection becomes a DomainError so the caller gets a 4xx
   * with its path.
   */
  async function ingestEvent(event: ValidEvent, options: Omit<IngestOptions, 'sentAt'> = {}): Promise<IngestResult & { duplicate: boolean }> {
    const { receipts } = await ingestParsed([{ ok: true, event }], options);
    const receipt = receipts[0]!;
    if (receipt.status === 'rejected') {
      const code = DOMAIN_CODE_BY_REJECTION[receipt.code] ?? 'invalid_input';
      throw new DomainError(code, receipt.message, { path: receipt.path, reason: receipt.code });
    }
    return { id: receipt.id, createdAt: parseStoredTime(receipt.createdAt), duplicate: receipt.status === 'duplicate' };
  }

  /** When each already stored event was created, by event key. */
  async function findStoredEvents(rows: readonly EventRow[]): Promise<Map<string, Date>> {
    if (rows.length === 0) return new Map();
    const found = await db.rows<{ id: string; workspace_id: string; created_micros: string }>(sql`
      select l.id, l.workspace_id, (extract(epoch from l.created_at) * 1000000)::bigint::text as created_micros
      from telemetry.event_ids l
      join unnest(${toPgArray(rows.map((row) => row.workspaceId))}::uuid[], ${toPgArray(rows.map((row) => row.id))}::uuid[]) as k(workspace_id, id)
        on l.workspace_id = k.workspace_id and l.id = k.id`);
    return new Map(found.map((row) => [eventKey({ workspaceId: row.workspace_id, id: row.id }), fromEpochMicros(row.created_micros)]));
  }

  return { ingestBatch, ingestEvent };
}

/** How a lone event's rejection is answered (telemetry.ingest); a batch answers receipts instead. */
const DOMAIN_CODE_BY_REJECTION: Partial<Record<RejectionCode, DomainErrorCode>> = {
  id_conflict: 'conflict',
  workspace_forbidden: 'forbidden',
  unknown_workspace: 'not_found',
};

/** The workspaces valid events name, for one lookup per call. */
function namedWorkspaces(parsedEvents: readonly ParsedEvent[]): string[] {
  const ids: string[] = [];
  for (const parsed of parsedEvents) if (parsed.ok && parsed.event.workspaceId) ids.push(parsed.event.workspaceId);
  return ids;
}

function toRow(id: string, workspaceId: string, createdAt: Date, receivedAt: Date, event: ValidEvent): EventRow {
  return {
    id,
    workspaceId,
    userId: event.userId ?? null,
    source: event.source,
    eventType: event.eventType,
    name: event.name,
    targetType: event.targetType ?? null,
    targetId: event.targetId ?? null,
    metadata: event.metadata ?? null,
    createdAt,
    receivedAt,
  };
}

function reject(index: number, code: RejectionCode, message: string, path: string): Rejection {
  return { index, status: 'rejected', code, message, path };
}

/** A Postgres array literal of UUIDs (validated as UUIDs already, so no quoting is needed). */
function toPgArray(values: readonly string[]): string {
  return `{${values.join(',')}}`;
}

function formatDuration(ms: number): string {
  const minutes = ms / 60_000;
  if (minutes < 120) return `${Math.round(minutes)} minutes`;
  const hours = minutes / 60;
  if (hours < 48) return `${Math.round(hours)} hours`;
  return `${Math.round(hours / 24)} days`;
}

/** A receipt's time (written by this service, so never too precise) back as a Date. */
function parseStoredTime(text: string): Date {
  const parsed = parseIsoTime(text);
  return parsed === 'too_precise' ? new Date(text) : parsed;
}

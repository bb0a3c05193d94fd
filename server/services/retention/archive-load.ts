import { sql } from 'drizzle-orm';
import type { Database, SqlRunner } from '../../../db/database.ts';
import { ensureDailyPartitions } from '../../../db/partitions.ts';
import { ArchiveVerificationError, readArchivePages, verifyArchive } from './archive.ts';
import type { ArchiveManifest } from './schemas.ts';

export interface LoadedArchive {
  manifestPath: string;
  manifest: ArchiveManifest;
  /** Events in the archive. */
  rows: number;
  /** Events stored now. */
  inserted: number;
  /** Events whose id the ledger already held (still stored, or stored again since): left as they are. */
  duplicates: number;
}

/**
 * Loads an archive back: verifies it against its manifest, prepares the daily partitions of its
 * days, then, in one transaction, claims each id in the ledger (an id already claimed is skipped),
 * inserts the events whose claim succeeded and adds them to the rollups, exactly as ingestion does.
 * The file is hashed again while it is loaded; if it changed since it was verified, nothing is kept.
 *
 * Events go in as the archive holds them (JSON text straight into jsonb_to_recordset), never through
 * JavaScript Dates or numbers: microseconds of created_at and the exact digits of metadata numbers
 * survive, which the service's event writer (millisecond Dates, JSON.stringify) would not keep.
 */
export async function loadArchive(db: Database, manifestPath: string, options: { chunkSize?: number } = {}): Promise<LoadedArchive> {
  const { manifest, filePath } = await verifyArchive(manifestPath);
  if (manifest.minCreatedAt && manifest.maxCreatedAt) {
    await ensureDailyPartitions(db, { from: utcDay(manifest.minCreatedAt), to: utcDay(manifest.maxCreatedAt) });
  }
  const reader = readArchivePages(filePath, options.chunkSize ?? 2000);
  const { rows, inserted } = await db.transaction(async (tx) => {
    let rows = 0;
    let inserted = 0;
    for await (const lines of reader.pages) {
      rows += lines.length;
      inserted += await insertArchivedEvents(tx, lines);
    }
    if (rows !== manifest.rows || reader.sha256() !== manifest.sha256) {
      throw new ArchiveVerificationError(`${filePath}: changed while it was being loaded; nothing was loaded`);
    }
    return { rows, inserted };
  });
  return { manifestPath, manifest, rows, inserted, duplicates: rows - inserted };
}

/** One statement per chunk: claim ids, insert the claimed events, add them to both rollups. */
async function insertArchivedEvents(tx: SqlRunner, lines: readonly string[]): Promise<number> {
  if (lines.length === 0) return 0;
  const document = `[${lines.join(',')}]`;
  const [row] = await tx.rows<{ inserted: number | string | bigint }>(sql`
    with input as (
      select * from jsonb_to_recordset(${document}::text::jsonb) as x(
        id uuid, workspace_id uuid, user_id uuid, source text, event_type text, name text,
        target_type text, target_id text, metadata jsonb, created_at timestamptz, received_at timestamptz)
    ), claimed as (
      insert into telemetry.event_ids (id, workspace_id, created_at)
      select id, workspace_id, created_at from input
      on conflict (id) do nothing
      returning id
    ), inserted as (
      insert into telemetry.events (id, workspace_id, user_id, source, event_type, name, target_type, target_id, metadata, created_at, received_at)
      select i.id, i.workspace_id, i.user_id, i.source, i.event_type, i.name, i.target_type, i.target_id, i.metadata, i.created_at, i.received_at
      from input i join claimed c on c.id = i.id
      returning workspace_id, created_at, event_type, name, source
    ), counted as (
      insert into telemetry.event_counts_minute as counts (workspace_id, minute, event_type, name, source, count)
      select workspace_id, date_trunc('minute', created_at, 'UTC'), event_type, name, source, count(*)
      from inserted where workspace_id is not null
      group by 1, 2, 3, 4, 5
      order by 1, 2, 3, 4, 5
      on conflict (workspace_id, minute, event_type, name, source) do update set count = counts.count + excluded.count
    ), counted_hours as (
      insert into telemetry.event_counts_hour as counts (workspace_id, hour, event_type, name, source, count)
      select workspace_id, date_trunc('hour', created_at, 'UTC'), event_type, name, source, count(*)
      from inserted where workspace_id is not null
      group by 1, 2, 3, 4, 5
      order by 1, 2, 3, 4, 5
      on conflict (workspace_id, hour, event_type, name, source) do update set count = counts.count + excluded.count
    )
    select count(*) as inserted from inserted`);
  return Number(row?.inserted ?? 0);
}

function utcDay(isoTime: string): Date {
  return new Date(`${isoTime.slice(0, 10)}T00:00:00Z`);
}

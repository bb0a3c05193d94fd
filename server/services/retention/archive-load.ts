import type { Database, SqlRunner } from '../../../db/database.ts';
import { ensureDailyPartitions } from '../../../db/partitions.ts';
import { storeJsonEventsStatement } from '../../../db/event-writers.ts';
import { isNotNullViolation } from '../../../db/errors.ts';
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
  const { rows, inserted } = await db
    .transaction(async (tx) => {
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
    })
    .catch((error: unknown) => {
      // Archives written before every event had a workspace may hold events without one, which
      // the keys no longer allow (docs/adr/0013-workspace-keys.md): say so instead of a database error.
      if (isNotNullViolation(error)) {
        throw new ArchiveVerificationError(
          `${filePath}: holds events without a workspace, which are no longer stored; set their workspace_id to a workspace's id and load it again. Nothing was loaded`,
        );
      }
      throw error;
    });
  return { manifestPath, manifest, rows, inserted, duplicates: rows - inserted };
}

/** One statement per chunk: claim ids, insert the claimed events, add them to both rollups. */
async function insertArchivedEvents(tx: SqlRunner, lines: readonly string[]): Promise<number> {
  if (lines.length === 0) return 0;
  const document = `[${lines.join(',')}]`;
  // The write path's own statement: the same ledger claims and rollup counts as live ingestion.
  const stored = await tx.rows<{ id: string }>(storeJsonEventsStatement(document));
  return stored.length;
}

function utcDay(isoTime: string): Date {
  return new Date(`${isoTime.slice(0, 10)}T00:00:00Z`);
}

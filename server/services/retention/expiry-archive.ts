import { sql, type SQL } from 'drizzle-orm';
import path from 'node:path';
import { discardArchive, verifyArchive, writeArchive, type ArchiveDescription, type ArchiveLine, type WrittenArchive } from './archive.ts';
import { isoText, type ExpiryRun } from './expiry-run.ts';

/** One stored event as one JSON line, with the stored column names; metadata keeps Postgres's exact numbers. */
const ARCHIVE_LINE = sql`jsonb_build_object(
  'id', id, 'workspace_id', workspace_id, 'user_id', user_id, 'source', source, 'event_type', event_type, 'name', name,
  'target_type', target_type, 'target_id', target_id, 'metadata', metadata,
  'created_at', ${isoText('created_at')}, 'received_at', ${isoText('received_at')})::text`;

// A 64-bit hash of an event id, and their sum over a set of rows: equal sums, equal id sets (but
// for a collision no one will meet). Computed by Postgres both when archiving and when deleting.
const ID_HASH = sql`hashtextextended(id::text, 0)`;
export const ID_DIGEST = sql`coalesce(sum(${ID_HASH}), 0)::text`;

/** An archive written and verified, with the digest of the ids it holds (checked before its rows go). */
export interface Archived {
  archive: WrittenArchive;
  idDigest: string;
}

/**
 * What archiving a target came to: `skipped` (no archive directory, or a dry run), `archived`, or
 * `failed` (already reported: the rows stay in place).
 */
export type ArchiveOutcome = { status: 'skipped' } | ({ status: 'archived' } & Archived) | { status: 'failed' };

export interface ArchiveRequest {
  /** How the report names the target. */
  target: string;
  description: ArchiveDescription;
  baseName: string;
  /** The rows `where` selects from `table` are archived. */
  table: SQL;
  where: SQL;
}

/**
 * Archives the rows a request selects (when an archive directory is set and this is a real run)
 * and verifies the file against its manifest. A failure is reported and its file discarded.
 */
export async function archiveRows(run: ExpiryRun, request: ArchiveRequest): Promise<ArchiveOutcome> {
  const { archiveDir, logger, onArchiveWritten } = run.options;
  if (!archiveDir || run.dryRun) return { status: 'skipped' };
  let archive: WrittenArchive | undefined;
  try {
    const digest = { sum: 0n };
    archive = await writeArchive({
      directory: path.join(archiveDir, request.description.day),
      baseName: request.baseName,
      description: request.description,
      pages: archivePages(run, request.table, request.where, digest),
      archivedAt: new Date(),
    });
    const idDigest = digest.sum.toString();
    await onArchiveWritten?.(archive);
    await verifyArchive(archive.manifestPath);
    return { status: 'archived', archive, idDigest };
  } catch (error) {
    logger.warn('retention archive failed', { target: request.target, error });
    run.leftInPlace(request.target, `archive failed, rows left in place: ${(error as Error).message}`);
    if (archive) await discardArchive(archive).catch(() => {});
    return { status: 'failed' };
  }
}

/** Keyset pages in (created_at, id) order, so no page holds more than `pageSize` events in memory. */
async function* archivePages(run: ExpiryRun, table: SQL, where: SQL, digest: { sum: bigint }): AsyncGenerator<ArchiveLine[]> {
  const { pageSize } = run.options;
  let after = sql``;
  for (;;) {
    const rows = await run.db.rows<{ line: string; created_at: string; id: string; id_hash: string }>(sql`
      select ${ARCHIVE_LINE} as line, ${isoText('created_at')} as created_at, id::text as id, ${ID_HASH}::text as id_hash
      from ${table} where ${where} ${after}
      order by created_at, id
      limit ${pageSize}`);
    for (const row of rows) digest.sum += BigInt(row.id_hash);
    if (rows.length > 0) yield rows.map((row) => ({ line: row.line, createdAt: row.created_at }));
    const last = rows.at(-1);
    if (!last || rows.length < pageSize) return;
    after = sql`and (created_at, id) > (${last.created_at}::timestamptz, ${last.id}::uuid)`;
  }
}

export class RowsChangedError extends Error {
  override name = 'RowsChangedError';
}

/**
 * The rows about to go must be exactly the archived ones: same count and same ids (a digest of
 * them), so a row that arrived while archiving cannot be deleted unarchived even when another
 * went at the same time (an erasure) and the count still matches.
 */
export function assertArchived(archived: Archived | undefined, rows: number, idDigest: string | undefined): void {
  if (!archived) return;
  if (archived.archive.manifest.rows !== rows) {
    throw new RowsChangedError(`rows changed while archiving (archived ${archived.archive.manifest.rows}, now ${rows}); left in place for the next run`);
  }
  if (idDigest !== undefined && archived.idDigest !== BigInt(idDigest).toString()) {
    throw new RowsChangedError('rows changed while archiving (same count, other events); left in place for the next run');
  }
}

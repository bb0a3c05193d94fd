import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import type { Database } from '../../db/database.ts';

/**
 * Applies the migrations up to and including `lastTag`, from a folder of their own: a database as
 * an older release left it, for tests of what a later migration does to existing rows.
 */
export async function migrateUpTo(db: Database, lastTag: string): Promise<void> {
  const source = fileURLToPath(new URL('../../db/migrations', import.meta.url));
  const folder = await mkdtemp(join(tmpdir(), 'telemetry-migrations-'));
  try {
    await cp(source, folder, { recursive: true });
    const journalPath = join(folder, 'meta', '_journal.json');
    const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: { tag: string }[] };
    const last = journal.entries.findIndex((entry) => entry.tag === lastTag);
    if (last < 0) throw new Error(`no migration tagged ${lastTag}`);
    await writeFile(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, last + 1) }));
    if (db.kind === 'pglite') await migratePglite(db.orm as never, { migrationsFolder: folder });
    else await migratePostgres(drizzlePostgres(db.client), { migrationsFolder: folder });
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * `npm run archive:load -- <manifest-or-directory>...`: verifies archives written by the retention
 * job (checksum and row count against each manifest) and loads their events back into the
 * configured database. Every archive named is verified before anything is loaded; one that fails
 * is refused and nothing is loaded. Events whose id is already stored are skipped, so loading the
 * same archive twice changes nothing. A directory is searched recursively for `*.manifest.json`.
 *
 * Loaded events older than their workspace's retention are removed again by the next retention run.
 */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ArchiveVerificationError, findManifests, MANIFEST_SUFFIX, verifyArchive } from '../../server/services/retention/archive.ts';
import { loadArchive } from '../../server/services/retention/archive-load.ts';
import { loadConfigOrExplain, openServiceDatabase } from './service-database.ts';

const USAGE = 'usage: npm run archive:load -- <manifest-or-directory>...';

async function main(): Promise<number> {
  let targets: string[];
  try {
    const { positionals, values } = parseArgs({ allowPositionals: true, options: { help: { type: 'boolean', default: false } }, strict: true });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    targets = positionals;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (targets.length === 0) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadConfigOrExplain();
  if (!config) return 2;

  const manifests: string[] = [];
  for (const target of targets) {
    const info = await stat(target).catch(() => undefined);
    if (!info) {
      process.stderr.write(`archive:load: ${target} does not exist\n`);
      return 2;
    }
    if (info.isDirectory()) manifests.push(...(await findManifests(target)));
    else if (target.endsWith('.ndjson.gz')) manifests.push(target.replace(/\.ndjson\.gz$/, MANIFEST_SUFFIX));
    else manifests.push(target);
  }
  if (manifests.length === 0) {
    process.stderr.write(`archive:load: no *${MANIFEST_SUFFIX} found in ${targets.join(', ')}\n`);
    return 2;
  }

  // Verify everything first: a bad archive among many must not leave half of them loaded.
  for (const manifest of manifests) {
    try {
      await verifyArchive(manifest);
    } catch (error) {
      if (!(error instanceof ArchiveVerificationError)) throw error;
      process.stderr.write(`archive:load: refused, nothing was loaded: ${error.message}\n`);
      return 1;
    }
  }

  const db = await openServiceDatabase(config, 'archive:load');
  if (!db) return 1;
  try {
    let inserted = 0;
    let duplicates = 0;
    for (const manifest of manifests) {
      const loaded = await loadArchive(db, manifest);
      inserted += loaded.inserted;
      duplicates += loaded.duplicates;
      process.stdout.write(
        `${manifest}: ${loaded.inserted} of ${loaded.rows} events loaded${loaded.duplicates > 0 ? ` (${loaded.duplicates} already stored)` : ''}\n`,
      );
    }
    process.stdout.write(`Loaded ${inserted} events from ${manifests.length} archive(s)${duplicates > 0 ? `; ${duplicates} were already stored` : ''}.\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`archive:load failed: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof Error && error.cause instanceof Error) process.stderr.write(`  cause: ${error.cause.message}\n`);
    return 1;
  } finally {
    await db.close().catch(() => {});
  }
}

process.exitCode = await main();

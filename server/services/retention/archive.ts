import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { ARCHIVE_COLUMNS, ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, ArchiveManifest } from './schemas.ts';

export const MANIFEST_SUFFIX = '.manifest.json';
const DATA_SUFFIX = '.ndjson.gz';

/** One archived event: its NDJSON line, and its created_at (ISO, microseconds) for the manifest. */
export interface ArchiveLine {
  line: string;
  createdAt: string;
}

export interface WrittenArchive {
  manifestPath: string;
  filePath: string;
  manifest: ArchiveManifest;
}

export class ArchiveVerificationError extends Error {
  override name = 'ArchiveVerificationError';
}

export interface ArchiveDescription {
  kind: ArchiveManifest['kind'];
  partition: string | null;
  day: string;
  workspaceId?: string | null;
  range: { from: string; to: string };
}

/**
 * Writes pages of events as one gzipped NDJSON file plus its manifest, streaming: only one page is
 * in memory at a time. Both files are written under a temporary name, flushed to disk and renamed,
 * so a crash never leaves a manifest describing a half-written archive.
 */
export async function writeArchive(options: {
  directory: string;
  /** File name without suffix; unique per archive. */
  baseName: string;
  description: ArchiveDescription;
  pages: AsyncIterable<readonly ArchiveLine[]>;
  archivedAt: Date;
}): Promise<WrittenArchive> {
  await mkdir(options.directory, { recursive: true });
  const fileName = `${options.baseName}${DATA_SUFFIX}`;
  const filePath = path.join(options.directory, fileName);
  const manifestPath = path.join(options.directory, `${options.baseName}${MANIFEST_SUFFIX}`);
  const hash = createHash('sha256');
  let bytes = 0;
  let rows = 0;
  let minCreatedAt: string | null = null;
  let maxCreatedAt: string | null = null;

  async function* text() {
    for await (const page of options.pages) {
      let chunk = '';
      for (const event of page) {
        chunk += `${event.line}\n`;
        rows += 1;
        // Pages come in (created_at, id) order: the first line is the oldest, the last the newest.
        minCreatedAt ??= event.createdAt;
        maxCreatedAt = event.createdAt;
      }
      if (chunk) yield chunk;
    }
  }
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });

  const partialData = `${filePath}.partial`;
  try {
    await pipeline(Readable.from(text()), createGzip(), measure, createWriteStream(partialData));
    await syncFile(partialData);
    await rename(partialData, filePath);
  } catch (error) {
    await rm(partialData, { force: true });
    throw error;
  }

  const manifest: ArchiveManifest = {
    format: ARCHIVE_FORMAT,
    formatVersion: ARCHIVE_FORMAT_VERSION,
    kind: options.description.kind,
    partition: options.description.partition,
    day: options.description.day,
    ...(options.description.workspaceId !== undefined && { workspaceId: options.description.workspaceId }),
    range: options.description.range,
    file: fileName,
    rows,
    bytes,
    sha256: hash.digest('hex'),
    minCreatedAt,
    maxCreatedAt,
    columns: [...ARCHIVE_COLUMNS],
    archivedAt: options.archivedAt.toISOString(),
  };
  const partialManifest = `${manifestPath}.partial`;
  await writeFile(partialManifest, `${JSON.stringify(manifest, null, 2)}\n`);
  await syncFile(partialManifest);
  await rename(partialManifest, manifestPath);
  // The renames live in the directory: sync it (and its parent, which may have just gained it), so
  // a crash after the rows are deleted cannot take the archive's names with it.
  await syncDirectory(path.dirname(manifestPath));
  await syncDirectory(path.dirname(path.dirname(manifestPath)));
  return { manifestPath, filePath, manifest };
}

/** Removes an archive whose rows were not deleted, so every manifest on disk describes deleted rows. */
export async function discardArchive(archive: Pick<WrittenArchive, 'manifestPath' | 'filePath'>): Promise<void> {
  await rm(archive.manifestPath, { force: true });
  await rm(archive.filePath, { force: true });
}

/** Reads and validates a manifest; the data file it names must sit beside it. */
export async function readManifest(manifestPath: string): Promise<{ manifest: ArchiveManifest; filePath: string }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    throw new ArchiveVerificationError(`${manifestPath}: not a readable JSON manifest (${(error as Error).message})`);
  }
  const result = ArchiveManifest.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ArchiveVerificationError(`${manifestPath}: not an archive manifest (${issue?.path.join('.') || '(root)'}: ${issue?.message})`);
  }
  const manifest = result.data;
  if (path.basename(manifest.file) !== manifest.file) {
    throw new ArchiveVerificationError(`${manifestPath}: the archive file must sit beside its manifest, got "${manifest.file}"`);
  }
  return { manifest, filePath: path.join(path.dirname(manifestPath), manifest.file) };
}

/**
 * Re-reads an archive and checks it against its manifest: the SHA-256 of the gzipped file, and the
 * number of lines once decompressed (which also proves the gzip stream is whole).
 */
export async function verifyArchive(manifestPath: string): Promise<{ manifest: ArchiveManifest; filePath: string }> {
  const { manifest, filePath } = await readManifest(manifestPath);
  const hash = createHash('sha256');
  let lines = 0;
  try {
    await pipeline(
      createReadStream(filePath),
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback(null, chunk);
        },
      }),
      createGunzip(),
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) {
          for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines += 1;
        }
      },
    );
  } catch (error) {
    throw new ArchiveVerificationError(`${filePath}: cannot be read as gzip (${(error as Error).message})`);
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== manifest.sha256) {
    throw new ArchiveVerificationError(`${filePath}: checksum mismatch (manifest ${manifest.sha256}, file ${sha256})`);
  }
  if (lines !== manifest.rows) {
    throw new ArchiveVerificationError(`${filePath}: ${lines} rows, but the manifest says ${manifest.rows}`);
  }
  return { manifest, filePath };
}

/**
 * The archive's lines in pages of `pageSize`, hashing the compressed bytes as they are read:
 * `sha256()` answers once the last page has been yielded, so a loader can refuse a file that
 * changed after it was verified.
 */
export function readArchivePages(filePath: string, pageSize: number): { pages: AsyncIterable<string[]>; sha256(): string } {
  const hash = createHash('sha256');
  let digest: string | undefined;
  async function* pages() {
    const file = createReadStream(filePath);
    file.on('data', (chunk) => hash.update(chunk as Buffer));
    const gunzip = file.pipe(createGunzip());
    gunzip.setEncoding('utf8');
    file.on('error', (error) => gunzip.destroy(error));
    let rest = '';
    let page: string[] = [];
    for await (const chunk of gunzip as AsyncIterable<string>) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        page.push(line);
        if (page.length >= pageSize) {
          yield page;
          page = [];
        }
      }
    }
    if (rest !== '') throw new ArchiveVerificationError(`${filePath}: the last line is not terminated`);
    if (page.length > 0) yield page;
    digest = hash.digest('hex');
  }
  return {
    pages: pages(),
    sha256() {
      if (digest === undefined) throw new Error('The archive has not been read to its end');
      return digest;
    },
  };
}

/** Every manifest in a directory and its subdirectories, in name order (so days load oldest first). */
export async function findManifests(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(MANIFEST_SUFFIX))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot sync a directory (EINVAL, EISDIR on a few platforms): nothing more to do there.
    if (!['EINVAL', 'EISDIR', 'EPERM'].includes((error as { code?: string }).code ?? '')) throw error;
  } finally {
    await handle.close();
  }
}

async function syncFile(filePath: string): Promise<void> {
  const handle = await open(filePath, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

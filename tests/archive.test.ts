import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../db/database.ts';
import { createEventWriter, type EventRow } from '../db/event-writers.ts';
import { ensureDailyPartitions, listPartitions } from '../db/partitions.ts';
import { ArchiveVerificationError, findManifests, readManifest } from '../server/services/retention/archive.ts';
import { loadArchive } from '../server/services/retention/archive-load.ts';
import { createRetentionService } from '../server/services/retention/retention.ts';
import type { WrittenArchive } from '../server/services/retention/archive.ts';
import { registerTestWorkspaces, testConfig } from './support/app.ts';
import { openTestDatabase, type TestDatabase } from './support/database.ts';

const NOW = new Date('2026-06-15T10:30:00Z');
const A = '0a000000-0000-4000-8000-00000000000a';
const C = '0c000000-0000-4000-8000-00000000000c';
const D = '0d000000-0000-4000-8000-00000000000d';

let testDb: TestDatabase;
let db: Database;
let archiveDir: string;
beforeAll(async () => {
  testDb = await openTestDatabase();
  db = testDb.db;
  // Retention overrides name an existing workspace.
  await registerTestWorkspaces(db, A, C);
});
afterAll(async () => {
  await testDb?.drop();
});
beforeEach(async () => {
  for (const name of await listPartitions(db)) await db.rows(sql.raw(`drop table telemetry."${name}"`));
  await db.rows(
    sql`truncate telemetry.events_default, telemetry.event_ids, telemetry.event_counts_minute, telemetry.event_counts_hour, telemetry.workspace_retention`,
  );
  archiveDir = await mkdtemp(path.join(tmpdir(), 'telemetry-archive-'));
});
afterEach(async () => {
  await rm(archiveDir, { recursive: true, force: true });
});

function event(workspaceId: string, createdAt: Date, variant: number): EventRow {
  return {
    id: randomUUID(),
    workspaceId,
    userId: variant % 2 === 0 ? randomUUID() : null,
    source: variant % 2 === 0 ? 'web' : 'backend',
    eventType: variant % 3 === 0 ? 'perf.metric' : 'ui.interaction',
    name: `name.${variant % 4}`,
    targetType: variant % 2 === 0 ? 'button' : null,
    targetId: variant % 2 === 0 ? `tab\there "quoted" \\ and ünïcödé ✓` : null,
    metadata: variant % 3 === 0 ? { value: variant * 1.5, unit: 'ms', nested: { list: [1, 'two', null, true] } } : null,
    createdAt,
    receivedAt: new Date(createdAt.getTime() + 1500),
  };
}

/**
 * Events in two expiring partitions (05-01, 05-15), a day only the default partition holds (04-20),
 * and for C (7 days) rows one by one (06-01, 06-07); plus kept events. Several share one created_at,
 * so keyset pages must break ties by id; one has a microsecond time and metadata numbers no double
 * can hold, which must survive the round trip exactly.
 */
async function seed(): Promise<{ special: string }> {
  for (const day of ['2026-05-01', '2026-05-15', '2026-06-07', '2026-06-14']) {
    await ensureDailyPartitions(db, { from: new Date(`${day}T00:00:00Z`), to: new Date(`${day}T00:00:00Z`) });
  }
  const rows: EventRow[] = [];
  let variant = 0;
  for (const time of [
    '2026-04-20T05:00:00Z',
    '2026-05-01T12:00:00Z',
    '2026-05-15T08:00:00Z',
    '2026-06-01T12:00:00Z',
    '2026-06-07T12:00:00Z',
    '2026-06-14T12:00:00Z',
  ]) {
    for (const workspaceId of [A, C, D]) {
      for (let copy = 0; copy < 3; copy += 1) rows.push(event(workspaceId, new Date(time), variant++));
      rows.push(event(workspaceId, new Date(new Date(time).getTime() + 90_000), variant++));
    }
  }
  await createEventWriter(db).write(rows);
  const specialRow = rows.find((row) => row.workspaceId === A && row.createdAt.toISOString().startsWith('2026-05-01'))!;
  const special = specialRow.id;
  // 123456 microseconds later, as a constant: Citus refuses an UPDATE computing a time from a column.
  const withMicros = specialRow.createdAt.toISOString().replace(/\.000Z$/, '.123456Z');
  await db.rows(sql`update telemetry.events set created_at = ${withMicros}::timestamptz,
    metadata = '{"value": 1.000000000000000000001, "unit": "ms", "big": 123456789012345678901234567890}'::jsonb where workspace_id = ${A} and id = ${special}`);
  await db.rows(sql`update telemetry.event_ids set created_at = ${withMicros}::timestamptz where workspace_id = ${A} and id = ${special}`);
  return { special };
}

const iso = (column: string) => sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')`);

/** Every stored column as text (where each event's partition is, is left out: loading may create partitions). */
type Row = Record<string, unknown>;

async function storedState() {
  return {
    events: await db.rows<Row>(sql`
      select id::text as id, workspace_id::text as w, user_id::text as u, source, event_type, name, target_type, target_id,
             metadata::text as metadata, ${iso('created_at')} as created_at, ${iso('received_at')} as received_at
      from telemetry.events order by id`),
    ledger: await db.rows<Row>(sql`select id::text as id, workspace_id::text as w, ${iso('created_at')} as created_at from telemetry.event_ids order by id`),
    minutes: await db.rows<Row>(
      sql`select workspace_id::text as w, ${iso('minute')} as b, event_type, name, source, count::int as n from telemetry.event_counts_minute order by 1, 2, 3, 4, 5`,
    ),
    hours: await db.rows<Row>(
      sql`select workspace_id::text as w, ${iso('hour')} as b, event_type, name, source, count::int as n from telemetry.event_counts_hour order by 1, 2, 3, 4, 5`,
    ),
  };
}

function retention(options: { onArchiveWritten?: (archive: WrittenArchive) => Promise<void> } = {}) {
  return createRetentionService({
    db,
    config: testConfig({ RETENTION_DAYS: '30', ARCHIVE_DIR: archiveDir }),
    now: () => NOW,
    // Small pages: every archive spans several keyset pages, with ties on created_at across them.
    archivePageSize: 2,
    ...options,
  });
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

describe('archive before deletion', () => {
  it('archives what expires, verified, and loading the archives back restores the same rows, ledger ids and rollups exactly', async () => {
    const { special } = await seed();
    const service = retention();
    await service.setOverride({ workspaceId: C, days: 7, updatedByKeyId: null }, null);
    const before = await storedState();

    const report = await service.run();
    expect(report.errors).toEqual([]);
    expect(report.partitionsDropped.map((partition) => partition.name)).toEqual(['events_p20260501', 'events_p20260515']);
    const removed = before.events.length - (await storedState()).events.length;
    expect(removed).toBe(12 * 3 + 4 * 2); // three expired days for everyone, two more days of C
    expect(report.archives.reduce((sum, archive) => sum + archive.rows, 0)).toBe(removed);
    expect(report.archives.map((archive) => [archive.day, archive.partition, archive.workspaceId])).toEqual([
      ['2026-04-20', null, undefined], // the default partition's day: every workspace
      ['2026-05-01', 'events_p20260501', undefined],
      ['2026-05-15', 'events_p20260515', undefined],
      ['2026-06-01', null, C],
      ['2026-06-07', null, C],
    ]);
    expect((await findManifests(archiveDir)).sort()).toEqual(report.archives.map((archive) => archive.manifest).sort());

    for (const archive of report.archives) {
      const { manifest, filePath } = await readManifest(archive.manifest);
      expect(filePath).toBe(archive.file);
      expect(manifest).toMatchObject({ format: 'telemetry-events-ndjson', formatVersion: 1, rows: archive.rows, sha256: archive.sha256 });
      expect(await sha256Of(filePath)).toBe(manifest.sha256);
      const lines = gunzipSync(await readFile(filePath))
        .toString('utf8')
        .split('\n');
      expect(lines.pop()).toBe('');
      expect(lines).toHaveLength(manifest.rows);
      const times = lines.map((line) => (JSON.parse(line) as { created_at: string }).created_at);
      expect(times).toEqual([...times].sort());
      expect([manifest.minCreatedAt, manifest.maxCreatedAt]).toEqual([times[0], times.at(-1)]);
    }
    // One event per line, columns as stored; times keep their microseconds, numbers their digits.
    const may1 = report.archives.find((archive) => archive.partition === 'events_p20260501')!;
    const line = gunzipSync(await readFile(may1.file))
      .toString('utf8')
      .split('\n')
      .find((text) => text.includes(special))!;
    expect(line).toContain('"created_at": "2026-05-01T12:00:00.123456Z"');
    expect(line).toContain('1.000000000000000000001');
    expect(line).toContain('123456789012345678901234567890');
    expect(Object.keys(JSON.parse(line) as object).sort()).toEqual([
      'created_at',
      'event_type',
      'id',
      'metadata',
      'name',
      'received_at',
      'source',
      'target_id',
      'target_type',
      'user_id',
      'workspace_id',
    ]);

    let loaded = 0;
    for (const manifest of await findManifests(archiveDir)) loaded += (await loadArchive(db, manifest)).inserted;
    expect(loaded).toBe(removed);
    expect(await storedState()).toEqual(before);
    // Days come back in their own partitions, not the default one.
    expect(await listPartitions(db)).toEqual(expect.arrayContaining(['events_p20260420', 'events_p20260501', 'events_p20260515', 'events_p20260601']));

    // Loading the same archives again changes nothing: every id is already claimed.
    for (const manifest of await findManifests(archiveDir)) {
      expect(await loadArchive(db, manifest)).toMatchObject({ inserted: 0, duplicates: expect.any(Number) });
    }
    expect(await storedState()).toEqual(before);
  });

  it('refuses a corrupted, truncated or mislabelled archive and loads nothing from it', async () => {
    await seed();
    const report = await retention().run();
    const [archive] = report.archives.filter((entry) => entry.partition === 'events_p20260501');
    if (!archive) throw new Error('no archive written');
    const state = await storedState();
    const original = await readFile(archive.file);

    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    await writeFile(archive.file, flipped);
    await expect(loadArchive(db, archive.manifest)).rejects.toThrow(ArchiveVerificationError);

    await writeFile(archive.file, original.subarray(0, original.length - 10));
    await expect(loadArchive(db, archive.manifest)).rejects.toThrow(ArchiveVerificationError);

    await writeFile(archive.file, original);
    const manifest = JSON.parse(await readFile(archive.manifest, 'utf8')) as { rows: number };
    await writeFile(archive.manifest, JSON.stringify({ ...manifest, rows: manifest.rows + 1 }));
    await expect(loadArchive(db, archive.manifest)).rejects.toThrow(/rows, but the manifest says/);
    await writeFile(archive.manifest, JSON.stringify({ ...manifest, file: '../elsewhere.ndjson.gz' }));
    await expect(loadArchive(db, archive.manifest)).rejects.toThrow(/beside its manifest/);

    expect(await storedState()).toEqual(state);
    expect(await listPartitions(db)).not.toContain('events_p20260501');
  });

  it('keeps a partition whose archive fails verification, reports it, and leaves no archive for it', async () => {
    await seed();
    const before = await storedState();
    const service = retention({
      // Damage the first partition's archive between writing and verifying it.
      onArchiveWritten: async (archive) => {
        if (archive.manifest.partition === 'events_p20260501') await writeFile(archive.filePath, 'not gzip');
      },
    });
    const report = await service.run();

    expect(report.errors).toEqual([
      { target: 'events_p20260501', message: expect.stringMatching(/^archive failed, rows left in place: .*cannot be read as gzip/) },
    ]);
    expect(report.partitionsDropped.map((partition) => partition.name)).toEqual(['events_p20260515']);
    expect(await listPartitions(db)).toContain('events_p20260501');
    const may1 = (rows: Row[]) => rows.filter((row) => String(row.created_at).startsWith('2026-05-01'));
    const after = await storedState();
    expect(may1(after.events)).toEqual(may1(before.events));
    expect(may1(after.ledger)).toEqual(may1(before.ledger));
    // Its rollups stay with its events.
    const may1Buckets = (rows: Row[]) => rows.filter((row) => String(row.b).startsWith('2026-05-01'));
    expect(may1Buckets(after.minutes)).toEqual(may1Buckets(before.minutes));
    expect(may1Buckets(after.hours)).toEqual(may1Buckets(before.hours));
    expect(await readdir(path.join(archiveDir, '2026-05-01'))).toEqual([]);

    // The next run, with a healthy archive, finishes the job.
    const next = await retention().run();
    expect(next.errors).toEqual([]);
    expect(next.partitionsDropped.map((partition) => partition.name)).toEqual(['events_p20260501']);
  });

  it('keeps a partition that gains events while it is archived, and the next run archives and drops it whole', async () => {
    await seed();
    const late: EventRow = {
      id: randomUUID(),
      workspaceId: A,
      userId: null,
      source: 'web',
      eventType: 'custom',
      name: 'late',
      targetType: null,
      targetId: null,
      metadata: null,
      createdAt: new Date('2026-05-15T09:00:00Z'),
      receivedAt: NOW,
    };
    const report = await retention({
      onArchiveWritten: async (archive) => {
        if (archive.manifest.partition === 'events_p20260515') await createEventWriter(db).write([late]);
      },
    }).run();

    expect(report.errors).toEqual([{ target: 'events_p20260515', message: expect.stringMatching(/^rows changed while archiving \(archived 12, now 13\)/) }]);
    expect(await listPartitions(db)).toContain('events_p20260515');
    expect(report.archives.map((archive) => archive.partition)).not.toContain('events_p20260515');
    expect(await readdir(path.join(archiveDir, '2026-05-15'))).toEqual([]);

    const next = await retention().run();
    expect(next.partitionsDropped).toEqual([{ name: 'events_p20260515', day: '2026-05-15', rows: 13 }]);
    expect(next.archives).toMatchObject([{ partition: 'events_p20260515', rows: 13 }]);
  });

  it('keeps a partition whose events changed while it was archived even when their count did not (one arrived, one was erased)', async () => {
    await seed();
    const late: EventRow = {
      id: randomUUID(),
      workspaceId: A,
      userId: null,
      source: 'web',
      eventType: 'custom',
      name: 'late',
      targetType: null,
      targetId: null,
      metadata: null,
      createdAt: new Date('2026-05-15T09:00:00Z'),
      receivedAt: NOW,
    };
    const report = await retention({
      onArchiveWritten: async (archive) => {
        if (archive.manifest.partition !== 'events_p20260515') return;
        await createEventWriter(db).write([late]);
        // The same count again: one archived event goes (as an erasure would take it).
        await db.rows(sql`delete from telemetry.events where id = (select id from telemetry.events_p20260515 where id <> ${late.id} limit 1)`);
      },
    }).run();

    expect(report.errors).toEqual([
      { target: 'events_p20260515', message: expect.stringMatching(/^rows changed while archiving \(same count, other events\)/) },
    ]);
    expect(await listPartitions(db)).toContain('events_p20260515');
    const [kept] = await db.rows<{ n: number | string }>(sql`select count(*) as n from telemetry.events where id = ${late.id}`);
    expect(Number(kept!.n)).toBe(1);
  });
});

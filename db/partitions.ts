import { sql } from 'drizzle-orm';
import { ADVISORY_LOCKS } from './advisory-locks.ts';
import type { Database, SqlRunner } from './database.ts';

const DAY_MS = 86_400_000;

/** `events_p20261127` for the UTC day holding `day`. */
export function partitionName(day: Date): string {
  return `events_p${day.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

function startOfUtcDay(time: Date): Date {
  return new Date(Math.floor(time.getTime() / DAY_MS) * DAY_MS);
}

/**
 * Makes sure a daily partition exists for every UTC day from `from` to `to` (inclusive), moving any
 * rows the default partition holds for a day into that day's new partition. Returns the partitions
 * created. Safe to run concurrently from several instances.
 */
export async function ensureDailyPartitions(db: Database, range: { from: Date; to: Date }): Promise<string[]> {
  const days: Date[] = [];
  for (let day = startOfUtcDay(range.from); day <= range.to; day = new Date(day.getTime() + DAY_MS)) days.push(day);
  const existing = new Set(await listPartitions(db));
  const created: string[] = [];
  for (const day of days) {
    const name = partitionName(day);
    if (existing.has(name)) continue;
    if (await createDailyPartition(db, day)) created.push(name);
  }
  return created;
}

/** Gives every day that has rows in the default partition its own partition. */
export async function adoptDefaultPartitionRows(db: Database): Promise<string[]> {
  const rows = await db.rows<{ day: string | Date }>(sql`
    select distinct date_trunc('day', created_at at time zone 'UTC') as day from telemetry.events_default`);
  const created: string[] = [];
  for (const row of rows) {
    const day = new Date(`${String(row.day instanceof Date ? row.day.toISOString() : row.day).slice(0, 10)}T00:00:00Z`);
    if (await createDailyPartition(db, day)) created.push(partitionName(day));
  }
  return created;
}

export async function listPartitions(db: Database): Promise<string[]> {
  const rows = await db.rows<{ name: string }>(sql`
    select c.relname as name
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    join pg_namespace n on n.oid = p.relnamespace
    where n.nspname = 'telemetry' and p.relname = 'events' and c.relname like 'events_p%'
    order by c.relname`);
  return rows.map((row) => row.name);
}

/** Creates one day's partition in a transaction; false if another instance made it first. */
async function createDailyPartition(db: Database, day: Date): Promise<boolean> {
  const name = partitionName(day);
  const from = day.toISOString();
  const to = new Date(day.getTime() + DAY_MS).toISOString();
  // Identifiers and bounds are built from a Date here, never from input, so inlining them is safe
  // (DDL cannot take bind parameters).
  const table = sql.raw(`telemetry."${name}"`);
  const bounds = sql.raw(`from ('${from}') to ('${to}')`);
  return db.transaction(async (tx) => {
    await tx.rows(sql`select pg_advisory_xact_lock(${ADVISORY_LOCKS.partitions})`);
    const [found] = await tx.rows<{ present: boolean }>(sql`select to_regclass(${`telemetry.${name}`}) is not null as present`);
    if (found?.present) return false;
    await tx.rows(sql`create table ${table} (like telemetry.events including defaults including constraints)`);
    // Rows that arrived before the partition existed sit in the default partition; attaching would
    // fail while they are there, so move them first.
    await tx.rows(sql`
      with moved as (
        delete from telemetry.events_default where created_at >= ${from}::timestamptz and created_at < ${to}::timestamptz
        returning *
      )
      insert into ${table} select * from moved`);
    await tx.rows(sql`alter table telemetry.events attach partition ${table} for values ${bounds}`);
    return true;
  });
}

const PARTITION_NAME = /^events_p(\d{4})(\d{2})(\d{2})$/;

/** The UTC day a daily partition holds (`events_p20261127` → 2026-11-27T00:00Z), or undefined for another name. */
export function partitionDay(name: string): Date | undefined {
  const match = PARTITION_NAME.exec(name);
  if (!match) return undefined;
  const day = new Date(`${match[1]}-${match[2]}-${match[3]}T00:00:00Z`);
  return Number.isNaN(day.getTime()) || partitionName(day) !== name ? undefined : day;
}

/**
 * Drops one daily partition, inside the caller's transaction (so whatever else goes with it, such
 * as its ledger and rollup rows, goes atomically). Takes the partition-maintenance lock so it never
 * races a concurrent create of the same day.
 */
export async function dropDailyPartition(tx: SqlRunner, name: string): Promise<void> {
  // The name comes from the catalog (listPartitions), but it becomes DDL: accept only our pattern.
  if (!partitionDay(name)) throw new Error(`Not a daily partition name: ${name}`);
  await tx.rows(sql`select pg_advisory_xact_lock(${ADVISORY_LOCKS.partitions})`);
  await tx.rows(sql`drop table if exists ${sql.raw(`telemetry."${name}"`)}`);
}

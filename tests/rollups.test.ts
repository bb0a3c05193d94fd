import { is } from 'drizzle-orm';
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { pickRollup, ROLLUPS } from '../db/rollups.ts';
import * as schema from '../db/schema.ts';

const tables = Object.values(schema as Record<string, unknown>)
  .filter((value): value is PgTable => is(value, PgTable))
  .map((table) => getTableConfig(table));

const HOUR = 3_600_000;
const at = (iso: string) => new Date(iso);

describe('rollups (db/rollups.ts)', () => {
  it('lists only rollups whose table the schema defines, keyed by the unit column the SQL writes', () => {
    for (const rollup of ROLLUPS) {
      const table = tables.find((candidate) => candidate.schema === 'telemetry' && candidate.name === rollup.table);
      expect(table, rollup.table).toBeDefined();
      const key = table!.primaryKeys[0]?.columns.map((column) => column.name);
      expect(key, rollup.table).toEqual(['workspace_id', rollup.unit, 'event_type', 'name', 'source']);
    }
  });

  it('reads from the coarsest rollup whose units add up exactly to the range and to every bucket', () => {
    const unit = (range: Parameters<typeof pickRollup>[0]) => pickRollup(range)?.unit;
    expect(unit({ from: at('2026-06-01T00:00:00Z'), to: at('2026-06-02T00:00:00Z') })).toBe('hour');
    expect(unit({ from: at('2026-06-01T10:00:00Z'), to: at('2026-06-01T11:00:00Z'), bucketMs: HOUR })).toBe('hour');
    // A minute-aligned range, or minute buckets, need the per-minute rollup.
    expect(unit({ from: at('2026-06-01T10:05:00Z'), to: at('2026-06-01T11:00:00Z') })).toBe('minute');
    expect(unit({ from: at('2026-06-01T10:00:00Z'), to: at('2026-06-01T11:00:00Z'), bucketMs: 60_000 })).toBe('minute');
    // Bucket starts off the hour (days in a half-hour time zone) need minutes too.
    expect(unit({ from: at('2026-06-01T00:00:00Z'), to: at('2026-06-03T00:00:00Z'), bucketMs: 86_400_000, bucketStarts: [at('2026-06-01T18:30:00Z')] })).toBe(
      'minute',
    );
    // Nothing finer than a minute: the events themselves.
    expect(unit({ from: at('2026-06-01T10:00:30Z'), to: at('2026-06-01T11:00:00Z') })).toBeUndefined();
  });
});

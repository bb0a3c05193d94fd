import { sql, type SQL } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import type { SqlRunner } from '../db/database.ts';
import { createReadRouting } from '../db/read-routing.ts';

function runner(name: string, behaviour: 'answer' | 'unreachable' | 'stall' | 'conflict' | 'wrong', log: string[]): SqlRunner {
  return {
    async rows<Row>(_query: SQL): Promise<Row[]> {
      log.push(name);
      if (behaviour === 'unreachable') throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      if (behaviour === 'conflict') throw Object.assign(new Error('canceling statement due to conflict with recovery'), { code: '40001' });
      if (behaviour === 'wrong') throw Object.assign(new Error('syntax error'), { code: '42601' });
      if (behaviour === 'stall') return new Promise<never>(() => {});
      return [{ from: name }] as Row[];
    },
  };
}

const query = sql`select 1`;

describe('read routing', () => {
  it('reads from the replica when it answers', async () => {
    const log: string[] = [];
    const reads = createReadRouting({ primary: runner('primary', 'answer', log), replica: runner('replica', 'answer', log) });
    expect(await reads.rows(query)).toEqual([{ from: 'replica' }]);
    expect(log).toEqual(['replica']);
  });

  it('reads from the primary, and keeps doing so for a while, when the replica is unreachable', async () => {
    const log: string[] = [];
    const reads = createReadRouting({ primary: runner('primary', 'answer', log), replica: runner('replica', 'unreachable', log) });
    expect(await reads.rows(query)).toEqual([{ from: 'primary' }]);
    expect(reads.replicaBypassed()).toBe(true);
    expect(await reads.rows(query)).toEqual([{ from: 'primary' }]);
    expect(log).toEqual(['replica', 'primary', 'primary']);
  });

  it('runs a query the replica does not answer in time on the primary, and bypasses the replica after three in a row', async () => {
    const log: string[] = [];
    const reads = createReadRouting({ primary: runner('primary', 'answer', log), replica: runner('replica', 'stall', log), replicaTimeoutMs: 30 });
    for (let n = 1; n <= 3; n += 1) {
      expect(reads.replicaBypassed()).toBe(false);
      expect(await reads.rows(query)).toEqual([{ from: 'primary' }]);
    }
    expect(reads.replicaBypassed()).toBe(true);
    expect(log).toEqual(['replica', 'primary', 'replica', 'primary', 'replica', 'primary']);
  });

  it('runs a query the standby cancelled for a recovery conflict on the primary, without bypassing the standby', async () => {
    const log: string[] = [];
    const reads = createReadRouting({ primary: runner('primary', 'answer', log), replica: runner('replica', 'conflict', log) });
    expect(await reads.rows(query)).toEqual([{ from: 'primary' }]);
    expect(reads.replicaBypassed()).toBe(false);
  });

  it('passes a wrong query’s error on instead of repeating it on the primary', async () => {
    const log: string[] = [];
    const reads = createReadRouting({ primary: runner('primary', 'answer', log), replica: runner('replica', 'wrong', log) });
    await expect(reads.rows(query)).rejects.toMatchObject({ code: '42601' });
    expect(log).toEqual(['replica']);
  });
});

import { describe, expect, it } from 'vitest';
import { uuidv7, uuidv7Time } from '../client/uuid7.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidv7', () => {
  it('makes RFC 9562 version 7 ids carrying their millisecond, from a Date or a number', () => {
    const at = new Date('2026-03-01T12:34:56.789Z');
    for (const id of [uuidv7(at), uuidv7(at.getTime())]) {
      expect(id).toMatch(UUID_V7);
      expect(uuidv7Time(id)).toEqual(at);
    }
    expect(uuidv7(0).startsWith('00000000-0000-7')).toBe(true);
  });

  it('never repeats, across refills of its random pool', () => {
    const at = Date.now();
    const ids = new Set(Array.from({ length: 5000 }, () => uuidv7(at)));
    expect(ids.size).toBe(5000);
  });

  it('sorts by creation time', () => {
    const ids = [3, 1, 2].map((offset) => uuidv7(1_700_000_000_000 + offset));
    expect([...ids].sort().map((id) => uuidv7Time(id)!.getTime() - 1_700_000_000_000)).toEqual([1, 2, 3]);
  });

  it('reads no time from other UUID versions', () => {
    expect(uuidv7Time('6f1c2b9e-8a3d-4c55-9b1e-2f7a0c4d5e61')).toBeUndefined();
  });
});

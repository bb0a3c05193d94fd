import { randomFillSync } from 'node:crypto';

/** A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation time. */
// Random bytes are drawn from the system in blocks: one call per id costs more than the id itself.
const POOL_SIZE = 16 * 1024;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;

export function uuidv7(at: Date = new Date()): string {
  const bytes = new Uint8Array(16);
  if (poolOffset + 10 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  bytes.set(pool.subarray(poolOffset, poolOffset + 10), 6);
  poolOffset += 10;
  let ms = at.getTime();
  for (let i = 5; i >= 0; i -= 1) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The time embedded in a UUIDv7, or undefined for any other UUID version. */
export function uuidv7Time(id: string): Date | undefined {
  if (id.length !== 36 || id[14] !== '7') return undefined;
  const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}

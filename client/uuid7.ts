/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; ids sort by creation time. The
 * one implementation for browsers, the CLI and the service: the tracker gives each event its id
 * when it is tracked (so the server drops retries), the service one to an event sent without.
 * Web Crypto only (`globalThis.crypto`, also in Node.js 20 and Bun), so no server module is needed.
 */

// Random bytes are drawn in blocks: one call per id costs more than the id itself.
const POOL_SIZE = 16 * 1024;
const RANDOM_BYTES = 10;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

export function uuidv7(at: number | Date = Date.now()): string {
  if (poolOffset + RANDOM_BYTES > POOL_SIZE) {
    globalThis.crypto.getRandomValues(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += RANDOM_BYTES;
  // 48 bits of milliseconds (wrapping, like the byte-wise form, outside 1970..10889).
  const time = (((typeof at === 'number' ? at : at.getTime()) % 2 ** 48) + 2 ** 48) % 2 ** 48;
  const timeHex = Math.floor(time).toString(16).padStart(12, '0');
  return (
    `${timeHex.slice(0, 8)}-${timeHex.slice(8)}-` +
    // Version 7 in the high nibble of byte 6, variant 10 in the top bits of byte 8.
    `${HEX[(pool[r]! & 0x0f) | 0x70]}${HEX[pool[r + 1]!]}-${HEX[(pool[r + 2]! & 0x3f) | 0x80]}${HEX[pool[r + 3]!]}-` +
    `${HEX[pool[r + 4]!]}${HEX[pool[r + 5]!]}${HEX[pool[r + 6]!]}${HEX[pool[r + 7]!]}${HEX[pool[r + 8]!]}${HEX[pool[r + 9]!]}`
  );
}

/** The time embedded in a UUIDv7, or undefined for any other UUID version. */
export function uuidv7Time(id: string): Date | undefined {
  if (id.length !== 36 || id[14] !== '7') return undefined;
  const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}

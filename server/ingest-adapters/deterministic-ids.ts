import { createHash } from 'node:crypto';
import { isUuid } from '../uuid.ts';

/**
 * Name-based UUIDs (RFC 9562 version 5: SHA-1 of a namespace and a name). Foreign wire formats
 * carry no event id, or one that is not a UUID; deriving it from what identifies the record makes
 * an exporter's identical retry land on the same id, which the write path stores once.
 */
export function uuidv5(namespace: string, name: string): string {
  let namespaceBytes = namespaceCache.get(namespace);
  if (!namespaceBytes) {
    namespaceBytes = uuidBytes(namespace);
    // Namespaces are a handful of constants; the cap only guards against a caller passing many.
    if (namespaceCache.size < 64) namespaceCache.set(namespace, namespaceBytes);
  }
  const hash = createHash('sha1').update(namespaceBytes).update(name, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Each namespace's 16 bytes, parsed once: adapters derive an id per record. */
const namespaceCache = new Map<string, Buffer>();

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replaceAll('-', '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`Not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

/** One namespace per kind of record, so the same name never gives the same id for two kinds. */
export const ID_NAMESPACES = {
  otlpLog: '4f0e7b36-2d55-5c57-9a1e-6a4c1c3d8b01',
  otlpSpan: '4f0e7b36-2d55-5c57-9a1e-6a4c1c3d8b02',
  segmentMessage: '4f0e7b36-2d55-5c57-9a1e-6a4c1c3d8b03',
  posthogEvent: '4f0e7b36-2d55-5c57-9a1e-6a4c1c3d8b04',
  foreignUser: '4f0e7b36-2d55-5c57-9a1e-6a4c1c3d8b05',
} as const;

/** Longest foreign user id read; longer ones are not ids but mistakes, and are not mapped. */
export const MAX_FOREIGN_USER_ID_LENGTH = 512;

/**
 * The event's `userId` for a foreign SDK's user id (OTLP `user.id`, Segment `userId` or
 * `anonymousId`, PostHog `distinct_id`): a UUID as it is, anything else the name-based UUID of the
 * workspace and that text, the same in every adapter, so one user seen through two SDKs is one
 * user. The raw value is kept in the event's metadata by each adapter.
 */
export function foreignUserId(workspaceId: string, raw: unknown): string | undefined {
  if (typeof raw === 'number' && Number.isFinite(raw)) raw = String(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || raw.length > MAX_FOREIGN_USER_ID_LENGTH) return undefined;
  if (isUuid(raw)) return raw.toLowerCase();
  return uuidv5(ID_NAMESPACES.foreignUser, `${workspaceId}\n${raw}`);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

import { EVENT_LIMITS } from '../services/events/schemas.ts';
import { isJsonWithinBounds, type JsonObject, type JsonValue } from '../services/events/json.ts';

export const TRUNCATION_MARKER = '…[truncated]';

/** Text clipped to `maxLength` characters with the marker, never splitting a surrogate pair. */
export function clipText(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text;
  let end = Math.max(0, maxLength - TRUNCATION_MARKER.length);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end) + TRUNCATION_MARKER;
}

/** Characters of JSON text kept from a value that did not fit. */
const KEPT_JSON_CHARS = 1024;

/**
 * Foreign records were never written for this service's metadata limits: rather than refuse one,
 * the named parts that do not fit are replaced, largest first, by the start of their JSON text
 * with a truncation marker; `truncated` lists what was cut. Parts not named are kept as they are.
 */
export function fitMetadata(metadata: JsonObject, shrinkable: readonly string[]): JsonObject {
  if (isJsonWithinBounds(metadata, EVENT_LIMITS.metadata)) return metadata;
  const fitted: JsonObject = { ...metadata };
  const truncated: string[] = [];
  const bySize = shrinkable
    .filter((key) => Object.hasOwn(fitted, key))
    .map((key) => ({ key, size: JSON.stringify(fitted[key])?.length ?? 0 }))
    .sort((a, b) => b.size - a.size);
  for (const { key } of bySize) {
    const value = fitted[key] as JsonValue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    fitted[key] = clipText(text, KEPT_JSON_CHARS);
    truncated.push(key);
    fitted['truncated'] = truncated;
    if (isJsonWithinBounds(fitted, EVENT_LIMITS.metadata)) return fitted;
  }
  return fitted;
}

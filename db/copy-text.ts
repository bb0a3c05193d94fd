/**
 * Events in COPY's text format, for the writers that COPY them (the routed form on Citus, and the
 * benchmark's forms). Times keep the microseconds a PreciseDate carries.
 */
import type { EventRow } from './event-writers.ts';

const COPY_SPECIAL = /[\\\t\n\r]/;

/** Escapes a value for COPY's text format: backslash, tab, newline and carriage return. */
function copyField(value: string | null): string {
  if (value === null) return '\\N';
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (char) => (char === '\\' ? '\\\\' : char === '\t' ? '\\t' : char === '\n' ? '\\n' : '\\r'));
}

/** Rows in COPY's text format, in EVENT_COLUMNS order. */
export function toCopyText(rows: readonly EventRow[]): string {
  let text = '';
  for (const r of rows) {
    text +=
      // Ids are UUIDs, source and event type are validated identifiers: nothing in them to escape.
      `${r.id}\t${r.workspaceId}\t${r.userId ?? '\\N'}\t${r.source}\t${r.eventType}\t` +
      `${copyField(r.name)}\t${copyField(r.targetType)}\t${copyField(r.targetId)}\t` +
      `${copyField(r.metadata === null ? null : JSON.stringify(r.metadata))}\t${r.createdAt.toISOString()}\t${r.receivedAt.toISOString()}\n`;
  }
  return text;
}

import type { OutputStream } from './io.ts';

const numberFormat = new Intl.NumberFormat('en-US');
export function formatCount(value: number): string {
  return numberFormat.format(value);
}

/** Dates as ISO 8601, so JSON output reads the same whatever the transport gave. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (item instanceof Date ? item.toISOString() : item));
}

export function writeJson(out: OutputStream, value: unknown): void {
  out.write(`${toJson(value)}\n`);
}

export function ellipsize(text: string, maxLength: number): string {
  return text.length <= maxLength ? text : `${text.slice(0, maxLength - 1)}…`;
}

export function formatTime(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : value.toISOString();
}

/** Columns padded to their widest cell; numbers (cells that are only digits and commas) right-aligned. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const numeric = headers.map((_header, column) => rows.length > 0 && rows.every((row) => /^-?[\d,.]*$/.test(row[column] ?? '')));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

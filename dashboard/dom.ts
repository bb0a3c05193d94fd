/** Small DOM helpers: the page is static HTML, these fill it in without innerHTML (no markup injection from event data). */

/** The element with this id, of the expected kind; a missing one is a bug in index.html. */
export function byId<T extends HTMLElement>(id: string, kind: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof kind)) throw new Error(`#${id} is missing or not a ${kind.name}`);
  return element;
}

type Child = Node | string | number;

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const created = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) created.setAttribute(name, value);
  created.append(...children.map((child) => (typeof child === 'number' ? String(child) : child)));
  return created;
}

export interface TableColumn<Row> {
  header: string;
  cell: (row: Row) => Child;
  /** Numbers align right, so digits line up. */
  numeric?: boolean;
}

/** Replaces a table's content with a header row and one row per item (or a single "no data" row). */
export function renderTable<Row>(table: HTMLTableElement, columns: readonly TableColumn<Row>[], rows: readonly Row[], caption?: string): void {
  const head = element(
    'thead',
    {},
    element('tr', {}, ...columns.map((column) => element('th', { scope: 'col', ...(column.numeric && { class: 'num' }) }, column.header))),
  );
  const body = element('tbody');
  if (rows.length === 0) body.append(element('tr', {}, element('td', { colspan: String(columns.length), class: 'empty' }, 'No data in this range')));
  for (const row of rows) {
    body.append(element('tr', {}, ...columns.map((column) => element('td', column.numeric ? { class: 'num' } : {}, column.cell(row)))));
  }
  table.replaceChildren(...(caption ? [element('caption', {}, caption)] : []), head, body);
}

const integerFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimalFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const percentFormat = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

export const formatCount = (value: number) => integerFormat.format(value);
export const formatNumber = (value: number | null | undefined) => (value === null || value === undefined ? '–' : decimalFormat.format(value));
export const formatPercent = (value: number | null) => (value === null ? '–' : percentFormat.format(value));

/** A bucket start as local date and time, at the precision the bucket size needs. */
export function formatBucketStart(start: string | Date, bucket: 'minute' | 'hour' | 'day' | 'week'): string {
  const date = typeof start === 'string' ? new Date(start) : start;
  if (bucket === 'day' || bucket === 'week') return date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  return date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** A horizontal bar inside a table cell: decoration beside the number, so the table stays the source of truth. */
export function bar(fraction: number): HTMLElement {
  const meter = element('span', { class: 'bar', 'aria-hidden': 'true' });
  // Set through the CSSOM: the page's CSP forbids inline style attributes.
  meter.style.setProperty('--fill', String(Math.max(0, Math.min(1, fraction))));
  return meter;
}

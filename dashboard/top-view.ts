import type { TelemetryOutputs } from '../client/index.ts';
import { bar, byId, element, formatCount, formatPercent, renderTable } from './dom.ts';
import type { ViewContext } from './view-context.ts';

type TopItem = TelemetryOutputs['telemetry']['stats']['top']['items'][number];

const TOP_LIMIT = 10;

/** The most frequent event names in the range, as a table with bars. Answers the names, for the funnel's default steps. */
export function topView() {
  const table = byId('top-table', HTMLTableElement);

  return {
    async load({ client, scope, window }: ViewContext): Promise<string[]> {
      const { items } = await client.telemetry.stats.top.query({ ...scope, from: window.from, to: window.to, by: 'name', limit: TOP_LIMIT });
      const largest = items[0]?.count ?? 0;
      const total = items.reduce((sum, item) => sum + item.count, 0);
      renderTable<TopItem>(
        table,
        [
          { header: 'Name', cell: (item) => element('span', { class: 'key' }, item.key) },
          { header: 'Events', numeric: true, cell: (item) => element('span', { class: 'count', 'data-value': String(item.count) }, formatCount(item.count)) },
          {
            header: 'Share of top',
            numeric: true,
            cell: (item) => element('span', { class: 'share' }, bar(largest ? item.count / largest : 0), formatPercent(total ? item.count / total : null)),
          },
        ],
        items,
        `Top ${TOP_LIMIT} event names by count`,
      );
      return items.map((item) => item.key);
    },
    showProblem(message: string) {
      renderTable(table, [{ header: 'Top events', cell: (text: string) => text }], [message]);
    },
  };
}

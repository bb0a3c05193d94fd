import { chartArea, seriesColor } from './charts.ts';
import { byId, element, formatCount, formatNumber, renderTable } from './dom.ts';
import type { ViewContext } from './view-context.ts';

const METRIC_LIMIT = 20;
const SHOWN_PERCENTILES = ['p50', 'p95', 'p99'] as const;

/**
 * p50/p95/p99 of `perf.metric` values per bucket, for one metric name at a time: mixing metrics
 * (milliseconds of LCP with a unitless CLS) would make the percentiles meaningless.
 */
export function percentilesView(onMetricChange: () => void) {
  const chart = chartArea(byId('perf-chart', HTMLDivElement));
  const select = byId('perf-metric', HTMLSelectElement);
  const table = byId('perf-table', HTMLTableElement);
  let chosenMetric: string | undefined;
  select.addEventListener('change', () => {
    chosenMetric = select.value;
    onMetricChange();
  });

  return {
    async load({ client, scope, window }: ViewContext) {
      const { items } = await client.telemetry.stats.top.query({
        ...scope,
        from: window.from,
        to: window.to,
        by: 'name',
        eventType: 'perf.metric',
        limit: METRIC_LIMIT,
      });
      const metrics = items.map((item) => item.key);
      if (chosenMetric === undefined || !metrics.includes(chosenMetric)) chosenMetric = metrics[0];
      select.replaceChildren(...metrics.map((name) => element('option', { value: name }, name)));
      select.disabled = metrics.length === 0;
      if (chosenMetric === undefined) {
        chart.showNote('No perf.metric events in this range.');
        renderTable(table, [{ header: 'Performance', cell: (text: string) => text }], []);
        return;
      }
      select.value = chosenMetric;

      const result = await client.telemetry.stats.percentiles.query({
        ...scope,
        from: window.from,
        to: window.to,
        name: chosenMetric,
        bucket: window.bucket,
        timeZone: window.timeZone,
      });
      const buckets = result.buckets ?? [];
      chart.render({
        times: buckets.map((bucket) => new Date(bucket.start)),
        window,
        series: SHOWN_PERCENTILES.map((percentile, index) => ({
          label: percentile,
          values: buckets.map((bucket) => bucket[percentile]),
          color: seriesColor(index),
          style: 'line' as const,
          spanGaps: true,
          summary: `${formatNumber(result.overall[percentile])} overall`,
          format: formatNumber,
        })),
        yLabel: result.unit ?? 'value',
        rangeLabel: window.label,
      });
      const { overall } = result;
      renderTable(
        table,
        [
          {
            header: 'Samples',
            numeric: true,
            cell: () => element('span', { 'data-field': 'count', 'data-value': String(overall.count) }, formatCount(overall.count)),
          },
          ...SHOWN_PERCENTILES.map((percentile) => ({
            header: percentile,
            numeric: true,
            cell: () => element('span', { 'data-field': percentile, 'data-value': String(overall[percentile] ?? '') }, formatNumber(overall[percentile])),
          })),
          { header: 'max', numeric: true, cell: () => formatNumber(overall.max) },
        ],
        [overall],
        // The metric's name is in the caption, not a column: the table has to fit a phone.
        `${chosenMetric} over the whole range`,
      );
    },
    showProblem(message: string) {
      chart.showNote(message);
    },
  };
}

import type { TelemetryOutputs } from '../client/index.ts';
import { chartArea, seriesColor, type ChartSeries } from './charts.ts';
import { byId, formatBucketStart, formatCount, formatNumber, renderTable, type TableColumn } from './dom.ts';
import { BUCKET_MS } from './time-range.ts';
import type { ViewContext } from './view-context.ts';

type Timeseries = TelemetryOutputs['telemetry']['stats']['timeseries'];
type Anomalies = TelemetryOutputs['telemetry']['stats']['anomalies'];
type AnomalyPoint = Anomalies['points'][number];
export const BREAKDOWNS = ['eventType', 'name', 'source'] as const;
export type Breakdown = (typeof BREAKDOWNS)[number];

/** More lines than this are unreadable: the smallest series are summed into one "other" line. */
const MAX_BREAKDOWN_SERIES = 8;

interface VolumeSeries {
  label: string;
  counts: number[];
  total: number;
  /** How many values the series sums (1 for a value of its own). */
  values: number;
}

function volumeSeries(result: Timeseries, breakdown: Breakdown | undefined): VolumeSeries[] {
  const all = result.series
    .map((series) => ({
      label: breakdown ? (series.key ?? '(none)') : 'events',
      counts: series.points.map((point) => point.count),
      total: series.total,
      values: 1,
    }))
    .sort((a, b) => b.total - a.total);
  // The service answers the largest values and sums the rest into `other`; it always stays last.
  const serverOther = result.other
    ? [{ label: '', counts: result.other.points.map((point) => point.count), total: result.other.total, values: result.other.keys }]
    : [];
  if (serverOther.length === 0 && all.length <= MAX_BREAKDOWN_SERIES) return all;
  const kept = all.slice(0, MAX_BREAKDOWN_SERIES - 1);
  const rest = [...all.slice(MAX_BREAKDOWN_SERIES - 1), ...serverOther];
  const other = {
    label: `other (${rest.reduce((sum, series) => sum + series.values, 0)})`,
    counts: rest[0]!.counts.map((_, index) => rest.reduce((sum, series) => sum + (series.counts[index] ?? 0), 0)),
    total: rest.reduce((sum, series) => sum + series.total, 0),
    values: rest.reduce((sum, series) => sum + series.values, 0),
  };
  return [...kept, other];
}

/** What the anomaly figure cannot say by a count: not checked, or not enough history for a verdict. */
function anomalyNoteText(anomalies: Anomalies | null, bucket: 'hour' | 'day' | null): string | null {
  if (!anomalies || !bucket) return 'Anomalies are checked per hour or day: choose 24 h or longer.';
  if (anomalies.status === 'ok') return null;
  const unit = bucket === 'hour' ? 'hours' : 'days';
  const needed = `${anomalies.history.requiredDays} days of events`;
  const since = anomalies.history.since ? `recording since ${formatBucketStart(anomalies.history.since, 'hour')}` : 'no events recorded yet';
  return anomalies.status === 'insufficient_history'
    ? `Not enough history to flag anomalous ${unit}: that needs ${needed} (${since}).`
    : `Only the later ${unit} could be checked for anomalies: that needs ${needed} (${since}).`;
}

/** Event counts per bucket, optionally split by a dimension, with anomalous buckets shaded. */
export function volumeView() {
  const chart = chartArea(byId('volume-chart', HTMLDivElement));
  const totalOutput = byId('volume-total', HTMLElement);
  const totalUnit = byId('volume-total-unit', HTMLElement);
  const anomalyFigure = byId('anomaly-figure', HTMLElement);
  const anomalyNote = byId('anomaly-note', HTMLElement);
  const anomalyCount = byId('anomaly-count', HTMLElement);
  const anomalyBucket = byId('anomaly-bucket', HTMLElement);
  const bucketNote = byId('volume-bucket', HTMLElement);
  const dataTable = byId('volume-table', HTMLTableElement);
  const anomalyTable = byId('anomaly-table', HTMLTableElement);

  return {
    async load({ client, scope, window }: ViewContext, breakdown: Breakdown | undefined) {
      const [timeseries, anomalies] = await Promise.all([
        client.telemetry.stats.timeseries.query({
          ...scope,
          from: window.from,
          to: window.to,
          bucket: window.bucket,
          timeZone: window.timeZone,
          ...(breakdown && { breakdown }),
        }),
        window.anomalyBucket
          ? client.telemetry.stats.anomalies.query({ ...scope, from: window.from, to: window.to, bucket: window.anomalyBucket, timeZone: window.timeZone })
          : null,
      ]);

      const series = volumeSeries(timeseries, breakdown);
      const total = timeseries.series.reduce((sum, one) => sum + one.total, 0) + (timeseries.other?.total ?? 0);
      // Every series has the same buckets; without any event there may be no series at all.
      const starts = timeseries.series[0]?.points.map((point) => point.start) ?? [];
      totalOutput.textContent = formatCount(total);
      totalOutput.dataset['value'] = String(total);
      totalUnit.textContent = total === 1 ? 'event' : 'events';
      bucketNote.textContent = `per ${timeseries.bucket}`;

      const flagged = anomalies?.points.filter((point) => point.anomaly) ?? [];
      const note = anomalyNoteText(anomalies, window.anomalyBucket);
      // Without a verdict there is no count to show, not a count of zero.
      anomalyFigure.hidden = !anomalies || anomalies.status === 'insufficient_history';
      anomalyNote.hidden = note === null;
      anomalyNote.textContent = note ?? '';
      anomalyNote.dataset['status'] = anomalies?.status ?? 'not_checked';
      anomalyCount.textContent = formatCount(flagged.length);
      anomalyCount.dataset['value'] = String(flagged.length);
      anomalyBucket.textContent = flagged.length === 1 ? (window.anomalyBucket ?? 'bucket') : `${window.anomalyBucket ?? 'bucket'}s`;

      if (total === 0) chart.showNote('No events in this range.');
      else {
        chart.render({
          times: starts.map((start) => new Date(start)),
          window,
          series: series.map<ChartSeries>((one, index) => ({
            label: one.label,
            values: one.counts,
            color: seriesColor(index),
            style: series.length === 1 ? 'bars' : 'line',
            summary: `${formatCount(one.total)} in all`,
            format: formatCount,
          })),
          marked: flagged.map((point) => ({
            from: new Date(point.start),
            to: new Date(new Date(point.start).getTime() + BUCKET_MS[window.anomalyBucket ?? 'hour']),
          })),
          yLabel: 'events',
          rangeLabel: window.label,
        });
      }

      const columns: TableColumn<number>[] = [
        {
          header: timeseries.bucket === 'day' || timeseries.bucket === 'week' ? 'Day' : 'Time',
          cell: (index) => formatBucketStart(starts[index]!, timeseries.bucket),
        },
        ...series.map<TableColumn<number>>((one) => ({ header: one.label, numeric: true, cell: (index) => formatCount(one.counts[index] ?? 0) })),
      ];
      // Newest bucket first, like the live tail; only buckets with events, so the table stays short.
      const rows = starts
        .map((_, index) => index)
        .filter((index) => series.some((one) => (one.counts[index] ?? 0) > 0))
        .reverse();
      renderTable(dataTable, columns, rows, `Events per ${timeseries.bucket}`);

      renderTable<AnomalyPoint>(
        anomalyTable,
        [
          { header: window.anomalyBucket === 'day' ? 'Day' : 'Hour', cell: (point) => formatBucketStart(point.start, window.anomalyBucket ?? 'hour') },
          { header: 'Observed', numeric: true, cell: (point) => formatCount(point.observed) },
          { header: 'Expected', numeric: true, cell: (point) => formatNumber(point.expected) },
          { header: 'Score', numeric: true, cell: (point) => formatNumber(point.score) },
        ],
        [...flagged].reverse(),
        'Buckets whose count is far from their baseline (robust z-score)',
      );
    },
    showProblem(message: string) {
      chart.showNote(message);
    },
  };
}

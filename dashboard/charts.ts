import uPlot from 'uplot';

/** Series colours, distinguishable on light and dark backgrounds. */
const PALETTE = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626', '#4b5563', '#ca8a04'];
export const seriesColor = (index: number) => PALETTE[index % PALETTE.length]!;

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  color: string;
  /** Counts per bucket read best as bars starting at the bucket; several series overlap, so those are lines. */
  style: 'bars' | 'line';
  /**
   * Join points across empty buckets. Right for measurements (a percentile with no samples in a
   * bucket is unknown, not zero); counts have no gaps, an empty bucket is 0.
   */
  spanGaps?: boolean;
}

/** A span of the x axis to highlight, e.g. an anomalous bucket. */
export interface MarkedSpan {
  from: Date;
  to: Date;
}

export interface ChartData {
  /** Bucket starts. */
  times: Date[];
  series: ChartSeries[];
  /** The x axis covers exactly the queried window, so the newest partial bucket and empty edges show. */
  window: { from: Date; to: Date };
  marked?: MarkedSpan[];
  yLabel?: string;
}

const toSeconds = (date: Date) => date.getTime() / 1000;

function cssVariable(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

const compactPhone = () => window.matchMedia('(max-width: 600px)').matches;
function chartSize(container: HTMLElement) {
  return { width: Math.max(200, Math.floor(container.clientWidth)), height: compactPhone() ? 190 : 250 };
}

/**
 * Shades the marked spans behind the series (drawClear runs before anything is drawn), clipped to
 * the plotting area, with a small marker on top so they stay visible where the shade is thin.
 */
function markedSpansPlugin(spans: readonly MarkedSpan[], color: string): uPlot.Plugin {
  const pixelSpans = (plot: uPlot) =>
    spans.map((span) => {
      const left = Math.max(plot.bbox.left, plot.valToPos(toSeconds(span.from), 'x', true));
      const right = Math.min(plot.bbox.left + plot.bbox.width, plot.valToPos(toSeconds(span.to), 'x', true));
      return { left, width: Math.max(2, right - left) };
    });
  return {
    hooks: {
      drawClear: (plot) => {
        plot.ctx.save();
        plot.ctx.globalAlpha = 0.16;
        plot.ctx.fillStyle = color;
        for (const { left, width } of pixelSpans(plot)) plot.ctx.fillRect(left, plot.bbox.top, width, plot.bbox.height);
        plot.ctx.restore();
      },
      draw: (plot) => {
        plot.ctx.save();
        plot.ctx.fillStyle = color;
        const size = 6 * devicePixelRatio;
        for (const { left, width } of pixelSpans(plot)) {
          const middle = left + width / 2;
          plot.ctx.beginPath();
          plot.ctx.moveTo(middle - size, plot.bbox.top);
          plot.ctx.lineTo(middle + size, plot.bbox.top);
          plot.ctx.lineTo(middle, plot.bbox.top + size * 1.4);
          plot.ctx.closePath();
          plot.ctx.fill();
        }
        plot.ctx.restore();
      },
    },
  };
}

function plotOptions(container: HTMLElement, data: ChartData): uPlot.Options {
  const axisColor = cssVariable('--muted', '#6b7280');
  const gridColor = cssVariable('--grid', 'rgba(127,127,127,0.18)');
  const axis = { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor, width: 1 } };
  const bars = uPlot.paths.bars?.({ size: [0.8, 48], align: 1 });
  const windowSeconds: uPlot.Range.MinMax = [toSeconds(data.window.from), toSeconds(data.window.to)];
  return {
    ...chartSize(container),
    scales: { x: { time: true, range: () => windowSeconds }, y: { range: (_plot, _min, max) => [0, Math.max(1, max) * 1.08] } },
    axes: [axis, { ...axis, size: 52, ...(data.yLabel && { label: data.yLabel, labelSize: 18 }) }],
    series: [
      {},
      ...data.series.map<uPlot.Series>((series) => ({
        label: series.label,
        stroke: series.color,
        width: series.style === 'bars' ? 0 : 2,
        // Points always show on lines: a metric sampled in one bucket only has no line to draw.
        ...(series.style === 'bars' ? { fill: series.color, ...(bars && { paths: bars }), points: { show: false } } : { points: { show: true, size: 6 } }),
        spanGaps: series.spanGaps ?? false,
      })),
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    plugins: data.marked?.length ? [markedSpansPlugin(data.marked, cssVariable('--danger', '#dc2626'))] : [],
  };
}

/**
 * One chart area: each render replaces the plot (series may change with the breakdown), and the
 * plot follows the container's width, so charts fit a phone and survive rotation.
 */
export function chartArea(container: HTMLElement) {
  let plot: uPlot | undefined;
  const resize = () => plot?.setSize(chartSize(container));
  new ResizeObserver(resize).observe(container);
  // The height depends on a media query, which a container resize may not cross.
  window.matchMedia('(max-width: 600px)').addEventListener('change', resize);

  return {
    render(data: ChartData) {
      plot?.destroy();
      container.replaceChildren();
      const aligned: uPlot.AlignedData = [data.times.map(toSeconds), ...data.series.map((series) => series.values)];
      plot = new uPlot(plotOptions(container, data), aligned, container);
    },
    /** Replaces the chart with a short note (no data, or why it could not load). */
    showNote(text: string) {
      plot?.destroy();
      plot = undefined;
      const note = document.createElement('p');
      note.className = 'chart-note';
      note.textContent = text;
      container.replaceChildren(note);
    },
  };
}

export type ChartArea = ReturnType<typeof chartArea>;

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
  /** The legend's value while no bucket is hovered: the series' total or overall figure. */
  summary: string;
  /** A hovered bucket's value in the legend. */
  format: (value: number) => string;
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
  /** What the legend's time cell says while no bucket is hovered, e.g. "last 7 days". */
  rangeLabel: string;
}

const toSeconds = (date: Date) => date.getTime() / 1000;
const DAY_S = 86_400;

/** Local midnights within [min, max] (seconds), computed with the Date constructor so DST days are right. */
function localMidnights(min: number, max: number): number[] {
  const start = new Date(min * 1000);
  const splits: number[] = [];
  for (let day = new Date(start.getFullYear(), start.getMonth(), start.getDate()); day.getTime() / 1000 <= max; ) {
    if (day.getTime() / 1000 >= min) splits.push(day.getTime() / 1000);
    day = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1);
  }
  return splits;
}

const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
/** "Tue 24": the weekday says where the week is, the date pins it (locales order the parts differently when formatting both). */
const dayLabel = { format: (date: Date) => `${weekdayFormat.format(date)} ${date.getDate()}` };
const hoverLabel = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** Room one day label needs; narrower than this (a phone), every other day is labelled. */
const DAY_LABEL_PX = 56;

/**
 * A window of a few days to two weeks (the 7-day range, in hourly buckets) is labelled once per
 * local day ("Mon 24"), instead of uPlot's hour-and-date labels crowding each other; shorter and
 * longer windows keep uPlot's own choice.
 */
function dayTicks(windowSeconds: uPlot.Range.MinMax): Partial<uPlot.Axis> {
  const span = (windowSeconds[1] ?? 0) - (windowSeconds[0] ?? 0);
  if (span < 2 * DAY_S || span > 15 * DAY_S) return {};
  return {
    splits: (_plot, _axis, min, max) => localMidnights(min, max),
    values: (plot, splits) => {
      const step = plot.bbox.width / devicePixelRatio / Math.max(1, splits.length) < DAY_LABEL_PX ? 2 : 1;
      const labels = splits.map((split, index) => (index % step === 0 ? dayLabel.format(new Date(split * 1000)) : ''));
      // The labels are drawn on the canvas: the chart names them for automation and assistive tools.
      plot.root.dataset['xTicks'] = labels.filter((label) => label !== '').join('|');
      return labels;
    },
  };
}

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
    axes: [
      { ...axis, ...dayTicks(windowSeconds) },
      { ...axis, size: 52, ...(data.yLabel && { label: data.yLabel, labelSize: 18 }) },
    ],
    series: [
      // uPlot's legend shows "--" while no bucket is hovered: show the range and each series' summary instead.
      { value: (_plot, seconds, _series, index) => (index === null || seconds === null ? data.rangeLabel : hoverLabel.format(new Date(seconds * 1000))) },
      ...data.series.map<uPlot.Series>((series) => ({
        label: series.label,
        value: (_plot, value, _series, index) => (index === null ? series.summary : value === null ? '–' : series.format(value)),
        stroke: series.color,
        width: series.style === 'bars' ? 0 : 2,
        // Measurements show their points: a metric sampled in one bucket only has no line to draw.
        // Counts have no gaps, and a point per bucket would crowd a 7-day line (168 hours).
        ...(series.style === 'bars'
          ? { fill: series.color, ...(bars && { paths: bars }), points: { show: false } }
          : series.spanGaps
            ? { points: { show: true, size: 6 } }
            : {}),
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

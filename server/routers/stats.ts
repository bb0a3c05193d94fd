import { readProcedure, router } from '../trpc/init.ts';
import { detectAnomalies, HISTORY_MS } from '../services/stats/anomalies.ts';
import {
  AnomaliesInput,
  AnomaliesResult,
  FunnelInput,
  FunnelResult,
  PercentilesInput,
  PercentilesResult,
  TimeseriesInput,
  TimeseriesResult,
  TopInput,
  TopResult,
} from '../services/stats/schemas.ts';

const meta = (path: `/${string}`, summary: string, description?: string) => ({
  openapi: { method: 'POST' as const, path, tags: ['stats'], protect: true, summary, ...(description && { description }) },
});

export const statsRouter = router({
  timeseries: readProcedure
    .meta(meta('/stats/timeseries', 'Event counts per time bucket', 'Minute and hour buckets are UTC; day and week buckets follow timeZone, DST included. Empty buckets are zero. Answered from per-minute rollups when the filters allow (no unique users, no targetType, minute-aligned range), else from raw events.'))
    .input(TimeseriesInput)
    .output(TimeseriesResult)
    .query(({ ctx, input }) => ctx.services.queries.timeseries(ctx.workspaceId, input)),

  top: readProcedure
    .meta(meta('/stats/top', 'Top names, targets or users by count'))
    .input(TopInput)
    .output(TopResult)
    .query(({ ctx, input }) => ctx.services.queries.top(ctx.workspaceId, input)),

  percentiles: readProcedure
    .meta(meta('/stats/percentiles', 'Percentiles of a numeric metadata field', 'p50/p75/p90/p95/p99, count, min and max of metadata.<field> (default: perf.metric value), overall and optionally per bucket.'))
    .input(PercentilesInput)
    .output(PercentilesResult)
    .query(({ ctx, input }) => ctx.services.queries.percentiles(ctx.workspaceId, input)),

  funnel: readProcedure
    .meta(meta('/stats/funnel', 'Ordered conversion funnel per user'))
    .input(FunnelInput)
    .output(FunnelResult)
    .query(({ ctx, input }) => ctx.services.queries.funnel(ctx.workspaceId, input)),

  anomalies: readProcedure
    .meta(meta('/stats/anomalies', 'Buckets whose count deviates from its baseline', 'Robust z-scores (median and MAD); hourly series compare with the same hour of the week in the four weeks before when at least three exist, else with the trailing buckets.'))
    .input(AnomaliesInput)
    .output(AnomaliesResult)
    .query(async ({ ctx, input }) => {
      const historyFrom = new Date(input.from.getTime() - HISTORY_MS[input.bucket]);
      const query = { bucket: input.bucket, timeZone: input.timeZone, uniqueUsers: false, eventType: input.eventType, name: input.name, source: input.source };
      const [history, current] = await Promise.all([
        ctx.services.queries.timeseries(ctx.workspaceId, { ...query, from: historyFrom, to: input.from }),
        ctx.services.queries.timeseries(ctx.workspaceId, { ...query, from: input.from, to: input.to }),
      ]);
      const points = (series: typeof current) => (series.series[0]?.points ?? []).map((p) => ({ start: new Date(p.start), count: p.count }));
      // A bucket split by `from` would appear in both: keep it once, in the current range.
      const currentStarts = new Set(points(current).map((p) => p.start.getTime()));
      const flagged = detectAnomalies(points(history).filter((p) => !currentStarts.has(p.start.getTime())), points(current), input.bucket, input.threshold);
      return { points: flagged.map((point) => ({ ...point, start: point.start.toISOString() })) };
    }),
});

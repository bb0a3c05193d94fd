import { readProcedure, router } from '../trpc/init.ts';
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
    .meta(
      meta(
        '/stats/timeseries',
        'Event counts per time bucket',
        'Minute and hour buckets are UTC; day and week buckets follow timeZone, DST included. Empty buckets are zero. Answered from per-minute rollups when the filters allow (no unique users, no targetType, minute-aligned range), else from raw events.',
      ),
    )
    .input(TimeseriesInput)
    .output(TimeseriesResult)
    .query(({ ctx, input }) => ctx.services.stats.timeseries(ctx.workspaceId, input)),

  top: readProcedure
    .meta(meta('/stats/top', 'Top names, targets or users by count'))
    .input(TopInput)
    .output(TopResult)
    .query(({ ctx, input }) => ctx.services.stats.top(ctx.workspaceId, input)),

  percentiles: readProcedure
    .meta(
      meta(
        '/stats/percentiles',
        'Percentiles of a numeric metadata field',
        'p50/p75/p90/p95/p99, count, min and max of metadata.<field> (default: perf.metric value), overall and optionally per bucket.',
      ),
    )
    .input(PercentilesInput)
    .output(PercentilesResult)
    .query(({ ctx, input }) => ctx.services.stats.percentiles(ctx.workspaceId, input)),

  funnel: readProcedure
    .meta(meta('/stats/funnel', 'Ordered conversion funnel per user'))
    .input(FunnelInput)
    .output(FunnelResult)
    .query(({ ctx, input }) => ctx.services.stats.funnel(ctx.workspaceId, input)),

  anomalies: readProcedure
    .meta(
      meta(
        '/stats/anomalies',
        'Buckets whose count deviates from its baseline',
        "Robust z-scores (median and MAD). An hour is compared with the same hour in each of the four weeks before it (at least three of them recorded), a day with the fourteen days before it (at least five recorded); the verdict never depends on the range asked. Time before the workspace's first event is not history: without enough, a bucket's baseline is 'insufficient', it is never flagged, and status says so.",
      ),
    )
    .input(AnomaliesInput)
    .output(AnomaliesResult)
    .query(({ ctx, input }) => ctx.services.stats.anomalies(ctx.workspaceId, input)),
});

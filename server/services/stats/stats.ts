import { findAnomalies } from './anomalies.ts';
import type { EventQueries } from './queries.ts';
import { withAbsoluteRange } from './relative-range.ts';
import type { AnomaliesInput, FunnelInput, PercentilesInput, TimeseriesInput, TopInput } from './schemas.ts';
import type { z } from 'zod';

export type StatsService = ReturnType<typeof createStatsService>;

/**
 * The statistics verbs (stats.*) over one workspace's events, anomalies included. Each takes its
 * input as its schema answers it, and makes a relative range ("24h") absolute at the queries' clock.
 */
export function createStatsService(queries: EventQueries) {
  return {
    timeseries: (workspaceId: string, input: z.output<typeof TimeseriesInput>) => queries.timeseries(workspaceId, withAbsoluteRange(input, queries.now())),
    top: (workspaceId: string, input: z.output<typeof TopInput>) => queries.top(workspaceId, withAbsoluteRange(input, queries.now())),
    percentiles: (workspaceId: string, input: z.output<typeof PercentilesInput>) => queries.percentiles(workspaceId, withAbsoluteRange(input, queries.now())),
    funnel: (workspaceId: string, input: z.output<typeof FunnelInput>) => queries.funnel(workspaceId, withAbsoluteRange(input, queries.now())),
    anomalies: (workspaceId: string, input: z.output<typeof AnomaliesInput>) => findAnomalies(queries, workspaceId, withAbsoluteRange(input, queries.now())),
  };
}

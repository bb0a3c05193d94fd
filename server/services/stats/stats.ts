import { findAnomalies } from './anomalies.ts';
import type { EventQueries } from './queries.ts';
import type { AnomaliesQuery } from './schemas.ts';

export type StatsService = ReturnType<typeof createStatsService>;

/** The statistics verbs (stats.*) over one workspace's events, anomalies included. */
export function createStatsService(queries: EventQueries) {
  return {
    timeseries: queries.timeseries,
    top: queries.top,
    percentiles: queries.percentiles,
    funnel: queries.funnel,
    anomalies: (workspaceId: string, input: AnomaliesQuery) => findAnomalies(queries, workspaceId, input),
  };
}

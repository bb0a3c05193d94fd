import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The service's Prometheus metrics, in a registry of its own (one per app, not prom-client's
 * global), so several apps in one process never share counters.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'telemetry_process_' });

  return {
    registry,
    eventsIngested: new Counter({
      name: 'telemetry_events_ingested_total',
      help: 'Events received by ingest procedures, by outcome (accepted, duplicate, rejected)',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    procedureDuration: new Histogram({
      name: 'telemetry_procedure_duration_seconds',
      help: 'Time to answer a procedure call, by procedure and outcome code',
      labelNames: ['procedure', 'code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    flushSize: new Histogram({
      name: 'telemetry_flush_events',
      help: 'Events written per group-commit flush',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    flushDuration: new Histogram({
      name: 'telemetry_flush_duration_seconds',
      help: 'Time of one group-commit flush, from start to commit',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'telemetry_ingest_queue_events',
      help: 'Events accepted for writing and not yet committed (queued or being flushed)',
      registers: [registry],
    }),
    adapterRejections: new Counter({
      name: 'telemetry_adapter_rejected_events_total',
      help: 'Records sent through a foreign SDK adapter (otlp, segment, posthog) and not stored, by adapter and reason',
      labelNames: ['adapter', 'reason'] as const,
      registers: [registry],
    }),
    overloadRefusals: new Counter({
      name: 'telemetry_ingest_overload_refusals_total',
      help: 'Ingest calls refused because the write queue was full',
      registers: [registry],
    }),
    databaseErrors: new Counter({
      name: 'telemetry_database_errors_total',
      help: 'Failed database writes, by kind (unavailable, other)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    databaseDown: new Gauge({
      name: 'telemetry_database_down',
      help: '1 while ingest refuses calls because the database was found unavailable (it is probed until it answers)',
      registers: [registry],
    }),
    rateLimitRefusals: new Counter({
      name: 'telemetry_rate_limit_refusals_total',
      help: 'Calls refused by a rate limit, by key kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    rateLimitFallback: new Gauge({
      name: 'telemetry_rate_limit_memory_fallback',
      help: '1 while Redis is configured but unreachable and rate limits use per-instance memory',
      registers: [registry],
    }),
    retentionRuns: new Counter({
      name: 'telemetry_retention_runs_total',
      help: 'Retention runs by outcome (ok, partial: some archive failed, interrupted, skipped: another instance held the lock, failed)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    retentionEventsExpired: new Counter({
      name: 'telemetry_retention_events_expired_total',
      help: 'Events removed by retention (dropped partitions and deleted rows)',
      registers: [registry],
    }),
    retentionPartitionsDropped: new Counter({
      name: 'telemetry_retention_partitions_dropped_total',
      help: 'Daily partitions dropped by retention',
      registers: [registry],
    }),
    retentionArchiveErrors: new Counter({
      name: 'telemetry_retention_archive_errors_total',
      help: 'Partitions or days kept because archiving them failed (retried by the next run)',
      registers: [registry],
    }),
    retentionLastSuccess: new Gauge({
      name: 'telemetry_retention_last_success_timestamp_seconds',
      help: 'When the last complete retention run finished (Unix seconds); alert when it grows old',
      registers: [registry],
    }),
    liveStreams: new Gauge({
      name: 'telemetry_live_streams',
      help: 'Live (SSE) streams open on this instance',
      registers: [registry],
    }),
    livePublished: new Counter({
      name: 'telemetry_live_events_published_total',
      help: 'Committed events published to the live bus',
      registers: [registry],
    }),
    livePublishFailures: new Counter({
      name: 'telemetry_live_publish_failures_total',
      help: 'Committed events the live bus failed to take (stored, but not streamed)',
      registers: [registry],
    }),
    liveReplayWindowBytes: new Gauge({
      name: 'telemetry_live_replay_window_bytes',
      help: "Bytes the live replay window holds (LIVE_REPLAY_BYTES bounds it), by the bus's own accounting",
      registers: [registry],
    }),
    liveReplayWindowEvents: new Gauge({
      name: 'telemetry_live_replay_window_events',
      help: 'Events the live replay window holds (LIVE_REPLAY_EVENTS bounds it)',
      registers: [registry],
    }),
    liveReplayTruncated: new Counter({
      name: 'telemetry_live_replay_truncated_total',
      help: 'Resumed streams whose last event id was older than the replay window',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

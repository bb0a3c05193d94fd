-- Custom migration (drizzle-kit cannot express INCLUDE): the rollup keys carry `count`, so a
-- dashboard's sum over a workspace's range is an index-only scan instead of thousands of heap
-- page reads (rows of one workspace are interleaved with every other's).
ALTER TABLE "telemetry"."event_counts_hour" DROP CONSTRAINT "event_counts_hour_pkey";--> statement-breakpoint
ALTER TABLE "telemetry"."event_counts_hour" ADD CONSTRAINT "event_counts_hour_pkey" PRIMARY KEY ("workspace_id", "hour", "event_type", "name", "source") INCLUDE ("count");--> statement-breakpoint
ALTER TABLE "telemetry"."event_counts_minute" DROP CONSTRAINT "event_counts_minute_pkey";--> statement-breakpoint
ALTER TABLE "telemetry"."event_counts_minute" ADD CONSTRAINT "event_counts_minute_pkey" PRIMARY KEY ("workspace_id", "minute", "event_type", "name", "source") INCLUDE ("count");

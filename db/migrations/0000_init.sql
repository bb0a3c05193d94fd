-- Edited by hand after `drizzle-kit generate`: drizzle-kit cannot express PARTITION BY, so the
-- events table is declared partitioned here and its partitions are managed by the service
-- (db/partitions.ts). See docs/adr/0002-partitioned-events.md.
CREATE SCHEMA "telemetry";
--> statement-breakpoint
CREATE TABLE "telemetry"."event_ids" (
	"id" uuid PRIMARY KEY NOT NULL,
	"workspace_id" uuid,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "telemetry"."events" (
	"id" uuid NOT NULL,
	"workspace_id" uuid,
	"user_id" uuid,
	"source" text NOT NULL,
	"event_type" text NOT NULL,
	"name" text NOT NULL,
	"target_type" text,
	"target_id" text,
	"metadata" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "events_pkey" PRIMARY KEY("created_at","id")
) PARTITION BY RANGE ("created_at");
--> statement-breakpoint
CREATE INDEX "events_workspace_created_idx" ON "telemetry"."events" USING btree ("workspace_id","created_at");--> statement-breakpoint
CREATE INDEX "events_type_name_idx" ON "telemetry"."events" USING btree ("event_type","name");--> statement-breakpoint
-- Events whose day has no partition yet land here, so no event is ever refused for its time;
-- partition maintenance moves them into their daily partition.
CREATE TABLE "telemetry"."events_default" PARTITION OF "telemetry"."events" DEFAULT;

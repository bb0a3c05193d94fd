CREATE TABLE "telemetry"."event_counts_hour" (
	"workspace_id" uuid NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"event_type" text NOT NULL,
	"name" text NOT NULL,
	"source" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "event_counts_hour_pkey" PRIMARY KEY("workspace_id","hour","event_type","name","source")
);

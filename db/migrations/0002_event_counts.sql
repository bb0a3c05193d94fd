CREATE TABLE "telemetry"."event_counts_minute" (
	"workspace_id" uuid NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"event_type" text NOT NULL,
	"name" text NOT NULL,
	"source" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "event_counts_minute_pkey" PRIMARY KEY("workspace_id","minute","event_type","name","source")
);

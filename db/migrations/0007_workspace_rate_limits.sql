CREATE TABLE "telemetry"."workspace_rate_limits" (
	"workspace_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"events_per_second" integer NOT NULL,
	"burst" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by_key_id" uuid,
	CONSTRAINT "workspace_rate_limits_pkey" PRIMARY KEY("workspace_id","kind"),
	CONSTRAINT "workspace_rate_limits_range" CHECK (events_per_second between 1 and 1000000 and burst between 0 and 10000000)
);

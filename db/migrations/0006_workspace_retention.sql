CREATE TABLE "telemetry"."workspace_retention" (
	"workspace_id" uuid PRIMARY KEY NOT NULL,
	"days" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by_key_id" uuid,
	CONSTRAINT "workspace_retention_days_range" CHECK (days between 1 and 3650)
);

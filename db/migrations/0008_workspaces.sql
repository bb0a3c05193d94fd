CREATE TABLE "telemetry"."workspaces" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "workspaces_name_lower_idx" ON "telemetry"."workspaces" USING btree (lower("name"));--> statement-breakpoint
-- Every workspace already in use by keys, retention and rate-limit overrides, or rollups gets a row
-- named after its id. Two ids sharing their first 8 characters are named by their whole id, so the
-- names never collide (and "ON CONFLICT" keeps a re-run harmless). The events table is not scanned:
-- the rollups name every workspace whose events were stored with one.
INSERT INTO "telemetry"."workspaces" ("id", "name")
SELECT "id", CASE WHEN count(*) OVER (PARTITION BY left("id"::text, 8)) > 1 THEN 'Workspace ' || "id"::text ELSE 'Workspace ' || left("id"::text, 8) END
FROM (
	SELECT "workspace_id" AS "id" FROM "telemetry"."api_keys" WHERE "workspace_id" IS NOT NULL
	UNION SELECT "workspace_id" FROM "telemetry"."workspace_retention"
	UNION SELECT "workspace_id" FROM "telemetry"."workspace_rate_limits"
	UNION SELECT "workspace_id" FROM "telemetry"."event_counts_hour"
	UNION SELECT "workspace_id" FROM "telemetry"."event_counts_minute"
) AS "in_use"
ON CONFLICT DO NOTHING;--> statement-breakpoint
ALTER TABLE "telemetry"."api_keys" ADD CONSTRAINT "api_keys_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "telemetry"."workspaces"("id") ON DELETE no action ON UPDATE no action;
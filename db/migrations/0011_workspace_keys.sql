-- Written by hand after `drizzle-kit generate` (which cannot name the primary keys it drops).
-- Every unique key now contains workspace_id, the column Citus distributes events by, and event
-- ids are unique per workspace (docs/adr/0013-workspace-keys.md).
--
-- Events stored before workspaces were required (docs/adr/0011-every-event-in-a-workspace.md)
-- may have none: they move into a workspace created for them, with a fixed id (0e0e0e0e-0000-4000-8000-000000000011),
-- counted in the rollups like any other workspace's events, so nothing stored is dropped and every
-- count stays exact. Its name is "Events stored without a workspace", or with its id appended if a
-- workspace already has that name: never another tenant's workspace. The index on
-- (workspace_id, created_at) still exists here and finds them without scanning every event.
INSERT INTO "telemetry"."workspaces" ("id", "name")
SELECT '0e0e0e0e-0000-4000-8000-000000000011'::uuid,
	CASE WHEN EXISTS (SELECT FROM "telemetry"."workspaces" WHERE lower("name") = lower('Events stored without a workspace'))
		THEN 'Events stored without a workspace (0e0e0e0e-0000-4000-8000-000000000011)' ELSE 'Events stored without a workspace' END
WHERE EXISTS (SELECT FROM "telemetry"."events" WHERE "workspace_id" IS NULL)
	OR EXISTS (SELECT FROM "telemetry"."event_ids" WHERE "workspace_id" IS NULL)
ON CONFLICT ("id") DO NOTHING;--> statement-breakpoint
INSERT INTO "telemetry"."event_counts_minute" AS "counts" ("workspace_id", "minute", "event_type", "name", "source", "count")
SELECT '0e0e0e0e-0000-4000-8000-000000000011'::uuid, date_trunc('minute', "created_at", 'UTC'), "event_type", "name", "source", count(*)
FROM "telemetry"."events" WHERE "workspace_id" IS NULL
GROUP BY 1, 2, 3, 4, 5
ON CONFLICT ("workspace_id", "minute", "event_type", "name", "source") DO UPDATE SET "count" = "counts"."count" + excluded."count";--> statement-breakpoint
INSERT INTO "telemetry"."event_counts_hour" AS "counts" ("workspace_id", "hour", "event_type", "name", "source", "count")
SELECT '0e0e0e0e-0000-4000-8000-000000000011'::uuid, date_trunc('hour', "created_at", 'UTC'), "event_type", "name", "source", count(*)
FROM "telemetry"."events" WHERE "workspace_id" IS NULL
GROUP BY 1, 2, 3, 4, 5
ON CONFLICT ("workspace_id", "hour", "event_type", "name", "source") DO UPDATE SET "count" = "counts"."count" + excluded."count";--> statement-breakpoint
UPDATE "telemetry"."events" SET "workspace_id" = '0e0e0e0e-0000-4000-8000-000000000011' WHERE "workspace_id" IS NULL;--> statement-breakpoint
UPDATE "telemetry"."event_ids" SET "workspace_id" = '0e0e0e0e-0000-4000-8000-000000000011' WHERE "workspace_id" IS NULL;--> statement-breakpoint
-- The primary key below leads with (workspace_id, created_at): this index would repeat it.
DROP INDEX "telemetry"."events_workspace_created_idx";--> statement-breakpoint
ALTER TABLE "telemetry"."event_ids" ALTER COLUMN "workspace_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "telemetry"."events" ALTER COLUMN "workspace_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "telemetry"."event_ids" DROP CONSTRAINT "event_ids_pkey";--> statement-breakpoint
ALTER TABLE "telemetry"."event_ids" ADD CONSTRAINT "event_ids_pkey" PRIMARY KEY("workspace_id","id");--> statement-breakpoint
ALTER TABLE "telemetry"."events" DROP CONSTRAINT "events_pkey";--> statement-breakpoint
ALTER TABLE "telemetry"."events" ADD CONSTRAINT "events_pkey" PRIMARY KEY("workspace_id","created_at","id");

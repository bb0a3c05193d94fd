-- Retention overrides and rate ceilings now name an existing workspace. 0008 already named every
-- workspace they used; any override stored since, for an id with no row, gets its workspace here the
-- same way (`Workspace <first 8 characters>`, or the whole id when that name is taken), so the
-- constraints below never meet an orphan.
INSERT INTO "telemetry"."workspaces" ("id", "name")
SELECT "in_use"."id", CASE
	WHEN count(*) OVER (PARTITION BY left("in_use"."id"::text, 8)) > 1
		OR EXISTS (SELECT 1 FROM "telemetry"."workspaces" AS "named" WHERE lower("named"."name") = lower('Workspace ' || left("in_use"."id"::text, 8)))
	THEN 'Workspace ' || "in_use"."id"::text
	ELSE 'Workspace ' || left("in_use"."id"::text, 8)
END
FROM (
	SELECT "workspace_id" AS "id" FROM "telemetry"."workspace_retention"
	UNION SELECT "workspace_id" FROM "telemetry"."workspace_rate_limits"
) AS "in_use"
WHERE NOT EXISTS (SELECT 1 FROM "telemetry"."workspaces" AS "known" WHERE "known"."id" = "in_use"."id")
ON CONFLICT DO NOTHING;--> statement-breakpoint
ALTER TABLE "telemetry"."workspace_rate_limits" ADD CONSTRAINT "workspace_rate_limits_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "telemetry"."workspaces"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telemetry"."workspace_retention" ADD CONSTRAINT "workspace_retention_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "telemetry"."workspaces"("id") ON DELETE no action ON UPDATE no action;
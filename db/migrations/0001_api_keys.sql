CREATE TABLE "telemetry"."api_keys" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"workspace_id" uuid,
	"name" text,
	"display_prefix" text NOT NULL,
	"secret_hash" text NOT NULL,
	"rate_limit_events_per_second" integer,
	"rate_limit_burst" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_secret_hash_idx" ON "telemetry"."api_keys" USING btree ("secret_hash");
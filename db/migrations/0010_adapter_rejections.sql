-- What ingest adapters refused: totals per workspace, adapter and reason, and the latest refusals
-- with their message (trimmed to the last hundred per workspace by the service).
CREATE TABLE "telemetry"."adapter_rejection_counts" (
	"workspace_id" uuid NOT NULL,
	"adapter" text NOT NULL,
	"reason" text NOT NULL,
	"refused" bigint NOT NULL,
	"last_at" timestamp with time zone NOT NULL,
	CONSTRAINT "adapter_rejection_counts_pkey" PRIMARY KEY("workspace_id","adapter","reason")
);
--> statement-breakpoint
CREATE TABLE "telemetry"."adapter_rejections" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "telemetry"."adapter_rejections_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"workspace_id" uuid NOT NULL,
	"adapter" text NOT NULL,
	"reason" text NOT NULL,
	"message" text NOT NULL,
	"path" text NOT NULL,
	"record_index" integer,
	"request_id" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "telemetry"."adapter_rejection_counts" ADD CONSTRAINT "adapter_rejection_counts_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "telemetry"."workspaces"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "telemetry"."adapter_rejections" ADD CONSTRAINT "adapter_rejections_workspace_id_workspaces_id_fk" FOREIGN KEY ("workspace_id") REFERENCES "telemetry"."workspaces"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "adapter_rejections_recent_idx" ON "telemetry"."adapter_rejections" USING btree ("workspace_id","id" DESC NULLS LAST);
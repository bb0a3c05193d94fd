import { adminProcedure, router } from '../trpc/init.ts';
import { z } from 'zod';
import { CreatedKey, CreateKeyInput, KeyIdInput, KeySummary, RevokedKey } from '../services/keys/schemas.ts';
import { EraseUserInput, ErasureReceipt, ErasureStatusInput } from '../services/erasure/schemas.ts';
import {
  ClearedRetention,
  ClearRetentionInput,
  RetentionOverride,
  RetentionPolicies,
  RetentionReport,
  RunRetentionInput,
  SetRetentionInput,
} from '../services/retention/schemas.ts';
import { CreateWorkspaceInput, MAX_LISTED_WORKSPACES, RenameWorkspaceInput, Workspace, WorkspaceList } from '../services/workspaces/schemas.ts';
import { ClearedWorkspaceLimits, ClearWorkspaceLimitInput, SetWorkspaceLimitInput, WorkspaceLimit, WorkspaceLimits } from '../services/limits/schemas.ts';

/**
 * Operator actions. Every verb takes the calling key's scope (`ctx.adminScope`: its workspace, null
 * for an unbound admin key) and enforces it itself, in the statement that acts.
 */
export const adminRouter = router({
  workspaces: router({
    create: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/workspaces',
          tags: ['admin'],
          protect: true,
          summary: 'Create a workspace (unbound admin keys only)',
          description:
            'Keys are created in a workspace and every stored event belongs to one. The name is trimmed, 1 to 100 characters without control characters, and unique whatever its case: a name already taken is answered 409.',
        },
      })
      .input(CreateWorkspaceInput)
      .output(Workspace)
      .mutation(({ ctx, input }) => ctx.services.workspaces.createWorkspace(input, ctx.adminScope)),

    list: adminProcedure
      .meta({
        openapi: {
          method: 'GET',
          path: '/admin/workspaces',
          tags: ['admin'],
          protect: true,
          summary: 'List workspaces by name',
          description: `An admin key bound to a workspace sees only its own. At most ${MAX_LISTED_WORKSPACES} are answered; \`truncated\` says when there are more.`,
        },
      })
      .input(z.object({}).optional())
      .output(WorkspaceList)
      .query(({ ctx }) => ctx.services.workspaces.listWorkspaces(ctx.adminScope)),

    rename: adminProcedure
      .meta({
        openapi: {
          method: 'PATCH',
          path: '/admin/workspaces/{id}',
          tags: ['admin'],
          protect: true,
          summary: 'Rename a workspace',
          description:
            'An unbound admin key renames any workspace, a bound one only its own (403 otherwise). 404 for an unknown id, 409 when another workspace has the name already (whatever its case). Keys and events keep working: they refer to the id.',
        },
      })
      .input(RenameWorkspaceInput)
      .output(Workspace)
      .mutation(({ ctx, input }) => ctx.services.workspaces.renameWorkspace(input, ctx.adminScope)),
  }),

  workspaceLimits: router({
    set: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/workspace-limits',
          tags: ['admin'],
          protect: true,
          summary: "Set a workspace's rate ceiling for one kind of key (unbound admin keys only)",
          description:
            'All keys of that kind bound to the workspace share this budget, whatever their own limits; raising or lowering it needs an admin key not bound to a workspace. A workspace that does not exist answers 404 (`unknown_workspace`).',
        },
      })
      .input(SetWorkspaceLimitInput)
      .output(WorkspaceLimit)
      .mutation(({ ctx, input }) => ctx.services.workspaceLimits.setCeiling({ ...input, updatedByKeyId: ctx.key.id }, ctx.adminScope)),

    clear: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/workspace-limits/{workspaceId}/clear',
          tags: ['admin'],
          protect: true,
          summary: "Remove a workspace's rate ceiling overrides (back to the defaults; unbound admin keys only)",
        },
      })
      .input(ClearWorkspaceLimitInput)
      .output(ClearedWorkspaceLimits)
      .mutation(({ ctx, input }) => ctx.services.workspaceLimits.clearCeiling(input, ctx.adminScope)),

    list: adminProcedure
      .meta({
        openapi: {
          method: 'GET',
          path: '/admin/workspace-limits',
          tags: ['admin'],
          protect: true,
          summary: 'The default workspace rate ceilings and the per-workspace overrides',
        },
      })
      .input(z.object({}).optional())
      .output(WorkspaceLimits)
      .query(({ ctx }) => ctx.services.workspaceLimits.listCeilings(ctx.adminScope)),
  }),

  retention: router({
    set: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/retention',
          tags: ['admin'],
          protect: true,
          summary: "Set a workspace's retention (days), overriding the default",
          description:
            "Events of the workspace older than this are removed by the next retention run (archived first when ARCHIVE_DIR is set). At most RETENTION_MAX_DAYS (400 above it), for any admin key: a longer retention would keep every workspace's old partitions. A workspace that does not exist answers 404 (`unknown_workspace`).",
        },
      })
      .input(SetRetentionInput)
      .output(RetentionOverride)
      .mutation(({ ctx, input }) => ctx.services.retention.setOverride({ ...input, updatedByKeyId: ctx.key.id }, ctx.adminScope)),

    clear: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/retention/{workspaceId}/clear',
          tags: ['admin'],
          protect: true,
          summary: "Remove a workspace's retention override (back to the default)",
        },
      })
      .input(ClearRetentionInput)
      .output(ClearedRetention)
      .mutation(({ ctx, input }) => ctx.services.retention.clearOverride(input.workspaceId, ctx.adminScope)),

    list: adminProcedure
      .meta({
        openapi: { method: 'GET', path: '/admin/retention', tags: ['admin'], protect: true, summary: 'The default retention and the per-workspace overrides' },
      })
      .input(z.object({}).optional())
      .output(RetentionPolicies)
      .query(({ ctx }) => ctx.services.retention.listPolicies(ctx.adminScope)),

    run: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/retention/run',
          tags: ['admin'],
          protect: true,
          summary: 'Run the retention job now (or a dry run) and answer its report',
          description:
            'Unbound admin keys only: the job spans every workspace. Answers 409 while another run (scheduled or on demand, in any instance) is in progress.',
        },
        // A real run may take minutes; answering "retry" while it goes on would only earn a 409.
        longRunning: true,
      })
      .input(RunRetentionInput)
      .output(RetentionReport)
      .mutation(({ ctx, input }) => ctx.services.retention.run({ dryRun: input.dryRun, scope: ctx.adminScope })),
  }),

  erasure: router({
    request: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/erasure',
          tags: ['admin'],
          protect: true,
          summary: 'Delete every event of a user (GDPR right to erasure)',
          description:
            'Deletes the events in every partition, corrects the rollups and records an audit row, in one transaction. Events of that user arriving later are stored as usual; retries of erased events (same id) are answered duplicate and not stored again.',
        },
        // One transaction over every partition: it may outlast the usual deadline, and a retry
        // while it runs would erase twice.
        longRunning: true,
      })
      .input(EraseUserInput)
      .output(ErasureReceipt)
      .mutation(({ ctx, input }) =>
        ctx.services.erasure.eraseUser({ userId: input.userId, workspaceId: input.workspaceId, requestedByKeyId: ctx.key.id }, ctx.adminScope),
      ),

    status: adminProcedure
      .meta({
        openapi: {
          method: 'GET',
          path: '/admin/erasure/{requestId}',
          tags: ['admin'],
          protect: true,
          summary: 'An erasure request and how many events it deleted',
        },
      })
      .input(ErasureStatusInput)
      .output(ErasureReceipt)
      .query(({ ctx, input }) => ctx.services.erasure.status(input.requestId, ctx.adminScope)),
  }),

  keys: router({
    create: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/keys',
          tags: ['admin'],
          protect: true,
          summary: 'Create an API key (the secret is shown only in this answer)',
          description:
            'A key is created in an existing workspace (404 otherwise): `workspaceId` is required for read keys, and an ingest key needs it or the explicit `allWorkspaces: true` (a key for trusted backends that name the workspace on each event). Admin keys without a workspace manage every workspace.',
        },
      })
      .input(CreateKeyInput)
      .output(CreatedKey)
      .mutation(({ ctx, input }) => ctx.services.keys.createKey(input, ctx.adminScope)),

    list: adminProcedure
      .meta({ openapi: { method: 'GET', path: '/admin/keys', tags: ['admin'], protect: true, summary: 'List API keys (never their secrets)' } })
      .input(z.object({}).optional())
      .output(z.array(KeySummary))
      .query(({ ctx }) => ctx.services.keys.listKeys(ctx.adminScope)),

    revoke: adminProcedure
      .meta({ openapi: { method: 'POST', path: '/admin/keys/{id}/revoke', tags: ['admin'], protect: true, summary: 'Revoke an API key; it fails at once' } })
      .input(KeyIdInput)
      .output(RevokedKey)
      .mutation(({ ctx, input }) => ctx.services.keys.revokeKey(input.id, ctx.adminScope)),

    rotate: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/keys/{id}/rotate',
          tags: ['admin'],
          protect: true,
          summary: 'Revoke an API key and issue a new one with the same settings',
        },
      })
      .input(KeyIdInput)
      .output(CreatedKey)
      .mutation(({ ctx, input }) => ctx.services.keys.rotateKey(input.id, ctx.adminScope)),
  }),
});

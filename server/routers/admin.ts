import { adminProcedure, router } from '../trpc/init.ts';
import { z } from 'zod';
import { CreatedKey, CreateKeyInput, KeyIdInput, KeySummary, RevokedKey } from '../services/keys/schemas.ts';
import { DomainError } from '../errors.ts';
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
import { ClearedWorkspaceLimits, ClearWorkspaceLimitInput, SetWorkspaceLimitInput, WorkspaceLimit, WorkspaceLimits } from '../services/limits/schemas.ts';

/**
 * A key bound to a workspace manages only that workspace (its keys, erasures, retention); an unbound admin key manages all.
 */
function assertInScope(adminScope: string | null, workspaceId: string | null | undefined) {
  if (adminScope && workspaceId !== adminScope) {
    throw new DomainError('forbidden', 'This admin key manages only its own workspace');
  }
}

/** Workspace ceilings bound what every key of a workspace can do, so a key bound to one may not move them. */
function assertUnbound(adminScope: string | null) {
  if (adminScope) {
    throw new DomainError('forbidden', "Only an admin key not bound to a workspace may change a workspace's rate ceiling", { reason: 'workspace_ceiling_unbound_only' });
  }
}

export const adminRouter = router({
  workspaceLimits: router({
    set: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/workspace-limits',
          tags: ['admin'],
          protect: true,
          summary: "Set a workspace's rate ceiling for one kind of key (unbound admin keys only)",
          description: 'All keys of that kind bound to the workspace share this budget, whatever their own limits; raising or lowering it needs an admin key not bound to a workspace.',
        },
      })
      .input(SetWorkspaceLimitInput)
      .output(WorkspaceLimit)
      .mutation(({ ctx, input }) => {
        assertUnbound(ctx.adminScope);
        return ctx.services.workspaceLimits.setCeiling({ ...input, updatedByKeyId: ctx.key.id });
      }),

    clear: adminProcedure
      .meta({ openapi: { method: 'POST', path: '/admin/workspace-limits/{workspaceId}/clear', tags: ['admin'], protect: true, summary: "Remove a workspace's rate ceiling overrides (back to the defaults; unbound admin keys only)" } })
      .input(ClearWorkspaceLimitInput)
      .output(ClearedWorkspaceLimits)
      .mutation(({ ctx, input }) => {
        assertUnbound(ctx.adminScope);
        return ctx.services.workspaceLimits.clearCeiling(input.workspaceId, input.kind);
      }),

    list: adminProcedure
      .meta({ openapi: { method: 'GET', path: '/admin/workspace-limits', tags: ['admin'], protect: true, summary: 'The default workspace rate ceilings and the per-workspace overrides' } })
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
            'Events of the workspace older than this are removed by the next retention run (archived first when ARCHIVE_DIR is set). At most RETENTION_MAX_DAYS (400 above it), for any admin key: a longer retention would keep every workspace\'s old partitions.',
        },
      })
      .input(SetRetentionInput)
      .output(RetentionOverride)
      .mutation(({ ctx, input }) => {
        assertInScope(ctx.adminScope, input.workspaceId);
        return ctx.services.retention.setOverride({ ...input, updatedByKeyId: ctx.key.id });
      }),

    clear: adminProcedure
      .meta({ openapi: { method: 'POST', path: '/admin/retention/{workspaceId}/clear', tags: ['admin'], protect: true, summary: "Remove a workspace's retention override (back to the default)" } })
      .input(ClearRetentionInput)
      .output(ClearedRetention)
      .mutation(({ ctx, input }) => {
        assertInScope(ctx.adminScope, input.workspaceId);
        return ctx.services.retention.clearOverride(input.workspaceId);
      }),

    list: adminProcedure
      .meta({ openapi: { method: 'GET', path: '/admin/retention', tags: ['admin'], protect: true, summary: 'The default retention and the per-workspace overrides' } })
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
          description: 'Unbound admin keys only: the job spans every workspace. Answers 409 while another run (scheduled or on demand, in any instance) is in progress.',
        },
        // A real run may take minutes; answering "retry" while it goes on would only earn a 409.
        longRunning: true,
      })
      .input(RunRetentionInput)
      .output(RetentionReport)
      .mutation(({ ctx, input }) => {
        if (ctx.adminScope) throw new DomainError('forbidden', 'The retention job spans every workspace: it needs an admin key not bound to one');
        return ctx.services.retention.run({ dryRun: input.dryRun });
      }),
  }),

  erasure: router({
    request: adminProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/admin/erasure',
          tags: ['admin'],
          protect: true,
          summary: "Delete every event of a user (GDPR right to erasure)",
          description: 'Deletes the events in every partition, corrects the rollups and records an audit row, in one transaction. Events of that user arriving later are stored as usual; retries of erased events (same id) are answered duplicate and not stored again.',
        },
        // One transaction over every partition: it may outlast the usual deadline, and a retry
        // while it runs would erase twice.
        longRunning: true,
      })
      .input(EraseUserInput)
      .output(ErasureReceipt)
      .mutation(({ ctx, input }) => {
        const workspaceId = input.workspaceId ?? ctx.adminScope;
        assertInScope(ctx.adminScope, workspaceId);
        return ctx.services.erasure.eraseUser({ userId: input.userId, workspaceId, requestedByKeyId: ctx.key.id });
      }),

    status: adminProcedure
      .meta({ openapi: { method: 'GET', path: '/admin/erasure/{requestId}', tags: ['admin'], protect: true, summary: 'An erasure request and how many events it deleted' } })
      .input(ErasureStatusInput)
      .output(ErasureReceipt)
      .query(({ ctx, input }) => ctx.services.erasure.status(input.requestId, ctx.adminScope)),
  }),

  keys: router({
    create: adminProcedure
      .meta({ openapi: { method: 'POST', path: '/admin/keys', tags: ['admin'], protect: true, summary: 'Create an API key (the secret is shown only in this answer)' } })
      .input(CreateKeyInput)
      .output(CreatedKey)
      .mutation(async ({ ctx, input }) => {
        const workspaceId = input.workspaceId ?? ctx.adminScope ?? undefined;
        assertInScope(ctx.adminScope, workspaceId);
        if (ctx.adminScope && input.rateLimit) await ctx.services.workspaceLimits.assertWithinCeiling(ctx.adminScope, input.kind, input.rateLimit);
        return ctx.services.keys.createKey({ ...input, ...(workspaceId && { workspaceId }) });
      }),

    list: adminProcedure
      .meta({ openapi: { method: 'GET', path: '/admin/keys', tags: ['admin'], protect: true, summary: 'List API keys (never their secrets)' } })
      .input(z.object({}).optional())
      .output(z.array(KeySummary))
      .query(async ({ ctx }) => {
        const keys = await ctx.services.keys.listKeys();
        return ctx.adminScope ? keys.filter((key) => key.workspaceId === ctx.adminScope) : keys;
      }),

    revoke: adminProcedure
      .meta({ openapi: { method: 'POST', path: '/admin/keys/{id}/revoke', tags: ['admin'], protect: true, summary: 'Revoke an API key; it fails at once' } })
      .input(KeyIdInput)
      .output(RevokedKey)
      .mutation(async ({ ctx, input }) => {
        if (ctx.adminScope) assertInScope(ctx.adminScope, await ctx.services.keys.workspaceOf(input.id));
        return ctx.services.keys.revokeKey(input.id);
      }),

    rotate: adminProcedure
      .meta({ openapi: { method: 'POST', path: '/admin/keys/{id}/rotate', tags: ['admin'], protect: true, summary: 'Revoke an API key and issue a new one with the same settings' } })
      .input(KeyIdInput)
      .output(CreatedKey)
      .mutation(async ({ ctx, input }) => {
        if (ctx.adminScope) assertInScope(ctx.adminScope, await ctx.services.keys.workspaceOf(input.id));
        return ctx.services.keys.rotateKey(input.id);
      }),
  }),
});

import { adminProcedure, router } from '../trpc/init.ts';
import { z } from 'zod';
import { CreatedKey, CreateKeyInput, KeyIdInput, KeySummary, RevokedKey } from '../services/keys/schemas.ts';
import { DomainError } from '../errors.ts';
import { EraseUserInput, ErasureReceipt, ErasureStatusInput } from '../services/erasure/schemas.ts';

/**
 * A key bound to a workspace manages only keys of that workspace; an unbound admin key manages all.
 */
function assertInScope(adminScope: string | null, workspaceId: string | null | undefined) {
  if (adminScope && workspaceId !== adminScope) {
    throw new DomainError('forbidden', 'This admin key manages only keys of its own workspace');
  }
}

export const adminRouter = router({
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

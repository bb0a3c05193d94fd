import { z } from 'zod';

export const EraseUserInput = z.strictObject({
  userId: z.uuid().describe('The user whose events are deleted'),
  workspaceId: z.uuid().optional().describe('Only this workspace; omitted: every workspace (unbound admin keys only)'),
});

export const ErasureReceipt = z.object({
  requestId: z.uuid(),
  userId: z.guid(),
  workspaceId: z.guid().nullable(),
  deletedCount: z.number().int(),
  requestedAt: z.date(),
  completedAt: z.date(),
});
export type ErasureReceipt = z.infer<typeof ErasureReceipt>;

export const ErasureStatusInput = z.strictObject({ requestId: z.uuid() });

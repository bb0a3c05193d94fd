import { z } from 'zod';

export const KEY_KINDS = ['ingest', 'read', 'admin'] as const;
export const KeyKind = z.enum(KEY_KINDS).describe('ingest: write events only; read: query events; admin: everything, including key management');
export type KeyKind = z.infer<typeof KeyKind>;

export const RateLimitPolicy = z.strictObject({
  eventsPerSecond: z.number().int().min(1).max(1_000_000).describe('Sustained events (ingest) or calls (other procedures) per second'),
  burst: z.number().int().min(0).max(10_000_000).describe('Extra events or calls allowed above the sustained rate within a burst window'),
});
export type RateLimitPolicy = z.infer<typeof RateLimitPolicy>;

export const CreateKeyInput = z
  .strictObject({
    kind: KeyKind,
    workspaceId: z
      .uuid()
      .optional()
      .describe(
        "The workspace the key is created in (an existing one). Required for read keys; an ingest key needs it or allWorkspaces. A workspace-bound admin's keys default to its workspace",
      ),
    allWorkspaces: z
      .boolean()
      .optional()
      .describe(
        'Ingest keys only, instead of workspaceId: a key for trusted backends that name an existing workspace on every event (events naming none are refused)',
      ),
    name: z.string().min(1).max(200).optional(),
    rateLimit: RateLimitPolicy.optional().describe("Overrides the kind's default rate limit for this key"),
  })
  .superRefine((input, ctx) => {
    if (input.kind === 'read' && !input.workspaceId) {
      ctx.addIssue({ code: 'custom', path: ['workspaceId'], message: 'A read key must be created in a workspace' });
    }
    if (input.allWorkspaces && input.workspaceId) {
      ctx.addIssue({ code: 'custom', path: ['allWorkspaces'], message: 'Give either workspaceId or allWorkspaces, not both' });
    } else if (input.allWorkspaces && input.kind === 'read') {
      ctx.addIssue({ code: 'custom', path: ['allWorkspaces'], message: 'A read key reads one workspace: give workspaceId' });
    }
  });
export type CreateKeyInput = z.input<typeof CreateKeyInput>;

export const KeyIdInput = z.strictObject({ id: z.uuid() });

export const CreatedKey = z.object({
  id: z.uuid(),
  key: z.string().describe('The secret key. Shown only in this answer: store it now.'),
  kind: KeyKind,
  workspaceId: z.uuid().nullable(),
});
export type CreatedKey = z.infer<typeof CreatedKey>;

export const KeySummary = z.object({
  id: z.uuid(),
  kind: KeyKind,
  workspaceId: z.uuid().nullable(),
  name: z.string().nullable(),
  displayPrefix: z.string().describe('The start of the key, to recognise it; never the secret'),
  rateLimit: RateLimitPolicy.nullable(),
  createdAt: z.date(),
  revokedAt: z.date().nullable(),
});
export type KeySummary = z.infer<typeof KeySummary>;

export const RevokedKey = z.object({ id: z.uuid(), revokedAt: z.date() });

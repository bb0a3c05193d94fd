import { z } from 'zod';
import { KeyKind, RateLimitPolicy } from '../keys/schemas.ts';

export const SetWorkspaceLimitInput = z.strictObject({
  workspaceId: z.uuid().describe('The workspace whose ceiling is set'),
  kind: KeyKind.describe('Which keys of the workspace share this ceiling: its ingest, read or (bound) admin keys'),
  rateLimit: RateLimitPolicy.describe('The budget all keys of that kind bound to the workspace share, whatever their own limits'),
});
export type SetWorkspaceLimitInput = z.infer<typeof SetWorkspaceLimitInput>;

export const ClearWorkspaceLimitInput = z.strictObject({
  workspaceId: z.uuid().describe('The workspace that goes back to the default ceilings'),
  kind: KeyKind.optional().describe('Only this kind; every kind when omitted'),
});
export type ClearWorkspaceLimitInput = z.infer<typeof ClearWorkspaceLimitInput>;

export const WorkspaceLimit = z.object({
  workspaceId: z.guid(),
  kind: KeyKind,
  rateLimit: RateLimitPolicy,
  updatedAt: z.date(),
  updatedByKeyId: z.guid().nullable().describe('The admin key that set it'),
});
export type WorkspaceLimit = z.infer<typeof WorkspaceLimit>;

export const ClearedWorkspaceLimits = z.object({
  workspaceId: z.guid(),
  cleared: z.array(KeyKind).describe('The kinds whose override was removed (empty when there was none)'),
});
export type ClearedWorkspaceLimits = z.infer<typeof ClearedWorkspaceLimits>;

export const WorkspaceLimits = z.object({
  defaults: z
    .object({ ingest: RateLimitPolicy, read: RateLimitPolicy, admin: RateLimitPolicy })
    .describe('RATE_LIMIT_WORKSPACE_*: the ceiling of every workspace without an override'),
  overrides: z.array(WorkspaceLimit),
});
export type WorkspaceLimits = z.infer<typeof WorkspaceLimits>;
